//! The `[[loss]]` and `[[reward]]` entries of a task file read into loss terms, each term type
//! checked for the keys it needs and the keys it does not read.

use super::{Locator, TermKind, TermSection, WhenName};
use crate::error::{FieldPath, Result};
use crate::grad::loss::{LossTerm, Quantity, When};
use crate::model::Model;

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
    let field = |key: &str| FieldPath::item(section, k, key);
    let need_body = || -> Result<String> {
        let name = t
            .body
            .clone()
            .ok_or_else(|| at.error(field("type"), "this term needs a body"))?;
        model
            .body_index(&name)
            .ok_or_else(|| at.error(field("body"), format!("no body '{name}'")))?;
        Ok(name)
    };
    let vec3 =
        |key: &str, value: &Option<Vec<f32>>, default: Option<[f32; 3]>| match (value, default) {
            (Some(v), _) if v.len() == 3 => Ok([v[0], v[1], v[2]]),
            (Some(v), _) => {
                Err(at.error(field(key), format!("expected 3 numbers, found {}", v.len())))
            }
            (None, Some(d)) => Ok(d),
            (None, None) => Err(at.error(field(key), "missing: this term needs a target")),
        };
    if !t.weight.is_finite() {
        return Err(at.error(field("weight"), "must be a finite number"));
    }
    let h = horizon as f32;
    // `0.0 - x` rather than `-x`: a zero stays +0.0, so a file gives the same numbers, bit for
    // bit, as the hand-written tasks did.
    let flip = |x: f32| if reward { 0.0 - x } else { x };
    let scale = |x: f32| if t.average { x / h } else { x };
    let linear = |d: [f32; 3]| d.map(|x| scale(flip(x)));
    let mask = t.mask.unwrap_or([1.0; 3]);
    let (target, quantity, linear_kind) = match t.kind {
        TermKind::PositionError => (
            need_body()?,
            Quantity::PositionError {
                target: vec3("target", &t.target, None)?,
                mask,
            },
            false,
        ),
        TermKind::VelocityError => (
            need_body()?,
            Quantity::VelocityError {
                target: vec3("target", &t.target, Some([0.0; 3]))?,
                mask,
            },
            false,
        ),
        TermKind::AngularVelocityError => (
            need_body()?,
            Quantity::AngularVelocityError {
                target: vec3("target", &t.target, Some([0.0; 3]))?,
                mask,
            },
            false,
        ),
        TermKind::OrientationError => {
            let target = match &t.target {
                Some(v) if v.len() == 4 => [v[0], v[1], v[2], v[3]],
                Some(v) => {
                    return Err(at.error(
                        field("target"),
                        format!(
                            "expected a quaternion [x, y, z, w], found {} numbers",
                            v.len()
                        ),
                    ));
                }
                None => [0.0, 0.0, 0.0, 1.0],
            };
            (need_body()?, Quantity::OrientationError { target }, false)
        }
        TermKind::JointError => {
            let name = t
                .joint
                .clone()
                .ok_or_else(|| at.error(field("type"), "this term needs a joint"))?;
            model
                .joint_index(&name)
                .ok_or_else(|| at.error(field("joint"), format!("no joint '{name}'")))?;
            let axis = t.axis.unwrap_or(0);
            if axis >= 6 {
                return Err(at.error(field("axis"), format!("{axis} is not an axis 0..6")));
            }
            let target = match &t.target {
                Some(v) if v.len() == 1 => v[0],
                None => 0.0,
                Some(v) => {
                    return Err(at.error(
                        field("target"),
                        format!("expected [coordinate], found {} numbers", v.len()),
                    ));
                }
            };
            (name, Quantity::JointError { axis, target }, false)
        }
        TermKind::Position => {
            let direction = t
                .direction
                .ok_or_else(|| at.error(field("type"), "this term needs a direction"))?;
            (
                need_body()?,
                Quantity::Position {
                    direction: linear(direction),
                },
                true,
            )
        }
        TermKind::HealthyHeight => {
            let [min_height, max_height] = t
                .range
                .ok_or_else(|| at.error(field("type"), "this term needs a range [min, max]"))?;
            if !(min_height.is_finite() && max_height.is_finite() && min_height <= max_height) {
                return Err(at.error(field("range"), "must be [min, max] with min <= max"));
            }
            (
                need_body()?,
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
                    return Err(at.error(field("type"), "this term needs a direction"));
                }
            };
            (
                need_body()?,
                Quantity::Velocity {
                    direction: linear(direction),
                },
                true,
            )
        }
    };
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
            t.target.is_some() && matches!(t.kind, TermKind::HealthyHeight | TermKind::ControlCost),
        ),
        ("direction", t.direction.is_some() && !linear_kind),
        ("target", t.target.is_some() && linear_kind),
        ("axis", t.axis.is_some() && t.kind != TermKind::JointError),
    ];
    if let Some((key, _)) = unused.iter().find(|(_, bad)| *bad) {
        return Err(at.error(field(key), "not used by a term of this type"));
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
