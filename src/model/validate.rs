//! Consistency checks on a [`Model`]: every number finite and in range, every name resolved.

use std::collections::{HashMap, HashSet};

use super::{
    ActuatorKind, Body, JointKind, MAX_WORLD_CONTACTS, Model, ShapeKind, WorldShapeKind,
    inertia_from_shapes,
};
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

/// A MuJoCo `solref` is a positive time constant and damping ratio, or a negative stiffness
/// with a non-positive damping; `solimp` has impedances in (0, 1), a width >= 0, a midpoint
/// in (0, 1) and a power >= 1 (MuJoCo clamps what this refuses).
fn impedance(imp: &super::Impedance, key: &str) -> Result<(), ModelError> {
    let [tc, zeta] = imp.solref;
    let refs_ok = tc.is_finite()
        && zeta.is_finite()
        && ((tc > 0.0 && zeta > 0.0) || (tc < 0.0 && zeta <= 0.0));
    if !refs_ok {
        return Err(err(
            FieldPath::key(&format!("{key}.solref")),
            format!(
                "expected a positive time constant and damping ratio, or a negative stiffness \
                 and a damping <= 0, found [{tc}, {zeta}]"
            ),
        ));
    }
    let [d0, dmax, width, mid, power] = imp.solimp;
    let open_unit = |v: f32| v.is_finite() && v > 0.0 && v < 1.0;
    if !(open_unit(d0) && open_unit(dmax) && width.is_finite() && width >= 0.0 && open_unit(mid))
        || !(power.is_finite() && power >= 1.0)
    {
        return Err(err(
            FieldPath::key(&format!("{key}.solimp")),
            format!(
                "expected [d0, dmax, width, midpoint, power] with d0, dmax and midpoint in \
                 (0, 1), width >= 0 and power >= 1, found {:?}",
                imp.solimp
            ),
        ));
    }
    Ok(())
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
    validate_settings(model)?;
    let body_index = validate_bodies(model)?;
    let joint_index = validate_joints(model, &body_index)?;
    super::validate_compounds(model)?;
    validate_actuators(model, &joint_index)?;
    validate_world_shapes(model)?;
    validate_tendons(model)?;
    validate_derived(model, &body_index)
}

/// The settings: a positive time step and frequencies, finite gravity, a bounded number of
/// sweeps, a warm-start factor in [0, 1], a relaxation factor in (0, 2), a fluid of finite
/// non-negative density and viscosity.
fn validate_settings(model: &Model) -> Result<(), ModelError> {
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
    // NaN fails both comparisons.
    if !(s.solver_relaxation > 0.0 && s.solver_relaxation < 2.0) {
        return Err(err(
            FieldPath::key("settings.solver_relaxation"),
            format!("expected a number in (0, 2), found {}", s.solver_relaxation),
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
    if let Some(f) = s.lock_frequency {
        positive(f, FieldPath::key("settings.lock_frequency"))?;
    }
    if let Some(f) = s.limit_frequency {
        positive(f, FieldPath::key("settings.limit_frequency"))?;
    }
    if let Some(z) = s.limit_damping_ratio {
        non_negative(z, FieldPath::key("settings.limit_damping_ratio"))?;
    }
    if let Some(imp) = &s.limit_impedance {
        impedance(imp, "settings.limit_impedance")?;
    }
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
    non_negative(s.fluid_density, FieldPath::key("settings.fluid_density"))?;
    non_negative(
        s.fluid_viscosity,
        FieldPath::key("settings.fluid_viscosity"),
    )?;
    Ok(())
}

/// The bodies, their names unique; returns each name's index.
fn validate_bodies(model: &Model) -> Result<HashMap<&str, usize>, ModelError> {
    // Names are looked up in maps: a linear scan per body or joint is quadratic in the model.
    let mut body_index: HashMap<&str, usize> = HashMap::with_capacity(model.bodies.len());
    for (i, b) in model.bodies.iter().enumerate() {
        let at = |k: &str| FieldPath::item("body", i, k);
        if b.name.is_empty() {
            return Err(err(at("name"), "expected a non-empty name"));
        }
        if body_index.insert(&b.name, i).is_some() {
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
        validate_shapes(i, b)?;
    }
    Ok(body_index)
}

/// The shapes of body `i`: finite placement, unit rotation, positive sizes.
fn validate_shapes(i: usize, b: &Body) -> Result<(), ModelError> {
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
    Ok(())
}

/// The world shapes: finite placement, unit rotation, positive sizes, and a bounded number of
/// candidate contacts.
fn validate_world_shapes(model: &Model) -> Result<(), ModelError> {
    for (k, shape) in model.world_shapes.iter().enumerate() {
        let at = |f: &str| FieldPath::item("world_shape", k, f);
        finite(&shape.position, at("position"))?;
        unit_quat(shape.rotation, at("rotation"))?;
        match shape.kind {
            WorldShapeKind::Plane => {}
            WorldShapeKind::Sphere { radius } => positive(radius, at("radius"))?,
            WorldShapeKind::Capsule {
                radius,
                half_length,
            } => {
                positive(radius, at("radius"))?;
                non_negative(half_length, at("half_length"))?;
            }
            WorldShapeKind::Box { half_extents } => {
                for v in half_extents {
                    positive(v, at("half_extents"))?;
                }
            }
            WorldShapeKind::Cylinder {
                radius,
                half_length,
            } => {
                positive(radius, at("radius"))?;
                positive(half_length, at("half_length"))?;
            }
        }
    }
    let n = model.world_contact_count();
    if n > MAX_WORLD_CONTACTS {
        return Err(err(
            FieldPath::key("world_shape"),
            format!(
                "{n} candidate contacts between the bodies' contact points and the {} world \
                 shapes; at most {MAX_WORLD_CONTACTS} are allowed",
                model.world_shapes.len()
            ),
        ));
    }
    Ok(())
}

/// The joints, their names unique and their bodies known; returns each name's index.
fn validate_joints<'m>(
    model: &'m Model,
    body_index: &HashMap<&str, usize>,
) -> Result<HashMap<&'m str, usize>, ModelError> {
    let mut joint_index: HashMap<&str, usize> = HashMap::with_capacity(model.joints.len());
    for (i, j) in model.joints.iter().enumerate() {
        let at = |k: &str| FieldPath::item("joint", i, k);
        if joint_index.insert(&j.name, i).is_some() {
            return Err(err(
                at("name"),
                format!("duplicate joint name '{}'", j.name),
            ));
        }
        let child = body_index
            .get(j.child.as_str())
            .copied()
            .ok_or_else(|| err(at("child"), format!("unknown body '{}'", j.child)))?;
        if let Some(parent) = &j.parent {
            let p = body_index
                .get(parent.as_str())
                .copied()
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
        validate_passive(model, i)?;
    }
    Ok(joint_index)
}

/// A joint's passive dynamics: coefficients finite and non-negative, only on free axes, a
/// reference only where the coordinate is one number, and the implicit rows' softness finite in
/// the f32 the kernels use.
fn validate_passive(model: &Model, i: usize) -> Result<(), ModelError> {
    let j = &model.joints[i];
    let at = |k: &str| FieldPath::item("joint", i, k);
    for (key, value) in [
        ("damping", j.damping),
        ("stiffness", j.stiffness),
        ("frictionloss", j.frictionloss),
        ("armature", j.armature),
    ] {
        non_negative(value, at(key))?;
        if value > 0.0 && j.kind == JointKind::Fixed {
            return Err(err(at(key), "a fixed joint has no free axis"));
        }
    }
    finite(&[j.springref], at("springref"))?;
    finite(&[j.reference], at("reference"))?;
    if j.kind == JointKind::Ball {
        // A ball joint's coordinates are the three components of its rotation vector.
        if j.springref != 0.0 {
            return Err(err(
                at("springref"),
                "a ball joint's spring rests at its initial pose: springref must be 0",
            ));
        }
        if j.reference != 0.0 {
            return Err(err(
                at("reference"),
                "only hinges and sliders take a reference",
            ));
        }
    }
    let dt = model.settings.dt;
    let damper = j.damping + dt * j.stiffness;
    if damper > 0.0 && !(1.0 / (dt * damper)).is_finite() {
        return Err(err(
            at("damping"),
            format!(
                "damping + dt * stiffness = {damper} makes the spring-damper row's softness \
                 1 / (dt (damping + dt stiffness)) overflow f32"
            ),
        ));
    }
    if j.armature > 0.0 && !(1.0 / j.armature).is_finite() {
        return Err(err(
            at("armature"),
            format!("armature {} has no finite inverse in f32", j.armature),
        ));
    }
    if !(j.springref - j.reference).is_finite() {
        return Err(err(at("springref"), "springref - reference overflows f32"));
    }
    if let Some([lo, hi]) = j.limits
        && !(lo - j.reference).is_finite() | !(hi - j.reference).is_finite()
    {
        return Err(err(at("limits"), "limits - reference overflows f32"));
    }
    Ok(())
}

/// The actuators, their names unique, their joints known and their axes free.
fn validate_actuators(model: &Model, joint_index: &HashMap<&str, usize>) -> Result<(), ModelError> {
    let mut actuator_names: HashSet<&str> = HashSet::with_capacity(model.actuators.len());
    for (i, a) in model.actuators.iter().enumerate() {
        let at = |k: &str| FieldPath::item("actuator", i, k);
        if !actuator_names.insert(&a.name) {
            return Err(err(
                at("name"),
                format!("duplicate actuator name '{}'", a.name),
            ));
        }
        let j = joint_index
            .get(a.joint.as_str())
            .copied()
            .ok_or_else(|| err(at("joint"), format!("unknown joint '{}'", a.joint)))?;
        let free = model.joints[j].free_axes();
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
        if a.kind == ActuatorKind::PositionServo && model.joints[j].reference != 0.0 {
            // The servo's target is measured from the initial pose, the joint's limits and
            // spring from its reference: refused rather than silently mixed.
            return Err(err(
                at("type"),
                format!(
                    "joint '{}' has a reference; position servos measure from the initial \
                     pose, so they are not supported on it",
                    a.joint
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
        validate_affine(model, a, joint_index, &at)?;
    }
    Ok(())
}

/// An affine actuator's force law: present exactly for that kind, finite, ranges ordered,
/// every term on a known hinge or slider.
fn validate_affine(
    model: &Model,
    a: &crate::model::Actuator,
    joint_index: &HashMap<&str, usize>,
    at: &dyn Fn(&str) -> FieldPath,
) -> Result<(), ModelError> {
    let law = match (&a.affine, a.kind == ActuatorKind::Affine) {
        (None, false) => return Ok(()),
        (Some(_), false) => {
            return Err(err(at("affine"), "only an affine actuator has a force law"));
        }
        (None, true) => {
            return Err(err(at("affine"), "an affine actuator needs its force law"));
        }
        (Some(law), true) => law,
    };
    finite(&[law.gain, law.bias[0], law.bias[1]], at("affine"))?;
    for (range, name) in [
        (law.ctrl_range, "ctrl_range"),
        (law.force_range, "force_range"),
    ] {
        if range.iter().any(|v| v.is_nan()) || range[0] > range[1] {
            return Err(err(
                at(name),
                format!(
                    "expected lower <= upper, found [{}, {}]",
                    range[0], range[1]
                ),
            ));
        }
    }
    if let Some(activation) = &law.activation {
        validate_activation(activation, model.settings.dt, at)?;
    }
    if law.terms.is_empty() {
        return Err(err(at("affine"), "the transmission has no joint"));
    }
    for t in &law.terms {
        let Some(&j) = joint_index.get(t.joint.as_str()) else {
            return Err(err(at("affine"), format!("unknown joint '{}'", t.joint)));
        };
        if model.joints[j].free_axes().len() != 1 || t.axis != 0 {
            return Err(err(
                at("affine"),
                format!(
                    "joint '{}': only hinges and sliders (axis 0) can be driven",
                    t.joint
                ),
            ));
        }
        if !t.coefficient.is_finite() || !(t.coefficient * model.joints[j].reference).is_finite() {
            return Err(err(
                at("affine"),
                format!(
                    "joint '{}': coefficient {} is not finite",
                    t.joint, t.coefficient
                ),
            ));
        }
    }
    Ok(())
}

/// An activation: a filter's time constant positive, its rates at the model's time step finite
/// (the kernels divide by nothing else), its range finite and ordered.
fn validate_activation(
    activation: &crate::model::Activation,
    dt: f32,
    at: &dyn Fn(&str) -> FieldPath,
) -> Result<(), ModelError> {
    use crate::model::ActivationDynamics;
    if activation.dynamics != ActivationDynamics::Integrator {
        positive(
            activation.time_constant,
            at("affine.activation.time_constant"),
        )?;
    } else {
        finite(
            &[activation.time_constant],
            at("affine.activation.time_constant"),
        )?;
    }
    let (command_rate, activation_rate) = activation.rates(dt);
    if !(command_rate * dt).is_finite() || !(activation_rate * dt).is_finite() {
        return Err(err(
            at("affine.activation.time_constant"),
            format!(
                "time constant {} gives a rate that overflows at the time step {dt}",
                activation.time_constant
            ),
        ));
    }
    if let Some(range) = activation.range {
        finite(&range, at("affine.activation.range"))?;
        if range[0] > range[1] {
            return Err(err(
                at("affine.activation.range"),
                format!(
                    "expected lower <= upper, found [{}, {}]",
                    range[0], range[1]
                ),
            ));
        }
    }
    Ok(())
}

/// The tendons: names unique, bounds finite and ordered, rows on two bodies.
fn validate_tendons(model: &Model) -> Result<(), ModelError> {
    let mut names: HashSet<&str> = HashSet::with_capacity(model.tendons.len());
    for (i, t) in model.tendons.iter().enumerate() {
        let at = |k: &str| FieldPath::item("tendon", i, k);
        if !names.insert(&t.name) {
            return Err(err(
                at("name"),
                format!("duplicate tendon name '{}'", t.name),
            ));
        }
        if let Some(length) = t.length {
            finite(&[length], at("length"))?;
        }
        if let Some([lo, hi]) = t.limits {
            finite(&[lo, hi], at("limits"))?;
            if lo > hi {
                return Err(err(
                    at("limits"),
                    format!("expected lower <= upper, found [{lo}, {hi}]"),
                ));
            }
        }
        if let Some(spring) = t.spring {
            finite(&[spring.stiffness, spring.rest_length], at("spring"))?;
            if spring.stiffness < 0.0 {
                return Err(err(
                    at("spring.stiffness"),
                    format!("expected a stiffness >= 0, found {}", spring.stiffness),
                ));
            }
        }
        if t.is_spatial() {
            t.site_bodies(model).map_err(|m| err(at("site"), m))?;
            for (k, site) in t.sites.iter().enumerate() {
                finite(
                    &site.position,
                    FieldPath::item("tendon", i, &format!("site[{k}].position")),
                )?;
            }
            if let Some(length) = t.length.filter(|l| *l < 0.0) {
                return Err(err(
                    at("length"),
                    format!(
                        "a spatial tendon's length is a distance: expected >= 0, found {length}"
                    ),
                ));
            }
        } else if t.length.is_some() || t.limits.is_some() {
            // Only rows need the two-body chain; a spring's force is applied term by term.
            t.chain(model).map_err(|m| err(at("term"), m))?;
        } else {
            t.terms_exist(model).map_err(|m| err(at("term"), m))?;
        }
    }
    Ok(())
}

/// Checks what the compiler derives from valid inputs, in the f32 arithmetic the kernels use:
/// finite inputs can still overflow (a 1e38 m sphere's inertia, the inverse of a 1e-45 kg
/// mass, a 1e38 s time step's constraint softness).
fn validate_derived(model: &Model, body_index: &HashMap<&str, usize>) -> Result<(), ModelError> {
    let s = &model.settings;
    let (limit_frequency, limit_damping_ratio) = s.limit_softness();
    for (which, frequency, damping) in [
        ("joint", s.joint_frequency, s.joint_damping_ratio),
        (
            "lock",
            s.lock_frequency.unwrap_or(s.joint_frequency),
            s.joint_damping_ratio,
        ),
        ("limit", limit_frequency, limit_damping_ratio),
        ("contact", s.contact_frequency, s.contact_damping_ratio),
    ] {
        let (mass_scale, cfm_scale, erp) =
            crate::engine::layout::softness(s.dt, frequency, damping);
        if ![mass_scale, cfm_scale, erp].iter().all(|v| v.is_finite()) {
            return Err(err(
                FieldPath::key("settings.dt"),
                format!(
                    "the time step {} s with the {which} frequency {frequency} Hz gives \
                     non-finite constraint softness (mass scale {mass_scale}, CFM scale \
                     {cfm_scale}, ERP {erp}); use a time step of a fraction of a second",
                    s.dt
                ),
            ));
        }
    }
    let dv: Vec<f32> = s.gravity.iter().map(|g| g * s.dt).collect();
    if !dv.iter().all(|v| v.is_finite()) {
        return Err(err(
            FieldPath::key("settings.dt"),
            format!(
                "the velocity change per step from gravity, {dv:?}, is not finite (time step {} s)",
                s.dt
            ),
        ));
    }

    // Inverse mass and inverse principal inertia of each body, as the compiler computes them.
    let mut inverse = Vec::with_capacity(model.bodies.len());
    for (i, b) in model.bodies.iter().enumerate() {
        let at = |k: &str| FieldPath::item("body", i, k);
        let inverse_mass = 1.0 / b.mass;
        if !(inverse_mass.is_finite() && inverse_mass > 0.0) {
            return Err(err(
                at("mass"),
                format!(
                    "the inverse mass 1/{} is {inverse_mass} in f32: use a mass in kg between \
                     about 1e-30 and 1e30",
                    b.mass
                ),
            ));
        }
        let (inertia, field) = match b.inertia {
            Some(i) => (i, "inertia"),
            None => (inertia_from_shapes(b.mass, &b.shapes), "shape"),
        };
        let inverse_inertia = inertia.map(|m| 1.0 / m);
        let fine = |v: &[f32; 3]| v.iter().all(|x| x.is_finite() && *x > 0.0);
        if !fine(&inertia) || !fine(&inverse_inertia) {
            let origin = if field == "shape" {
                "computed from the shapes "
            } else {
                ""
            };
            return Err(err(
                at(field),
                format!(
                    "the inertia {origin}is {inertia:?}, whose inverse {inverse_inertia:?} is \
                     not finite and positive in f32: the shapes or the inertia are too large or \
                     too small"
                ),
            ));
        }
        inverse.push((inverse_mass, inverse_inertia));
    }

    // Inverse effective mass of the constraint rows at the initial pose, bounded by
    // 1/m + |r|^2 max(1/I) on each side: it must stay finite for the solver's impulses to.
    let row_bound = |body: usize, lever: [f32; 3]| {
        let (im, ii) = inverse[body];
        let r2 = lever.iter().map(|x| x * x).sum::<f32>();
        im + r2 * ii.iter().fold(0.0f32, |a, &b| a.max(b))
    };
    for (i, j) in model.joints.iter().enumerate() {
        let lever = |body: usize| {
            let p = model.bodies[body].position;
            [j.anchor[0] - p[0], j.anchor[1] - p[1], j.anchor[2] - p[2]]
        };
        let child = body_index[j.child.as_str()];
        let mut k = row_bound(child, lever(child));
        if let Some(parent) = &j.parent {
            let parent = body_index[parent.as_str()];
            k += row_bound(parent, lever(parent));
        }
        if !(k.is_finite() && (1.0 / k).is_finite()) {
            return Err(err(
                FieldPath::item("joint", i, "anchor"),
                format!(
                    "the joint's constraint rows have inverse effective mass up to {k}, not \
                     finite in f32: check the anchor's distance to the bodies and their masses"
                ),
            ));
        }
    }
    for (i, b) in model.bodies.iter().enumerate() {
        for (k, shape) in b.shapes.iter().enumerate() {
            let reach = match shape.kind {
                ShapeKind::Sphere { radius } => radius,
                ShapeKind::Capsule {
                    radius,
                    half_length,
                } => radius + half_length,
                ShapeKind::Box { half_extents: h } => {
                    (h[0] * h[0] + h[1] * h[1] + h[2] * h[2]).sqrt()
                }
            };
            let o = shape.offset;
            let r = (o[0] * o[0] + o[1] * o[1] + o[2] * o[2]).sqrt() + reach;
            let bound = row_bound(i, [r, 0.0, 0.0]);
            if !(bound.is_finite() && (1.0 / bound).is_finite()) {
                return Err(err(
                    FieldPath(vec![
                        PathSegment::Key("body".into()),
                        PathSegment::Index(i),
                        PathSegment::Key("shape".into()),
                        PathSegment::Index(k),
                    ]),
                    format!(
                        "the shape's contacts have inverse effective mass up to {bound}, not \
                         finite in f32: the shape is too large or too far from the body"
                    ),
                ));
            }
        }
    }
    Ok(())
}
