//! Building a [`Model`] in Rust.

use super::{
    Actuator, ActuatorKind, Body, Joint, JointKind, Model, Settings, Shape, ShapeKind, Tendon,
    TendonTerm, WorldShape, WorldShapeKind,
};
use crate::error::Result;

/// Fluent construction of a [`Model`]; [`ModelBuilder::build`] validates it.
///
/// ```
/// use backdrive::model::{ModelBuilder, ShapeKind, JointKind};
/// let model = ModelBuilder::new("pendulum")
///     .body("bob", 1.0, [0.0, 0.0, 1.0])
///     .shape(ShapeKind::Sphere { radius: 0.1 }, [0.0; 3])
///     .joint("pivot", JointKind::Hinge, None, "bob", [0.0, 0.0, 2.0], [0.0, 1.0, 0.0])
///     .build()
///     .unwrap();
/// assert_eq!(model.bodies.len(), 1);
/// ```
#[derive(Clone, Debug)]
pub struct ModelBuilder {
    model: Model,
}

impl ModelBuilder {
    /// Starts an empty model with default settings.
    pub fn new(name: &str) -> Self {
        ModelBuilder {
            model: Model {
                name: name.to_string(),
                settings: Settings::default(),
                bodies: Vec::new(),
                joints: Vec::new(),
                actuators: Vec::new(),
                world_shapes: Vec::new(),
                tendons: Vec::new(),
            },
        }
    }

    /// Replaces the settings.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.model.settings = settings;
        self
    }

    /// Edits the settings in place.
    pub fn with_settings(mut self, edit: impl FnOnce(&mut Settings)) -> Self {
        edit(&mut self.model.settings);
        self
    }

    /// Adds a body at rest at `position`, friction 1 and no restitution.
    pub fn body(mut self, name: &str, mass: f32, position: [f32; 3]) -> Self {
        self.model.bodies.push(Body {
            name: name.to_string(),
            mass,
            inertia: None,
            position,
            orientation: [0.0, 0.0, 0.0, 1.0],
            linear_velocity: [0.0; 3],
            angular_velocity: [0.0; 3],
            friction: 1.0,
            restitution: 0.0,
            shapes: Vec::new(),
            fluid_drag: true,
        });
        self
    }

    /// Edits the last body added.
    pub fn with_body(mut self, edit: impl FnOnce(&mut Body)) -> Self {
        if let Some(b) = self.model.bodies.last_mut() {
            edit(b);
        }
        self
    }

    /// Adds a shape to the last body added.
    pub fn shape(self, kind: ShapeKind, offset: [f32; 3]) -> Self {
        self.with_body(|b| {
            b.shapes.push(Shape {
                kind,
                offset,
                rotation: [0.0, 0.0, 0.0, 1.0],
            })
        })
    }

    /// Adds a joint; `parent: None` attaches `child` to the world.
    pub fn joint(
        mut self,
        name: &str,
        kind: JointKind,
        parent: Option<&str>,
        child: &str,
        anchor: [f32; 3],
        axis: [f32; 3],
    ) -> Self {
        self.model.joints.push(Joint {
            name: name.to_string(),
            kind,
            parent: parent.map(str::to_string),
            child: child.to_string(),
            anchor,
            axis,
            limits: None,
            damping: 0.0,
            stiffness: 0.0,
            springref: 0.0,
            frictionloss: 0.0,
            armature: 0.0,
            reference: 0.0,
            shared_frame: None,
        });
        self
    }

    /// Sets limits on the last joint added.
    pub fn limits(mut self, lower: f32, upper: f32) -> Self {
        if let Some(j) = self.model.joints.last_mut() {
            j.limits = Some([lower, upper]);
        }
        self
    }

    /// Edits the last joint added (its damping, stiffness, armature, ...).
    pub fn with_joint(mut self, edit: impl FnOnce(&mut Joint)) -> Self {
        if let Some(j) = self.model.joints.last_mut() {
            edit(j);
        }
        self
    }

    /// Adds an actuator on axis 0 of `joint`.
    pub fn actuator(
        mut self,
        name: &str,
        joint: &str,
        kind: ActuatorKind,
        gain: f32,
        max_force: f32,
        max_velocity: f32,
    ) -> Self {
        self.model.actuators.push(Actuator {
            name: name.to_string(),
            joint: joint.to_string(),
            axis: 0,
            kind,
            gain,
            max_force,
            max_velocity,
            affine: None,
        });
        self
    }

    /// Adds an [`ActuatorKind::Affine`] actuator with the force law `law` (its first term's
    /// joint is the actuator's `joint`).
    pub fn affine_actuator(mut self, name: &str, law: crate::model::AffineForce) -> Self {
        let joint = law
            .terms
            .first()
            .map(|t| t.joint.clone())
            .unwrap_or_default();
        self.model.actuators.push(Actuator {
            name: name.to_string(),
            joint,
            axis: 0,
            kind: ActuatorKind::Affine,
            gain: 0.0,
            max_force: 1.0,
            max_velocity: 1.0e3,
            affine: Some(law),
        });
        self
    }

    /// Adds a tendon over axis 0 of each `(joint, coefficient)`, held at `length` when given.
    pub fn tendon(mut self, name: &str, terms: &[(&str, f32)], length: Option<f32>) -> Self {
        self.model.tendons.push(Tendon {
            name: name.to_string(),
            terms: terms
                .iter()
                .map(|&(joint, coefficient)| TendonTerm {
                    joint: joint.to_string(),
                    axis: 0,
                    coefficient,
                })
                .collect(),
            sites: Vec::new(),
            length,
            limits: None,
            spring: None,
        });
        self
    }

    /// Adds a spatial tendon, the distance between two sites given as `(body, position in
    /// the body's frame)` (`None`: the world, in world coordinates), held at `length` when
    /// given.
    pub fn spatial_tendon(
        mut self,
        name: &str,
        sites: [(Option<&str>, [f32; 3]); 2],
        length: Option<f32>,
    ) -> Self {
        self.model.tendons.push(Tendon {
            name: name.to_string(),
            terms: Vec::new(),
            sites: sites
                .iter()
                .map(|&(body, position)| crate::model::TendonSite {
                    body: body.map(str::to_string),
                    position,
                })
                .collect(),
            length,
            limits: None,
            spring: None,
        });
        self
    }

    /// Puts a spring on the last tendon added.
    pub fn tendon_spring(mut self, stiffness: f32, rest_length: f32) -> Self {
        if let Some(t) = self.model.tendons.last_mut() {
            t.spring = Some(crate::model::TendonSpring {
                stiffness,
                rest_length,
            });
        }
        self
    }

    /// Changes the last tendon added.
    pub fn with_last_tendon(mut self, f: impl FnOnce(&mut Tendon)) -> Self {
        if let Some(t) = self.model.tendons.last_mut() {
            f(t);
        }
        self
    }

    /// Sets limits on the last tendon added.
    pub fn tendon_limits(mut self, lower: f32, upper: f32) -> Self {
        if let Some(t) = self.model.tendons.last_mut() {
            t.limits = Some([lower, upper]);
        }
        self
    }

    /// Validates and returns the model.
    /// Adds a shape fixed to the world at `position` with orientation `rotation` (`[x, y, z, w]`).
    pub fn world_shape(
        mut self,
        kind: WorldShapeKind,
        position: [f32; 3],
        rotation: [f32; 4],
    ) -> Self {
        self.model.world_shapes.push(WorldShape {
            kind,
            position,
            rotation,
        });
        self
    }

    pub fn build(self) -> Result<Model> {
        self.model.validate()?;
        Ok(self.model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_child_is_an_error_not_a_panic() {
        let e = ModelBuilder::new("x")
            .body("a", 1.0, [0.0; 3])
            .joint(
                "j",
                JointKind::Ball,
                None,
                "nope",
                [0.0; 3],
                [1.0, 0.0, 0.0],
            )
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("joint[0].child"), "{e}");
    }
}
