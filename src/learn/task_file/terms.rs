//! The `[[loss]]` and `[[reward]]` entries of a task file read into loss terms, each term type
//! checked for the keys it needs and the keys it does not read.

use super::{Locator, TermKind, TermSection, WhenName};
use crate::error::{Error, FieldPath, Result};
use crate::grad::loss::{LossTerm, Quantity, When};
use crate::model::Model;

/// One `[[loss]]` or `[[reward]]` entry being read: the entry, where it is in the file, and the
/// model its names must exist in.
struct TermReader<'a, 'b> {
    t: &'a TermSection,
    section: &'a str,
    k: usize,
    model: &'a Model,
    at: &'a Locator<'b>,
}

impl TermReader<'_, '_> {
    fn field(&self, key: &str) -> FieldPath {
        FieldPath::item(self.section, self.k, key)
    }

    fn error(&self, key: &str, message: impl Into<String>) -> Error {
        self.at.error(self.field(key), message)
    }

    /// The term's body, which must exist in the model.
    fn body(&self) -> Result<String> {
        let name = self
            .t
            .body
            .clone()
            .ok_or_else(|| self.error("type", "this term needs a body"))?;
        self.model
            .body_index(&name)
            .ok_or_else(|| self.error("body", format!("no body '{name}'")))?;
        Ok(name)
    }

    fn vec3(
        &self,
        key: &str,
        value: &Option<Vec<f32>>,
        default: Option<[f32; 3]>,
    ) -> Result<[f32; 3]> {
        match (value, default) {
            (Some(v), _) if v.len() == 3 => Ok([v[0], v[1], v[2]]),
            (Some(v), _) => Err(self.error(key, format!("expected 3 numbers, found {}", v.len()))),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(self.error(key, "missing: this term needs a target")),
        }
    }

    /// The quantity of a term that tracks a target of a body's state (position, velocity,
    /// angular velocity or orientation error).
    fn body_error(&self) -> Result<Quantity> {
        let t = self.t;
        let mask = t.mask.unwrap_or([1.0; 3]);
        Ok(match t.kind {
            TermKind::PositionError => Quantity::PositionError {
                target: self.vec3("target", &t.target, None)?,
                mask,
            },
            TermKind::VelocityError => Quantity::VelocityError {
                target: self.vec3("target", &t.target, Some([0.0; 3]))?,
                mask,
            },
            TermKind::AngularVelocityError => Quantity::AngularVelocityError {
                target: self.vec3("target", &t.target, Some([0.0; 3]))?,
                mask,
            },
            _ => {
                let target = match &t.target {
                    Some(v) if v.len() == 4 => [v[0], v[1], v[2], v[3]],
                    Some(v) => {
                        return Err(self.error(
                            "target",
                            format!(
                                "expected a quaternion [x, y, z, w], found {} numbers",
                                v.len()
                            ),
                        ));
                    }
                    None => [0.0, 0.0, 0.0, 1.0],
                };
                Quantity::OrientationError { target }
            }
        })
    }

    /// A joint coordinate's error: the joint's name and the quantity.
    fn joint_error(&self) -> Result<(String, Quantity)> {
        let t = self.t;
        let name = t
            .joint
            .clone()
            .ok_or_else(|| self.error("type", "this term needs a joint"))?;
        self.model
            .joint_index(&name)
            .ok_or_else(|| self.error("joint", format!("no joint '{name}'")))?;
        let axis = t.axis.unwrap_or(0);
        if axis >= 6 {
            return Err(self.error("axis", format!("{axis} is not an axis 0..6")));
        }
        let target = match &t.target {
            Some(v) if v.len() == 1 => v[0],
            None => 0.0,
            Some(v) => {
                return Err(self.error(
                    "target",
                    format!("expected [coordinate], found {} numbers", v.len()),
                ));
            }
        };
        Ok((name, Quantity::JointError { axis, target }))
    }

    /// The term's target (a body or joint name, empty for the control cost), its quantity, and
    /// whether it is linear in the state (its direction carries the sign and the averaging, not
    /// its weight). `linear` maps a direction to the one the kernel gets.
    fn quantity(&self, linear: impl Fn([f32; 3]) -> [f32; 3]) -> Result<(String, Quantity, bool)> {
        let t = self.t;
        Ok(match t.kind {
            TermKind::PositionError | TermKind::VelocityError | TermKind::AngularVelocityError => {
                (self.body()?, self.body_error()?, false)
            }
            // Its target is checked before its body (the other kinds check the body first), so a
            // term wrong in both reports the same error as it always has.
            TermKind::OrientationError => {
                let quantity = self.body_error()?;
                (self.body()?, quantity, false)
            }
            TermKind::JointError => {
                let (name, quantity) = self.joint_error()?;
                (name, quantity, false)
            }
            TermKind::Position => {
                let direction = t
                    .direction
                    .ok_or_else(|| self.error("type", "this term needs a direction"))?;
                (
                    self.body()?,
                    Quantity::Position {
                        direction: linear(direction),
                    },
                    true,
                )
            }
            TermKind::HealthyHeight => {
                let [min_height, max_height] = t
                    .range
                    .ok_or_else(|| self.error("type", "this term needs a range [min, max]"))?;
                if !(min_height.is_finite() && max_height.is_finite() && min_height <= max_height) {
                    return Err(self.error("range", "must be [min, max] with min <= max"));
                }
                (
                    self.body()?,
                    Quantity::HealthyHeight {
                        min_height,
                        max_height,
                    },
                    false,
                )
            }
            TermKind::ControlCost => (String::new(), Quantity::ControlCost, false),
            TermKind::Velocity | TermKind::ForwardVelocity => {
                let direction = match (t.direction, t.kind) {
                    (Some(d), _) => d,
                    (None, TermKind::ForwardVelocity) => [1.0, 0.0, 0.0],
                    (None, _) => {
                        return Err(self.error("type", "this term needs a direction"));
                    }
                };
                (
                    self.body()?,
                    Quantity::Velocity {
                        direction: linear(direction),
                    },
                    true,
                )
            }
        })
    }

    /// The first key given that a term of this type does not read.
    fn unused_key(&self, linear_kind: bool) -> Option<&'static str> {
        let t = self.t;
        let unused = [
            ("joint", t.joint.is_some() && t.kind != TermKind::JointError),
            (
                "body",
                t.body.is_some() && matches!(t.kind, TermKind::JointError | TermKind::ControlCost),
            ),
            (
                "mask",
                t.mask.is_some()
                    && (linear_kind
                        || matches!(
                            t.kind,
                            TermKind::OrientationError
                                | TermKind::JointError
                                | TermKind::HealthyHeight
                                | TermKind::ControlCost
                        )),
            ),
            (
                "range",
                t.range.is_some() && t.kind != TermKind::HealthyHeight,
            ),
            (
                "target",
                t.target.is_some()
                    && matches!(t.kind, TermKind::HealthyHeight | TermKind::ControlCost),
            ),
            ("direction", t.direction.is_some() && !linear_kind),
            ("target", t.target.is_some() && linear_kind),
            ("axis", t.axis.is_some() && t.kind != TermKind::JointError),
        ];
        unused.iter().find(|(_, bad)| *bad).map(|(key, _)| *key)
    }
}

/// One `[[loss]]` or `[[reward]]` entry as a loss term. A reward is a loss with the opposite
/// sign, and `average` divides by the horizon; both act on the direction of a linear term
/// (position, velocity) and on the weight of the others, so that a term keeps weight 1 where
/// it had it.
pub(super) fn loss_term(
    t: &TermSection,
    section: &str,
    k: usize,
    reward: bool,
    horizon: u32,
    model: &Model,
    at: &Locator<'_>,
) -> Result<LossTerm> {
    let reader = TermReader {
        t,
        section,
        k,
        model,
        at,
    };
    if !t.weight.is_finite() {
        return Err(reader.error("weight", "must be a finite number"));
    }
    let h = horizon as f32;
    // `0.0 - x` rather than `-x`: a zero stays +0.0, so a file gives the same numbers, bit for
    // bit, as the hand-written tasks did.
    let flip = |x: f32| if reward { 0.0 - x } else { x };
    let scale = |x: f32| if t.average { x / h } else { x };
    let (target, quantity, linear_kind) = reader.quantity(|d| d.map(|x| scale(flip(x))))?;
    if let Some(key) = reader.unused_key(linear_kind) {
        return Err(reader.error(key, "not used by a term of this type"));
    }
    let weight = if linear_kind {
        t.weight
    } else {
        scale(flip(t.weight))
    };
    Ok(LossTerm {
        target,
        quantity,
        weight,
        when: match t.when {
            WhenName::EveryStep => When::EveryStep,
            WhenName::Final => When::Final,
        },
    })
}
