//! Consistency checks on a [`Model`]: every number finite and in range, every name resolved.

use super::{ActuatorKind, JointKind, Model, ShapeKind};
use crate::error::{FieldPath, ModelError, PathSegment};

fn err(field: FieldPath, message: impl Into<String>) -> ModelError {
    ModelError {
        file: None,
        line: None,
        field,
        message: message.into(),
    }
}

fn finite(values: &[f32], field: FieldPath) -> Result<(), ModelError> {
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(err(
            field,
            format!("expected finite numbers, found {values:?}"),
        ))
    }
}

fn positive(value: f32, field: FieldPath) -> Result<(), ModelError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(err(
            field,
            format!("expected a positive number, found {value}"),
        ))
    }
}

fn non_negative(value: f32, field: FieldPath) -> Result<(), ModelError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(err(field, format!("expected a number >= 0, found {value}")))
    }
}

fn unit_quat(q: [f32; 4], field: FieldPath) -> Result<(), ModelError> {
    finite(&q, field.clone())?;
    let n = q.iter().map(|v| v * v).sum::<f32>().sqrt();
    if (n - 1.0).abs() > 1e-3 {
        return Err(err(
            field,
            format!("expected a unit quaternion [x, y, z, w], found norm {n}"),
        ));
    }
    Ok(())
}

/// Checks a model; the first problem found is returned with its field path.
pub fn validate(model: &Model) -> Result<(), ModelError> {
    let s = &model.settings;
    positive(s.dt, FieldPath::key("settings.dt"))?;
    finite(&s.gravity, FieldPath::key("settings.gravity"))?;
    if s.solver_iterations == 0 || s.solver_iterations > 1000 {
        return Err(err(
            FieldPath::key("settings.solver_iterations"),
            format!("expected 1..=1000, found {}", s.solver_iterations),
        ));
    }
    if !(0.0..=1.0).contains(&s.warm_start) {
        return Err(err(
            FieldPath::key("settings.warm_start"),
            format!("expected a number in [0, 1], found {}", s.warm_start),
        ));
    }
    positive(
        s.joint_frequency,
        FieldPath::key("settings.joint_frequency"),
    )?;
    non_negative(
        s.joint_damping_ratio,
        FieldPath::key("settings.joint_damping_ratio"),
    )?;
    positive(
        s.contact_frequency,
        FieldPath::key("settings.contact_frequency"),
    )?;
    non_negative(
        s.contact_damping_ratio,
        FieldPath::key("settings.contact_damping_ratio"),
    )?;
    non_negative(
        s.restitution_threshold,
        FieldPath::key("settings.restitution_threshold"),
    )?;

    if model.bodies.is_empty() {
        return Err(err(
            FieldPath::key("body"),
            "a model needs at least one body",
        ));
    }
    for (i, b) in model.bodies.iter().enumerate() {
        let at = |k: &str| FieldPath::item("body", i, k);
        if b.name.is_empty() {
            return Err(err(at("name"), "expected a non-empty name"));
        }
        if model.bodies[..i].iter().any(|o| o.name == b.name) {
            return Err(err(at("name"), format!("duplicate body name '{}'", b.name)));
        }
        positive(b.mass, at("mass"))?;
        if let Some(inertia) = b.inertia {
            for (k, v) in inertia.iter().enumerate() {
                positive(*v, at(&format!("inertia[{k}]")))?;
            }
        }
        finite(&b.position, at("position"))?;
        unit_quat(b.orientation, at("orientation"))?;
        finite(&b.linear_velocity, at("linear_velocity"))?;
        finite(&b.angular_velocity, at("angular_velocity"))?;
        non_negative(b.friction, at("friction"))?;
        if !(0.0..=1.0).contains(&b.restitution) {
            return Err(err(
                at("restitution"),
                format!("expected a number in [0, 1], found {}", b.restitution),
            ));
        }
        for (k, shape) in b.shapes.iter().enumerate() {
            let sat = |f: &str| {
                FieldPath(vec![
                    PathSegment::Key("body".into()),
                    PathSegment::Index(i),
                    PathSegment::Key("shape".into()),
                    PathSegment::Index(k),
                    PathSegment::Key(f.into()),
                ])
            };
            finite(&shape.offset, sat("offset"))?;
            unit_quat(shape.rotation, sat("rotation"))?;
            match shape.kind {
                ShapeKind::Sphere { radius } => positive(radius, sat("radius"))?,
                ShapeKind::Capsule {
                    radius,
                    half_length,
                } => {
                    positive(radius, sat("radius"))?;
                    non_negative(half_length, sat("half_length"))?;
                }
                ShapeKind::Box { half_extents } => {
                    for v in half_extents {
                        positive(v, sat("half_extents"))?;
                    }
                }
            }
        }
    }

    for (i, j) in model.joints.iter().enumerate() {
        let at = |k: &str| FieldPath::item("joint", i, k);
        if model.joints[..i].iter().any(|o| o.name == j.name) {
            return Err(err(
                at("name"),
                format!("duplicate joint name '{}'", j.name),
            ));
        }
        let child = model
            .body_index(&j.child)
            .ok_or_else(|| err(at("child"), format!("unknown body '{}'", j.child)))?;
        if let Some(parent) = &j.parent {
            let p = model
                .body_index(parent)
                .ok_or_else(|| err(at("parent"), format!("unknown body '{parent}'")))?;
            if p == child {
                return Err(err(at("parent"), "a joint cannot connect a body to itself"));
            }
        }
        finite(&j.anchor, at("anchor"))?;
        finite(&j.axis, at("axis"))?;
        let axis_len = j.axis.iter().map(|v| v * v).sum::<f32>().sqrt();
        if axis_len < 1e-6 {
            return Err(err(at("axis"), "expected a non-zero axis"));
        }
        if let Some([lo, hi]) = j.limits {
            finite(&[lo, hi], at("limits"))?;
            if lo > hi {
                return Err(err(
                    at("limits"),
                    format!("expected lower <= upper, found [{lo}, {hi}]"),
                ));
            }
            if j.kind == JointKind::Fixed {
                return Err(err(at("limits"), "a fixed joint has no free axis to limit"));
            }
        }
    }

    for (i, a) in model.actuators.iter().enumerate() {
        let at = |k: &str| FieldPath::item("actuator", i, k);
        if model.actuators[..i].iter().any(|o| o.name == a.name) {
            return Err(err(
                at("name"),
                format!("duplicate actuator name '{}'", a.name),
            ));
        }
        let j = model
            .joint_index(&a.joint)
            .ok_or_else(|| err(at("joint"), format!("unknown joint '{}'", a.joint)))?;
        let free = model.joints[j].kind.free_axes();
        if a.axis as usize >= free.len() {
            return Err(err(
                at("axis"),
                format!(
                    "joint '{}' has {} free axes, so axis {} does not exist",
                    a.joint,
                    free.len(),
                    a.axis
                ),
            ));
        }
        positive(a.max_force, at("max_force"))?;
        positive(a.max_velocity, at("max_velocity"))?;
        if a.kind == ActuatorKind::PositionServo {
            positive(a.gain, at("gain"))?;
        } else {
            non_negative(a.gain, at("gain"))?;
        }
    }
    Ok(())
}
