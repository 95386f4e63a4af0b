//! Tendons: linear combinations of joint coordinates (MuJoCo's fixed tendons) or the straight
//! distance between two sites (MuJoCo's spatial tendon through two sites), what holds them,
//! and the check that a tendon's constraint row touches only two bodies.

use serde::{Deserialize, Serialize};

use super::{JointKind, Model};

/// A linear combination of joint coordinates, `length = sum_t coefficient_t * q_t`, where
/// `q_t` is a free coordinate of a joint, zero at the model's initial pose (radians for
/// rotations, metres for translations). MuJoCo's fixed tendon and its joint equality are
/// tendons.
///
/// The solver's rows act on two bodies, so a tendon is either one joint's coordinate, or a
/// chain of hinges (each joint's child the next one's parent) whose axes, scaled by their
/// coefficients, are the same vector: then the Jacobian terms of the bodies inside the chain
/// cancel, and the row acts between the chain's first parent and its last child. A coupling
/// of two hinges on the same parent (a gripper's two fingers) touches three bodies and is
/// refused by the validation, unless the tendon only carries a [`TendonSpring`] (a force, no
/// row).
///
/// A tendon with [`Tendon::sites`] instead of terms is spatial: its length is the straight
/// distance between two points on two bodies (a string or a rod between them), in metres and
/// not relative to the initial pose. Its rows act on the two sites' bodies along the line
/// between the sites; it takes no spring.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tendon {
    /// Unique name.
    pub name: String,
    /// The joint coordinates and their coefficients (empty for a spatial tendon).
    #[serde(default, rename = "term", skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<TendonTerm>,
    /// The two sites of a spatial tendon (empty for a tendon over joint coordinates).
    #[serde(default, rename = "site", skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<TendonSite>,
    /// Holds the length at this value (an equality row, soft like the joints').
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<f32>,
    /// Keeps the length within `[lower, upper]` (a one-sided row on the nearer bound, like a
    /// joint limit).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::exact_array_option"
    )]
    pub limits: Option<[f32; 2]>,
    /// A spring on the length (MuJoCo's tendon `stiffness`): a force explicitly applied like
    /// an actuator's, so it needs no row and the terms need not chain (two fingers on one
    /// hand may share one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spring: Option<TendonSpring>,
}

/// The force `-stiffness * (length - rest_length)` along a [`Tendon`]: every term's joint
/// receives its coefficient times it, each step, before the solve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TendonSpring {
    /// Force (N or N m) per unit of length (>= 0).
    pub stiffness: f32,
    /// The length at which the spring exerts no force (the tendon's units, from the model's
    /// initial pose).
    #[serde(default)]
    pub rest_length: f32,
}

/// One end of a spatial [`Tendon`]: a point fixed on a body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TendonSite {
    /// The body the point moves with (absent: the world).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The point in the body's frame (its centre of mass and orientation at the initial
    /// pose), or in world coordinates on the world.
    #[serde(default, deserialize_with = "super::exact_array")]
    pub position: [f32; 3],
}

/// One joint coordinate of a [`Tendon`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TendonTerm {
    /// The joint.
    pub joint: String,
    /// Which free axis of the joint (0 for hinges and sliders; 0, 1, 2 for ball joints).
    #[serde(default)]
    pub axis: u32,
    /// The coordinate's coefficient (non-zero).
    pub coefficient: f32,
}

/// A tendon's terms in chain order and the two bodies its rows act on.
#[derive(Clone, Debug, PartialEq)]
pub struct TendonChain {
    /// Term indices, from the one whose joint's parent is [`TendonChain::parent`] to the one
    /// whose joint's child is [`TendonChain::child`].
    pub order: Vec<usize>,
    /// The chain's first parent body (`None`: the world).
    pub parent: Option<String>,
    /// The chain's last child body.
    pub child: String,
}

/// Relative tolerance on `c_t x_t = c_u x_u` for two hinges of a chain.
const CHAIN_AXIS_TOLERANCE: f32 = 1e-4;

impl Tendon {
    /// Whether the tendon's length is the distance between two sites.
    pub fn is_spatial(&self) -> bool {
        !self.sites.is_empty()
    }

    /// A spatial tendon's two site bodies (`None`: the world), checking that there are two
    /// sites, on bodies that exist and differ, and that the tendon has no terms and no
    /// spring; the error says which does not hold.
    pub fn site_bodies(&self, model: &Model) -> Result<[Option<usize>; 2], String> {
        if !self.terms.is_empty() {
            return Err("a tendon has joint terms or two sites, not both".to_string());
        }
        if self.spring.is_some() {
            return Err(
                "a spatial tendon (two sites) takes no spring; only a length or limits".to_string(),
            );
        }
        let [a, b] = self.sites.as_slice() else {
            return Err(format!(
                "a spatial tendon needs exactly two sites, found {}",
                self.sites.len()
            ));
        };
        let index = |site: &TendonSite| -> Result<Option<usize>, String> {
            match &site.body {
                None => Ok(None),
                Some(name) => model
                    .bodies
                    .iter()
                    .position(|b| &b.name == name)
                    .map(Some)
                    .ok_or_else(|| format!("unknown body '{name}'")),
            }
        };
        let bodies = [index(a)?, index(b)?];
        if bodies[0] == bodies[1] {
            return Err(format!(
                "both sites are on {}, so the distance between them never changes",
                a.body
                    .as_deref()
                    .map_or("the world".to_string(), |n| format!("body '{n}'"))
            ));
        }
        Ok(bodies)
    }

    /// Orders the terms into a chain and checks that its row touches two bodies; the error
    /// says why not. Joints must exist and axes be free.
    pub fn chain(&self, model: &Model) -> Result<TendonChain, String> {
        let joints = self.terms_exist(model)?;
        self.chain_of(joints)
    }

    /// The terms' joints, checking that each exists, has the term's axis and a finite
    /// non-zero coefficient; the error says which does not.
    pub fn terms_exist<'m>(&self, model: &'m Model) -> Result<Vec<&'m super::Joint>, String> {
        let mut joints = Vec::with_capacity(self.terms.len());
        for t in &self.terms {
            let j = model
                .joints
                .iter()
                .find(|j| j.name == t.joint)
                .ok_or_else(|| format!("unknown joint '{}'", t.joint))?;
            let free = j.free_axes();
            if t.axis as usize >= free.len() {
                return Err(format!(
                    "joint '{}' has {} free axes, so axis {} does not exist",
                    t.joint,
                    free.len(),
                    t.axis
                ));
            }
            if !(t.coefficient.is_finite() && t.coefficient != 0.0) {
                return Err(format!(
                    "the coefficient of joint '{}' is {}: expected a finite non-zero number",
                    t.joint, t.coefficient
                ));
            }
            joints.push(j);
        }
        Ok(joints)
    }

    fn chain_of(&self, joints: Vec<&super::Joint>) -> Result<TendonChain, String> {
        match joints.as_slice() {
            [] => return Err("a tendon needs at least one term".to_string()),
            [j] => {
                return Ok(TendonChain {
                    order: vec![0],
                    parent: j.parent.clone(),
                    child: j.child.clone(),
                });
            }
            _ => {}
        }
        let several = "a tendon over several joints must be a chain of hinges (each joint's \
                       child the next one's parent) whose axes times coefficients are equal, \
                       so that its row acts on two bodies";
        if let Some(j) = joints.iter().find(|j| j.kind != JointKind::Hinge) {
            return Err(format!("{several}; joint '{}' is not a hinge", j.name));
        }
        // The first term: the one whose parent is no other term's child.
        let starts: Vec<usize> = (0..joints.len())
            .filter(|&t| {
                !joints
                    .iter()
                    .any(|u| Some(&u.child) == joints[t].parent.as_ref())
            })
            .collect();
        let [start] = starts.as_slice() else {
            // Name the usual case: two joints on one parent (a gripper's two fingers).
            for (t, j) in joints.iter().enumerate() {
                if let Some(u) = joints[t + 1..].iter().find(|u| u.parent == j.parent) {
                    return Err(format!(
                        "{several}; joints '{}' and '{}' both hang off {}, so the row would act \
                         on three bodies",
                        j.name,
                        u.name,
                        j.parent
                            .as_deref()
                            .map_or("the world".to_string(), |p| format!("'{p}'"))
                    ));
                }
            }
            return Err(format!("{several}; these joints do not form one chain"));
        };
        let mut order = vec![*start];
        while order.len() < joints.len() {
            let last = joints[*order.last().unwrap_or(start)];
            let next = (0..joints.len())
                .find(|&u| !order.contains(&u) && joints[u].parent.as_ref() == Some(&last.child));
            let Some(next) = next else {
                return Err(format!("{several}; these joints do not form one chain"));
            };
            order.push(next);
        }
        let scaled = |t: usize| {
            let a = glam::Vec3::from_array(joints[t].axis).normalize_or_zero();
            a * self.terms[t].coefficient
        };
        let first = scaled(order[0]);
        for &t in &order[1..] {
            if (scaled(t) - first).length() > CHAIN_AXIS_TOLERANCE * first.length() {
                return Err(format!(
                    "{several}; joint '{}' has axis x coefficient {:?} but joint '{}' {:?}",
                    joints[t].name,
                    scaled(t).to_array(),
                    joints[order[0]].name,
                    first.to_array()
                ));
            }
        }
        Ok(TendonChain {
            parent: joints[order[0]].parent.clone(),
            child: joints[*order.last().unwrap_or(start)].child.clone(),
            order,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::TendonTerm;
    use crate::model::{JointKind, Model, ModelBuilder};

    /// A hand on the world with a thumb and a finger, and a three-hinge leg.
    fn robot() -> ModelBuilder {
        let y = [0.0, 1.0, 0.0];
        ModelBuilder::new("robot")
            .body("hand", 1.0, [0.0, 0.0, 1.0])
            .body("thumb", 1.0, [0.1, 0.0, 1.0])
            .body("finger", 1.0, [0.1, 0.1, 1.0])
            .body("thigh", 1.0, [0.0, 0.0, 0.8])
            .body("shin", 1.0, [0.0, 0.0, 0.5])
            .body("foot", 1.0, [0.0, 0.0, 0.2])
            .joint("wrist", JointKind::Hinge, None, "hand", [0.0, 0.0, 1.0], y)
            .joint(
                "thumb",
                JointKind::Hinge,
                Some("hand"),
                "thumb",
                [0.05, 0.0, 1.0],
                y,
            )
            .joint(
                "finger",
                JointKind::Hinge,
                Some("hand"),
                "finger",
                [0.05, 0.1, 1.0],
                y,
            )
            .joint("hip", JointKind::Hinge, None, "thigh", [0.0, 0.0, 0.9], y)
            .joint(
                "knee",
                JointKind::Hinge,
                Some("thigh"),
                "shin",
                [0.0, 0.0, 0.6],
                y,
            )
            .joint(
                "ankle",
                JointKind::Hinge,
                Some("shin"),
                "foot",
                [0.0, 0.0, 0.3],
                [0.0, -1.0, 0.0],
            )
            .joint(
                "slide",
                JointKind::Slider,
                Some("foot"),
                "hand",
                [0.0; 3],
                [1.0, 0.0, 0.0],
            )
    }

    fn refusal(terms: &[(&str, f32)]) -> String {
        robot()
            .tendon("t", terms, Some(0.0))
            .build()
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_chain_is_ordered_from_its_first_parent_to_its_last_child() {
        let model = robot()
            .tendon(
                "leg",
                &[("ankle", -2.0), ("hip", 2.0), ("knee", 2.0)],
                Some(0.0),
            )
            .build()
            .unwrap();
        let chain = model.tendons[0].chain(&model).unwrap();
        assert_eq!(chain.order, vec![1, 2, 0]);
        assert_eq!(chain.parent, None);
        assert_eq!(chain.child, "foot");
    }

    #[test]
    fn couplings_off_two_bodies_are_refused_with_the_reason() {
        let fingers = refusal(&[("thumb", 1.0), ("finger", 1.0)]);
        assert!(fingers.contains("tendon[0].term"), "{fingers}");
        assert!(
            fingers.contains("'thumb' and 'finger' both hang off 'hand'"),
            "{fingers}"
        );
        let apart = refusal(&[("thumb", 1.0), ("knee", 1.0)]);
        assert!(apart.contains("do not form one chain"), "{apart}");
        let unequal = refusal(&[("hip", 1.0), ("knee", 2.0)]);
        assert!(unequal.contains("axis x coefficient"), "{unequal}");
        let flipped = refusal(&[("knee", 1.0), ("ankle", 1.0)]);
        assert!(flipped.contains("axis x coefficient"), "{flipped}");
        let slider = refusal(&[("ankle", 1.0), ("slide", 1.0)]);
        assert!(slider.contains("'slide' is not a hinge"), "{slider}");
        let zero = refusal(&[("hip", 0.0)]);
        assert!(zero.contains("non-zero"), "{zero}");
        let unknown = refusal(&[("elbow", 1.0)]);
        assert!(unknown.contains("unknown joint 'elbow'"), "{unknown}");
        let none = refusal(&[]);
        assert!(none.contains("at least one term"), "{none}");
    }

    #[test]
    fn spatial_tendons_round_trip_and_bad_sites_name_the_reason() {
        let string = |sites: [(Option<&str>, [f32; 3]); 2]| {
            robot()
                .spatial_tendon("string", sites, None)
                .tendon_limits(0.0, 0.3)
        };
        let model = string([(Some("hand"), [0.0, 0.0, -0.1]), (None, [1.0, 2.0, 3.0])])
            .build()
            .unwrap();
        let again = Model::from_toml_str(&model.to_toml(), None).unwrap();
        assert_eq!(model, again);
        assert!(model.tendons[0].is_spatial());
        let refusal = |b: ModelBuilder| b.build().unwrap_err().to_string();
        let same = refusal(string([(Some("foot"), [0.0; 3]), (Some("foot"), [0.1; 3])]));
        assert!(same.contains("tendon[0].site"), "{same}");
        assert!(same.contains("both sites are on body 'foot'"), "{same}");
        let unknown = refusal(string([(Some("cup"), [0.0; 3]), (None, [0.0; 3])]));
        assert!(unknown.contains("unknown body 'cup'"), "{unknown}");
        let sprung =
            refusal(string([(Some("foot"), [0.0; 3]), (None, [0.0; 3])]).tendon_spring(1.0, 0.2));
        assert!(sprung.contains("takes no spring"), "{sprung}");
        let mut one = string([(Some("foot"), [0.0; 3]), (None, [0.0; 3])]);
        one = one.with_last_tendon(|t| {
            t.sites.pop();
        });
        let one = refusal(one);
        assert!(one.contains("exactly two sites, found 1"), "{one}");
        let both = refusal(
            string([(Some("foot"), [0.0; 3]), (None, [0.0; 3])]).with_last_tendon(|t| {
                t.terms.push(TendonTerm {
                    joint: "hip".to_string(),
                    axis: 0,
                    coefficient: 1.0,
                })
            }),
        );
        assert!(both.contains("not both"), "{both}");
        let rod = robot()
            .spatial_tendon(
                "rod",
                [(Some("foot"), [0.0; 3]), (None, [0.0; 3])],
                Some(-0.1),
            )
            .build()
            .unwrap_err()
            .to_string();
        assert!(rod.contains("tendon[0].length"), "{rod}");
        let nan = refusal(string([
            (Some("foot"), [0.0; 3]),
            (None, [1.0, f32::NAN, 3.0]),
        ]));
        assert!(
            nan.contains("tendon[0].site") && nan.contains("position"),
            "{nan}"
        );
    }

    #[test]
    fn tendons_round_trip_through_toml_and_bad_limits_name_the_field() {
        let model = robot()
            .tendon("leg", &[("hip", 1.0), ("knee", 1.0)], Some(0.25))
            .tendon("reach", &[("slide", -3.0)], None)
            .tendon_limits(-0.5, 0.5)
            .build()
            .unwrap();
        let again = Model::from_toml_str(&model.to_toml(), None).unwrap();
        assert_eq!(model, again);
        let text = model.to_toml().replace("-0.5", "0.75");
        let e = Model::from_toml_str(&text, None).unwrap_err().to_string();
        assert!(e.contains("tendon[1].limits"), "{e}");
    }
}
