//! Tendons: linear combinations of joint coordinates (MuJoCo's fixed tendons) and what holds
//! them, and the check that a tendon's constraint row touches only two bodies.

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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tendon {
    /// Unique name.
    pub name: String,
    /// The joint coordinates and their coefficients.
    #[serde(rename = "term")]
    pub terms: Vec<TendonTerm>,
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
