//! The model compiled into flat arrays, shared by the GPU kernels and their CPU twins.
//!
//! Per-instance arrays (state, parameters, commands, row scratch) are stored slot-major with the
//! instance index innermost (`array[slot * n_instances + instance]`), so that neighbouring GPU
//! invocations read neighbouring addresses. Model data that every instance shares (joint frames,
//! contact points, the row table) is packed once into a `u32` array of fixed-size records.
//!
//! Body 0 is the static world: zero inverse mass, never integrated, so that a joint to the world
//! is an ordinary two-body constraint and no kernel branches on it.

use bytemuck::{Pod, Zeroable};
use glam::{Quat, Vec3};

use crate::model::{ActuatorKind, Model, ShapeKind};

/// Floats of state per body: position (3), orientation quaternion xyzw (4), linear velocity (3),
/// angular velocity (3).
pub const BODY_STATE_LEN: usize = 13;
/// Floats of parameters per body: inverse mass and the three principal inverse inertias.
pub const BODY_PARAM_LEN: usize = 4;
/// Floats of scratch per constraint row: 8 `vec4` records on the GPU (see
/// `shaders/solver.wgsl`), 30 fields used.
pub const ROW_LEN: usize = 32;
/// Stand-in for an unbounded impulse.
pub const UNBOUNDED: f32 = 1.0e20;

/// Loop iterations after which Mesa's lavapipe (22.3) silently leaves every loop of a compute
/// invocation, counted across all its loops: past it a kernel returns wrong results without
/// any error.
pub const LOOP_ITERATION_CAP: u32 = 65_535;
/// Loop iterations one dispatch may ask of an invocation: half the cap, because
/// [`Compiled::loop_iterations_per_step`] is an estimate from the loop bounds in `shaders/`
/// and a driver may count some iterations differently.
pub const LOOP_ITERATION_BUDGET: u32 = LOOP_ITERATION_CAP / 2;

/// Bodies (the world included) up to which the Gauss-Seidel sweeps keep velocities in private
/// (function-scope) memory: 2 x 16 bytes each. With [`PRIVATE_SOLVER_ROWS`] a kernel asks
/// for 2 KiB of private memory per invocation, which GPUs hold in registers and local memory.
/// Larger models run the sweeps on storage memory with the same arithmetic.
pub const PRIVATE_SOLVER_BODIES: u32 = 32;
/// Constraint rows up to which the sweeps keep accumulated impulses in private memory.
pub const PRIVATE_SOLVER_ROWS: u32 = 256;

/// Record strides (in `u32` words) in the packed model array. `src/engine/shaders.rs` emits them into
/// every kernel's prelude as `JOINT_RECORD_LEN`, `LOCK_RECORD_LEN`, ...; a test checks that
/// [`Compiled::new`] packs with them and that the kernels index with them.
pub mod stride {
    /// `[body_a, body_b, is_hinge, 0, frame_a xyzw, frame_b xyzw]`
    pub const JOINT: usize = 12;
    /// `[joint, axis, 0, 0]`
    pub const LOCK: usize = 4;
    /// `[joint, axis, lower, upper]`
    pub const LIMIT: usize = 4;
    /// `[actuator, joint, axis, kind]` (kind 0: position servo, 1: velocity servo)
    pub const SERVO: usize = 4;
    /// `[actuator, joint, axis, 0]`
    pub const FORCE: usize = 4;
    /// `[body, offset xyz, radius, 0, 0, 0]`
    pub const CONTACT: usize = 8;
    /// `[body_a, body_b, offset_a xyz, radius_a, offset_b xyz, radius_b, 0, 0]`
    pub const PAIR: usize = 12;
    /// `[body_a, body_b, reference_row, 0]`
    pub const ROW: usize = 4;
}

/// The uniform block every kernel reads; field order matches `struct Header` in
/// `shaders/common.wgsl` (checked field by field against naga's reflection by a test).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct Header {
    pub n_instances: u32,
    pub n_bodies: u32,
    pub n_joints: u32,
    pub n_lock: u32,
    pub n_limit: u32,
    pub n_servo: u32,
    pub n_force: u32,
    pub n_contacts: u32,
    pub n_pairs: u32,
    pub n_rows: u32,
    pub sweeps: u32,
    pub steps: u32,
    pub state_len: u32,
    pub param_len: u32,
    pub n_commands: u32,
    pub off_joint: u32,
    pub off_lock: u32,
    pub off_limit: u32,
    pub off_servo: u32,
    pub off_force: u32,
    pub off_contact: u32,
    pub off_pair: u32,
    pub off_row: u32,
    pub row_limit: u32,
    pub row_servo: u32,
    pub row_contact: u32,
    pub row_pair: u32,
    pub p_contact: u32,
    pub p_actuator: u32,
    pub p_joint: u32,
    pub p_pair: u32,
    pub state_lambda: u32,
    pub dt: f32,
    pub gravity_x: f32,
    pub gravity_y: f32,
    pub gravity_z: f32,
    pub warm_start: f32,
    pub joint_mass_scale: f32,
    pub joint_cfm_scale: f32,
    pub joint_erp: f32,
    pub contact_mass_scale: f32,
    pub contact_cfm_scale: f32,
    pub contact_erp: f32,
    pub restitution_threshold: f32,
    /// Step of the command sequence that a dispatch starts on.
    pub command_base_step: u32,
    /// 1 when commands are a sequence over steps, 0 when one set is held.
    pub command_step_stride: u32,
    pub adj_state: u32,
    pub adj_params: u32,
    pub adj_commands: u32,
    pub adj_rows: u32,
    pub adj_history: u32,
    pub adj_saved: u32,
    pub adj_start: u32,
    /// Floats per instance in the adjoint buffer.
    pub adj_len: u32,
    pub n_loss_terms: u32,
    /// The step whose state the loss kernels see (its index in the rollout).
    pub loss_step: u32,
    /// Number of steps of a differentiable rollout.
    pub horizon: u32,
    /// Factor applied to the state adjoint after each adjoint step (1: exact gradient).
    pub gradient_decay: f32,
    /// Slot of the adjoint buffer recording the first step (plus one) with a non-finite adjoint.
    pub adj_nonfinite: u32,
    /// 1 to accumulate parameter adjoints, 0 to skip them (they then cost nothing).
    pub param_gradients: u32,
}

/// Soft-constraint coefficients from a frequency and damping ratio (Catto's soft constraints):
/// with `s = dt w (2 z + dt w)`, the effective mass is scaled by `s / (1 + s)`, the CFM is
/// `K / s` for a row of inverse effective mass `K`, and the ERP is `dt w / (2 z + dt w)`.
pub fn softness(dt: f32, frequency: f32, damping_ratio: f32) -> (f32, f32, f32) {
    let omega = 2.0 * std::f32::consts::PI * frequency;
    let h_omega = dt * omega;
    let s = h_omega * (2.0 * damping_ratio + h_omega);
    (
        s / (1.0 + s),
        1.0 / s,
        h_omega / (2.0 * damping_ratio + h_omega),
    )
}

/// What one parameter slot means, for randomisation and gradients.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamSlot {
    /// Inverse mass of a model body (index into `Model::bodies`).
    InverseMass(usize),
    /// Inverse principal inertia `k` of a model body.
    InverseInertia(usize, usize),
    /// Friction of a ground contact point.
    ContactFriction(usize),
    /// Restitution of a ground contact point.
    ContactRestitution(usize),
    /// Servo gain of an actuator.
    ServoGain(usize),
    /// Maximal force or torque of an actuator.
    MaxForce(usize),
    /// Maximal speed of an actuator.
    MaxVelocity(usize),
    /// Joint anchor in the parent's frame, component `k`.
    AnchorParent(usize, usize),
    /// Joint anchor in the child's frame, component `k`.
    AnchorChild(usize, usize),
    /// Friction of a sphere pair.
    PairFriction(usize),
    /// Restitution of a sphere pair.
    PairRestitution(usize),
    /// The world body's slots (always zero).
    World,
}

/// A model compiled for the kernels.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// Uniform header (with `n_instances` and `steps` still to be set per dispatch).
    pub header: Header,
    /// Packed shared model records.
    pub packed: Vec<u32>,
    /// One instance's initial state (`header.state_len` floats).
    pub initial_state: Vec<f32>,
    /// One instance's default parameters (`header.param_len` floats).
    pub default_params: Vec<f32>,
    /// Meaning of each parameter slot.
    pub param_slots: Vec<ParamSlot>,
    /// Model body index of each ground contact point.
    pub contact_body: Vec<usize>,
}

fn push_f32(v: &mut Vec<u32>, x: f32) {
    v.push(x.to_bits());
}

impl Compiled {
    /// Compiles a validated model.
    pub fn new(model: &Model) -> Compiled {
        let s = &model.settings;
        let n_bodies = model.bodies.len() + 1;
        // Names resolve through maps: a scan per joint and actuator is quadratic in the model.
        let body_slots: std::collections::HashMap<&str, usize> = model
            .bodies
            .iter()
            .enumerate()
            .map(|(i, b)| (b.name.as_str(), i + 1))
            .collect();
        let joint_indices: std::collections::HashMap<&str, usize> = model
            .joints
            .iter()
            .enumerate()
            .map(|(i, j)| (j.name.as_str(), i))
            .collect();
        let body_slot = |name: &str| body_slots.get(name).copied().unwrap_or(0);
        let pose = |slot: usize| -> (Vec3, Quat) {
            if slot == 0 {
                (Vec3::ZERO, Quat::IDENTITY)
            } else {
                let b = &model.bodies[slot - 1];
                (
                    Vec3::from_array(b.position),
                    Quat::from_array(b.orientation).normalize(),
                )
            }
        };

        let mut packed = Vec::new();
        let mut params = Vec::new();
        let mut slots = Vec::new();

        // Bodies: world first.
        params.extend_from_slice(&[0.0; BODY_PARAM_LEN]);
        slots.extend(std::iter::repeat_n(ParamSlot::World, BODY_PARAM_LEN));
        for (i, b) in model.bodies.iter().enumerate() {
            let inertia = b
                .inertia
                .unwrap_or_else(|| crate::model::inertia_from_shapes(b.mass, &b.shapes));
            params.push(1.0 / b.mass);
            slots.push(ParamSlot::InverseMass(i));
            for (k, moment) in inertia.iter().enumerate() {
                params.push(1.0 / moment);
                slots.push(ParamSlot::InverseInertia(i, k));
            }
        }

        // Joints.
        let off_joint = packed.len();
        let mut joint_bodies = Vec::new();
        let mut anchors = Vec::new();
        for j in &model.joints {
            let a = j.parent.as_deref().map(body_slot).unwrap_or(0);
            let b = body_slot(&j.child);
            joint_bodies.push((a, b));
            let axis = Vec3::from_array(j.axis).normalize();
            let frame = Quat::from_rotation_arc(Vec3::X, axis);
            let (xa, qa) = pose(a);
            let (xb, qb) = pose(b);
            let anchor = Vec3::from_array(j.anchor);
            let frame_a = (qa.conjugate() * frame).normalize();
            let frame_b = (qb.conjugate() * frame).normalize();
            let hinge = u32::from(j.kind == crate::model::JointKind::Hinge);
            packed.extend_from_slice(&[a as u32, b as u32, hinge, 0]);
            for x in frame_a.to_array().into_iter().chain(frame_b.to_array()) {
                push_f32(&mut packed, x);
            }
            anchors.push((
                qa.conjugate() * (anchor - xa),
                qb.conjugate() * (anchor - xb),
            ));
        }

        // Row groups, in solve order: locks, limits, servos, ground contacts, sphere pairs.
        let mut row_desc: Vec<[u32; 4]> = Vec::new();
        let off_lock = packed.len();
        for (ji, j) in model.joints.iter().enumerate() {
            for (axis, locked) in j.kind.locked_axes().iter().enumerate() {
                if *locked {
                    packed.extend_from_slice(&[ji as u32, axis as u32, 0, 0]);
                    let (a, b) = joint_bodies[ji];
                    row_desc.push([a as u32, b as u32, row_desc.len() as u32, 0]);
                }
            }
        }
        let n_lock = row_desc.len();
        let off_limit = packed.len();
        let row_limit = row_desc.len();
        for (ji, j) in model.joints.iter().enumerate() {
            if let Some([lo, hi]) = j.limits {
                for &axis in j.kind.free_axes() {
                    packed.extend_from_slice(&[ji as u32, axis, lo.to_bits(), hi.to_bits()]);
                    let (a, b) = joint_bodies[ji];
                    row_desc.push([a as u32, b as u32, row_desc.len() as u32, 0]);
                }
            }
        }
        let n_limit = row_desc.len() - row_limit;

        let off_servo = packed.len();
        let row_servo = row_desc.len();
        let mut force_records = Vec::new();
        for (ai, act) in model.actuators.iter().enumerate() {
            let ji = joint_indices.get(act.joint.as_str()).copied().unwrap_or(0);
            let axis = model.joints[ji].kind.free_axes()[act.axis as usize];
            let (a, b) = joint_bodies[ji];
            match act.kind {
                ActuatorKind::PositionServo | ActuatorKind::VelocityServo => {
                    let kind = u32::from(act.kind == ActuatorKind::VelocityServo);
                    packed.extend_from_slice(&[ai as u32, ji as u32, axis, kind]);
                    row_desc.push([a as u32, b as u32, row_desc.len() as u32, 0]);
                }
                ActuatorKind::Force => force_records.push([ai as u32, ji as u32, axis, 0]),
            }
        }
        let n_servo = row_desc.len() - row_servo;
        let off_force = packed.len();
        for r in &force_records {
            packed.extend_from_slice(r);
        }

        // Ground contact points from shapes.
        let off_contact = packed.len();
        let row_contact = row_desc.len();
        let mut contact_body = Vec::new();
        let mut contact_params = Vec::new();
        let mut spheres: Vec<(usize, Vec3, f32)> = Vec::new();
        for (bi, body) in model.bodies.iter().enumerate() {
            for shape in &body.shapes {
                let rot = Quat::from_array(shape.rotation).normalize();
                let centre = Vec3::from_array(shape.offset);
                let mut points: Vec<(Vec3, f32)> = Vec::new();
                match shape.kind {
                    ShapeKind::Sphere { radius } => {
                        points.push((centre, radius));
                        spheres.push((bi + 1, centre, radius));
                    }
                    ShapeKind::Capsule {
                        radius,
                        half_length,
                    } => {
                        let half = rot * Vec3::new(0.0, 0.0, half_length);
                        points.push((centre + half, radius));
                        points.push((centre - half, radius));
                    }
                    ShapeKind::Box { half_extents: h } => {
                        for corner in 0..8 {
                            let sign = |bit: usize| if corner >> bit & 1 == 1 { 1.0 } else { -1.0 };
                            let local = Vec3::new(sign(0) * h[0], sign(1) * h[1], sign(2) * h[2]);
                            points.push((centre + rot * local, 0.0));
                        }
                    }
                }
                for (p, r) in points {
                    packed.extend_from_slice(&[(bi + 1) as u32]);
                    for x in [p.x, p.y, p.z, r] {
                        push_f32(&mut packed, x);
                    }
                    packed.extend_from_slice(&[0, 0, 0]);
                    let normal = row_desc.len() as u32;
                    row_desc.push([0, (bi + 1) as u32, normal, 0]);
                    row_desc.push([0, (bi + 1) as u32, normal, 0]);
                    row_desc.push([0, (bi + 1) as u32, normal, 0]);
                    contact_body.push(bi);
                    contact_params.push((body.friction, body.restitution));
                }
            }
        }
        let n_contacts = contact_body.len();

        // Sphere pairs between bodies that share no joint.
        let off_pair = packed.len();
        let row_pair = row_desc.len();
        let mut pair_params = Vec::new();
        if s.sphere_collisions {
            for (ia, &(a, oa, ra)) in spheres.iter().enumerate() {
                for &(b, ob, rb) in &spheres[ia + 1..] {
                    let jointed = joint_bodies
                        .iter()
                        .any(|&(p, c)| (p == a && c == b) || (p == b && c == a));
                    if a == b || jointed {
                        continue;
                    }
                    packed.extend_from_slice(&[a as u32, b as u32]);
                    for x in [oa.x, oa.y, oa.z, ra, ob.x, ob.y, ob.z, rb] {
                        push_f32(&mut packed, x);
                    }
                    packed.extend_from_slice(&[0, 0]);
                    let normal = row_desc.len() as u32;
                    for _ in 0..3 {
                        row_desc.push([a as u32, b as u32, normal, 0]);
                    }
                    let (ba, bb) = (&model.bodies[a - 1], &model.bodies[b - 1]);
                    pair_params.push((
                        0.5 * (ba.friction + bb.friction),
                        ba.restitution.max(bb.restitution),
                    ));
                }
            }
        }
        let n_pairs = pair_params.len();

        let off_row = packed.len();
        for r in &row_desc {
            packed.extend_from_slice(r);
        }

        // Remaining parameters.
        let p_contact = params.len();
        for (c, (mu, e)) in contact_params.iter().enumerate() {
            params.extend_from_slice(&[*mu, *e]);
            slots.extend([
                ParamSlot::ContactFriction(c),
                ParamSlot::ContactRestitution(c),
            ]);
        }
        let p_actuator = params.len();
        for (ai, a) in model.actuators.iter().enumerate() {
            params.extend_from_slice(&[a.gain, a.max_force, a.max_velocity]);
            slots.extend([
                ParamSlot::ServoGain(ai),
                ParamSlot::MaxForce(ai),
                ParamSlot::MaxVelocity(ai),
            ]);
        }
        let p_joint = params.len();
        for (ji, (aa, ab)) in anchors.iter().enumerate() {
            params.extend_from_slice(&aa.to_array());
            params.extend_from_slice(&ab.to_array());
            slots.extend((0..3).map(|k| ParamSlot::AnchorParent(ji, k)));
            slots.extend((0..3).map(|k| ParamSlot::AnchorChild(ji, k)));
        }
        let p_pair = params.len();
        for (p, (mu, e)) in pair_params.iter().enumerate() {
            params.extend_from_slice(&[*mu, *e]);
            slots.extend([ParamSlot::PairFriction(p), ParamSlot::PairRestitution(p)]);
        }

        // Initial state: bodies, then one warm-start impulse per row.
        let mut state = vec![0.0; BODY_STATE_LEN];
        state[6] = 1.0;
        for b in &model.bodies {
            let q = Quat::from_array(b.orientation).normalize();
            state.extend_from_slice(&b.position);
            state.extend_from_slice(&q.to_array());
            state.extend_from_slice(&b.linear_velocity);
            state.extend_from_slice(&b.angular_velocity);
        }
        let state_lambda = state.len();
        state.extend(std::iter::repeat_n(0.0, row_desc.len()));

        let (joint_mass_scale, joint_cfm_scale, joint_erp) =
            softness(s.dt, s.joint_frequency, s.joint_damping_ratio);
        let (contact_mass_scale, contact_cfm_scale, contact_erp) =
            softness(s.dt, s.contact_frequency, s.contact_damping_ratio);

        let state_len = state.len() as u32;
        let n_rows = row_desc.len() as u32;
        let adj_params = state_len;
        let adj_commands = adj_params + params.len() as u32;
        let adj_rows = adj_commands + model.actuators.len() as u32;
        let adj_history = adj_rows + n_rows * ROW_LEN as u32;
        let adj_saved = adj_history + n_rows * s.solver_iterations;
        let adj_start = adj_saved + state_len;
        let adj_nonfinite = adj_start + state_len;
        let adj_len = adj_nonfinite + 1;
        let header = Header {
            n_instances: 1,
            n_bodies: n_bodies as u32,
            n_joints: model.joints.len() as u32,
            n_lock: n_lock as u32,
            n_limit: n_limit as u32,
            n_servo: n_servo as u32,
            n_force: force_records.len() as u32,
            n_contacts: n_contacts as u32,
            n_pairs: n_pairs as u32,
            n_rows: row_desc.len() as u32,
            sweeps: s.solver_iterations,
            steps: 1,
            state_len: state.len() as u32,
            param_len: params.len() as u32,
            n_commands: model.actuators.len() as u32,
            off_joint: off_joint as u32,
            off_lock: off_lock as u32,
            off_limit: off_limit as u32,
            off_servo: off_servo as u32,
            off_force: off_force as u32,
            off_contact: off_contact as u32,
            off_pair: off_pair as u32,
            off_row: off_row as u32,
            row_limit: row_limit as u32,
            row_servo: row_servo as u32,
            row_contact: row_contact as u32,
            row_pair: row_pair as u32,
            p_contact: p_contact as u32,
            p_actuator: p_actuator as u32,
            p_joint: p_joint as u32,
            p_pair: p_pair as u32,
            state_lambda: state_lambda as u32,
            dt: s.dt,
            gravity_x: s.gravity[0],
            gravity_y: s.gravity[1],
            gravity_z: s.gravity[2],
            warm_start: s.warm_start,
            joint_mass_scale,
            joint_cfm_scale,
            joint_erp,
            contact_mass_scale,
            contact_cfm_scale,
            contact_erp,
            restitution_threshold: s.restitution_threshold,
            command_base_step: 0,
            command_step_stride: 0,
            adj_state: 0,
            adj_params,
            adj_commands,
            adj_rows,
            adj_history,
            adj_saved,
            adj_start,
            adj_len,
            n_loss_terms: 0,
            loss_step: 0,
            horizon: 1,
            gradient_decay: 1.0,
            adj_nonfinite,
            param_gradients: 1,
        };
        if packed.is_empty() {
            // wgpu rejects zero-sized bindings.
            packed.push(0);
        }
        Compiled {
            header,
            packed,
            initial_state: state,
            default_params: params,
            param_slots: slots,
            contact_body,
        }
    }

    /// Number of constraint rows.
    pub fn n_rows(&self) -> usize {
        self.header.n_rows as usize
    }

    /// Whether the sweeps of this model run on private copies of the solver state (the
    /// fast path), rather than on storage memory.
    pub fn solver_state_fits_private(&self) -> bool {
        self.header.n_bodies <= PRIVATE_SOLVER_BODIES && self.header.n_rows <= PRIVATE_SOLVER_ROWS
    }

    /// Loop iterations one forward step asks of an invocation: every loop of the step kernel's
    /// stages (bodies, actuators, joint rows, contacts, the warm start and the Gauss-Seidel
    /// sweeps), plus the step loop itself. Enforced on every backend, since a kernel's result
    /// must not depend on the driver.
    pub fn loop_iterations_per_step(&self) -> u32 {
        let h = &self.header;
        let rows = h.n_rows.saturating_add(1);
        let sweeps = h.sweeps.saturating_mul(rows).saturating_add(h.sweeps);
        // Bodies: the two integrations, and loading and storing the solver's velocities.
        let bodies = h.n_bodies.saturating_mul(4);
        let others = [
            h.n_force,
            h.n_lock,
            h.n_limit,
            h.n_servo,
            h.n_contacts,
            h.n_pairs,
            rows.saturating_mul(2),
            bodies,
            1,
        ];
        others
            .iter()
            .fold(sweeps, |total, &n| total.saturating_add(n))
    }

    /// The most steps one dispatch of the forward kernel may run without exceeding
    /// [`LOOP_ITERATION_BUDGET`] (at least 1: a single step over the budget is dispatched
    /// alone).
    pub fn max_steps_per_dispatch(&self) -> u32 {
        (LOOP_ITERATION_BUDGET / self.loop_iterations_per_step().max(1)).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_per_dispatch_stay_within_the_loop_budget() {
        for name in crate::io::models::names() {
            for sweeps in [1, 20, 200, 1000] {
                let mut model = crate::io::models::builtin(name).unwrap();
                model.settings.solver_iterations = sweeps;
                let c = Compiled::new(&model);
                let per_step = c.loop_iterations_per_step();
                assert!(per_step > c.header.sweeps * c.header.n_rows, "{name}");
                let steps = c.max_steps_per_dispatch();
                assert!(steps >= 1);
                if per_step <= LOOP_ITERATION_BUDGET {
                    assert!(steps * per_step <= LOOP_ITERATION_BUDGET, "{name} {sweeps}");
                    assert!(
                        (steps + 1) * per_step > LOOP_ITERATION_BUDGET,
                        "{name} {sweeps}"
                    );
                }
            }
        }
    }
}
