//! The model compiled into flat arrays, shared by the GPU kernels and their CPU twins.
//!
//! Per-instance arrays (state, parameters, commands, row scratch) are stored instance-blocked:
//! blocks of a workgroup's instances, slot-major with the instance innermost within a block
//! ([`crate::engine::buffers::device_index`]), so that neighbouring GPU invocations read
//! neighbouring addresses. Model data that every instance shares (joint frames, contact points,
//! the row table) is packed once into a `u32` array of fixed-size records.
//!
//! Body 0 is the static world: zero inverse mass, never integrated, so that a joint to the world
//! is an ordinary two-body constraint and no kernel branches on it.

use glam::{Quat, Vec3};

use crate::model::Model;

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

/// Word 3 of a row's `[body_a, body_b, reference_row, block, relaxation, ..]` entry for a row that the solver
/// updates together with its block's lead row, not at its own place in the sweep. A lead row
/// (a joint limit row) holds its partner's row index plus one there (a passive armature row on
/// the same joint axis, see [`PassiveRow`]); every other row holds 0. The two rows share their
/// Jacobian up to sign, so Gauss-Seidel between them converges by `K^2 / ((K + cfm_a)(K +
/// cfm_b))` per sweep, about 0.999 for a heavy rotor on a light body; the block is solved
/// exactly instead.
pub const ROW_BLOCK_FOLLOWER: u32 = u32::MAX;

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

mod fluid;
mod header;
mod pack;
mod passive;

pub use fluid::inertia_box;
pub use header::{Header, stride};
#[cfg(test)]
pub(crate) use pack::{AFFINE_LAW_HEAD, NO_ACTIVATION};
use pack::{pack_joints, push_body_params, push_row_params};
pub use passive::{PassiveRow, passive_rows};

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
    /// Friction of a contact point against a world shape (index of the candidate contact).
    WorldContactFriction(usize),
    /// Restitution of a contact point against a world shape.
    WorldContactRestitution(usize),
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
    /// Model body index and world shape index of each contact against a world shape.
    pub world_contacts: Vec<(usize, usize)>,
}

/// Model records and constraint row descriptors, grown one section after another.
#[derive(Default)]
struct Packing {
    packed: Vec<u32>,
    row_desc: Vec<[u32; 4]>,
    /// `(joint, axis, row)` of every limit row, for pairing it with a passive row.
    limit_rows: Vec<(u32, u32, usize)>,
}

/// Where each section of the packed records, the rows and the parameters starts, and how many
/// entries it has: the counts the header is made of.
struct Sections {
    off_joint: usize,
    off_lock: usize,
    n_lock: usize,
    off_limit: usize,
    row_limit: usize,
    n_limit: usize,
    off_servo: usize,
    row_servo: usize,
    n_servo: usize,
    off_force: usize,
    n_force: usize,
    off_contact: usize,
    row_contact: usize,
    n_contacts: usize,
    off_pair: usize,
    row_pair: usize,
    n_pairs: usize,
    off_row: usize,
    tendons: TendonSections,
    p_contact: usize,
    p_actuator: usize,
    p_joint: usize,
    p_pair: usize,
    state_lambda: usize,
    off_world_contact: usize,
    row_world_contact: usize,
    n_world_contacts: usize,
    p_world_contact: usize,
    off_passive: usize,
    row_passive: usize,
    n_passive: usize,
    off_fluid: usize,
    n_fluid: usize,
}

/// Where the tendon records, their terms and their rows start, and how many there are.
#[derive(Default)]
struct TendonSections {
    off_tendon: usize,
    off_tendon_term: usize,
    row_tendon: usize,
    n_tendon: usize,
    n_tendon_terms: usize,
}

/// Start offsets of the parameter sections after the bodies'.
struct ParamOffsets {
    p_contact: usize,
    p_actuator: usize,
    p_joint: usize,
    p_pair: usize,
}

/// A ground contact point's body and a sphere of a body, collected while packing contacts.
struct ContactShapes {
    contact_body: Vec<usize>,
    contact_params: Vec<(f32, f32)>,
    spheres: Vec<(usize, Vec3, f32)>,
}

/// Each contact against a world shape: its (model body, world shape) and its friction and
/// restitution.
struct WorldContacts {
    contacts: Vec<(usize, usize)>,
    params: Vec<(f32, f32)>,
}

/// Each joint's body slots (parent, child) and its anchor in both bodies' frames.
struct JointPacking {
    joint_bodies: Vec<(usize, usize)>,
    anchors: Vec<(Vec3, Vec3)>,
}

/// One instance's initial state: the world, the bodies, one zero warm-start impulse per row,
/// then one zero activation per actuator that has one; returns it with the offset of the
/// impulses.
fn initial_state(model: &Model, n_rows: usize) -> (Vec<f32>, usize) {
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
    state.extend(std::iter::repeat_n(0.0, n_rows));
    state.extend(std::iter::repeat_n(0.0, pack::activation_count(model)));
    (state, state_lambda)
}

/// The uniform header: the sections' counts and offsets, the settings' softness and the
/// adjoint buffer's layout.
fn build_header(
    model: &Model,
    sections: &Sections,
    n_rows: usize,
    state_len: usize,
    param_len: usize,
) -> Header {
    let s = &model.settings;
    let n_bodies = model.bodies.len() + 1;
    let (joint_mass_scale, joint_cfm_scale, joint_erp) =
        softness(s.dt, s.joint_frequency, s.joint_damping_ratio);
    let (contact_mass_scale, contact_cfm_scale, contact_erp) =
        softness(s.dt, s.contact_frequency, s.contact_damping_ratio);
    let (limit_frequency, limit_damping_ratio) = s.limit_softness();
    let (limit_mass_scale, limit_cfm_scale, limit_erp) =
        softness(s.dt, limit_frequency, limit_damping_ratio);

    let state_len = state_len as u32;
    let n_rows = n_rows as u32;
    let adj_params = state_len;
    let adj_commands = adj_params + param_len as u32;
    // The row adjoints live in the rows buffer (vec4 records, like the rows), not here.
    let adj_rows = n_rows;
    let adj_history = adj_commands + model.actuators.len() as u32;
    let adj_saved = adj_history + n_rows * s.solver_iterations;
    let adj_start = adj_saved + state_len;
    let adj_nonfinite = adj_start + state_len;
    let adj_len = adj_nonfinite + 1;
    Header {
        n_instances: 1,
        n_bodies: n_bodies as u32,
        n_joints: model.joints.len() as u32,
        n_lock: sections.n_lock as u32,
        n_limit: sections.n_limit as u32,
        n_servo: sections.n_servo as u32,
        n_force: sections.n_force as u32,
        n_contacts: sections.n_contacts as u32,
        n_pairs: sections.n_pairs as u32,
        n_rows,
        sweeps: s.solver_iterations,
        steps: 1,
        state_len,
        param_len: param_len as u32,
        n_commands: model.actuators.len() as u32,
        off_joint: sections.off_joint as u32,
        off_lock: sections.off_lock as u32,
        off_limit: sections.off_limit as u32,
        off_servo: sections.off_servo as u32,
        off_force: sections.off_force as u32,
        off_contact: sections.off_contact as u32,
        off_pair: sections.off_pair as u32,
        off_row: sections.off_row as u32,
        row_limit: sections.row_limit as u32,
        row_servo: sections.row_servo as u32,
        row_contact: sections.row_contact as u32,
        row_pair: sections.row_pair as u32,
        p_contact: sections.p_contact as u32,
        p_actuator: sections.p_actuator as u32,
        p_joint: sections.p_joint as u32,
        p_pair: sections.p_pair as u32,
        state_lambda: sections.state_lambda as u32,
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
        n_world_contacts: sections.n_world_contacts as u32,
        off_world_contact: sections.off_world_contact as u32,
        row_world_contact: sections.row_world_contact as u32,
        p_world_contact: sections.p_world_contact as u32,
        n_passive: sections.n_passive as u32,
        off_passive: sections.off_passive as u32,
        row_passive: sections.row_passive as u32,
        n_tendon: sections.tendons.n_tendon as u32,
        n_tendon_terms: sections.tendons.n_tendon_terms as u32,
        off_tendon: sections.tendons.off_tendon as u32,
        off_tendon_term: sections.tendons.off_tendon_term as u32,
        row_tendon: sections.tendons.row_tendon as u32,
        n_fluid: sections.n_fluid as u32,
        off_fluid: sections.off_fluid as u32,
        fluid_density: s.fluid_density,
        fluid_viscosity: s.fluid_viscosity,
        command_width: model.actuators.len() as u32,
        row_width: n_rows * (ROW_LEN / 4) as u32,
        limit_mass_scale,
        limit_cfm_scale,
        limit_erp,
        first_instance: 0,
        pad2: 0,
        pad3: 0,
    }
}

impl Compiled {
    /// Compiles a validated model.
    pub fn new(model: &Model) -> Compiled {
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

        let mut p = Packing::default();
        let mut params = Vec::new();
        let mut slots = Vec::new();
        push_body_params(model, &mut params, &mut slots);

        let off_joint = p.packed.len();
        let JointPacking {
            joint_bodies,
            anchors,
        } = pack_joints(model, &body_slot, &mut p.packed);

        // Row groups, in solve order: locks, limits, servos, ground contacts, sphere pairs,
        // tendons.
        let off_lock = p.packed.len();
        p.pack_locks(model, &joint_bodies);
        let n_lock = p.row_desc.len();
        let off_limit = p.packed.len();
        let row_limit = p.row_desc.len();
        p.pack_limits(model, &joint_bodies);
        let n_limit = p.row_desc.len() - row_limit;

        let off_servo = p.packed.len();
        let row_servo = p.row_desc.len();
        let mut affine_laws = Vec::new();
        let (off_force, n_force) =
            p.pack_actuators(model, &joint_indices, &joint_bodies, &mut affine_laws);
        let n_servo = p.row_desc.len() - row_servo;

        let off_contact = p.packed.len();
        let row_contact = p.row_desc.len();
        let contacts = p.pack_ground_contacts(model);
        let n_contacts = contacts.contact_body.len();

        let off_pair = p.packed.len();
        let row_pair = p.row_desc.len();
        let pair_params = p.pack_sphere_pairs(model, &contacts.spheres, &joint_bodies);
        let n_pairs = pair_params.len();

        let tendons = p.pack_tendons(model, &joint_indices, &body_slot);
        // Contacts with world shapes come last, records after the row table, so that every
        // earlier section keeps its place.
        let row_world_contact = p.row_desc.len();
        let mut world_packing = Packing {
            packed: Vec::new(),
            row_desc: std::mem::take(&mut p.row_desc),
            limit_rows: Vec::new(),
        };
        let WorldContacts {
            contacts: world_contacts,
            params: world_params,
        } = world_packing.pack_world_contacts(model);
        p.row_desc = world_packing.row_desc;
        let row_passive = p.row_desc.len();
        let passive_records = p.pack_passive(model, &joint_bodies);
        let n_passive = p.row_desc.len() - row_passive;

        let Packing {
            mut packed,
            row_desc,
            ..
        } = p;
        let off_row = packed.len();
        let relaxation = model.settings.solver_relaxation;
        let servo_rows = row_servo..row_servo + n_servo;
        for (r, desc) in row_desc.iter().enumerate() {
            let factor = if r < row_limit || servo_rows.contains(&r) {
                relaxation
            } else {
                1.0
            };
            packed.extend_from_slice(&[
                desc[0],
                desc[1],
                desc[2],
                desc[3],
                factor.to_bits(),
                0,
                0,
                0,
            ]);
        }
        let off_world_contact = packed.len();
        packed.extend_from_slice(&world_packing.packed);
        let off_passive = packed.len();
        packed.extend_from_slice(&passive_records);
        let off_fluid = packed.len();
        let fluid_records = fluid::pack_fluid(model);
        let n_fluid = fluid_records.len() / stride::FLUID;
        packed.extend_from_slice(&fluid_records);
        let state_activation = BODY_STATE_LEN * (model.bodies.len() + 1) + row_desc.len();
        pack::link_affine_laws(&mut packed, off_force, affine_laws, state_activation as u32);

        let offsets = push_row_params(
            model,
            &contacts.contact_params,
            &anchors,
            &pair_params,
            &mut params,
            &mut slots,
        );
        let p_world_contact = params.len();
        for (c, (mu, e)) in world_params.iter().enumerate() {
            params.extend_from_slice(&[*mu, *e]);
            slots.extend([
                ParamSlot::WorldContactFriction(c),
                ParamSlot::WorldContactRestitution(c),
            ]);
        }
        let (state, state_lambda) = initial_state(model, row_desc.len());

        let sections = Sections {
            off_joint,
            off_lock,
            n_lock,
            off_limit,
            row_limit,
            n_limit,
            off_servo,
            row_servo,
            n_servo,
            off_force,
            n_force,
            off_contact,
            row_contact,
            n_contacts,
            off_pair,
            row_pair,
            n_pairs,
            off_row,
            tendons,
            p_contact: offsets.p_contact,
            p_actuator: offsets.p_actuator,
            p_joint: offsets.p_joint,
            p_pair: offsets.p_pair,
            state_lambda,
            off_world_contact,
            row_world_contact,
            n_world_contacts: world_contacts.len(),
            p_world_contact,
            off_passive,
            row_passive,
            n_passive,
            off_fluid,
            n_fluid,
        };
        let header = build_header(model, &sections, row_desc.len(), state.len(), params.len());
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
            contact_body: contacts.contact_body,
            world_contacts,
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
        // Force records twice: their forces, and the activations' update at the step's end.
        let others = [
            h.n_force,
            h.n_force,
            h.n_lock,
            h.n_limit,
            h.n_servo,
            h.n_contacts,
            h.n_pairs,
            h.n_world_contacts,
            h.n_passive,
            h.n_fluid,
            h.n_tendon,
            h.n_tendon_terms,
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
    fn the_row_table_carries_the_relaxation_of_locks_and_servos_only() {
        let mut model = crate::io::models::builtin("quadruped").unwrap();
        let factor = |c: &Compiled, r: u32| {
            f32::from_bits(c.packed[(c.header.off_row + r * stride::ROW as u32 + 4) as usize])
        };
        for relaxation in [1.0, 1.25, 0.5] {
            model.settings.solver_relaxation = relaxation;
            let c = Compiled::new(&model);
            let h = c.header;
            assert!(h.row_limit > 0 && h.row_contact > h.row_servo && h.n_rows > h.row_contact);
            for r in 0..h.n_rows {
                let relaxed = r < h.row_limit || (h.row_servo..h.row_contact).contains(&r);
                let expected = if relaxed { relaxation } else { 1.0 };
                assert_eq!(factor(&c, r), expected, "row {r} at {relaxation}");
            }
        }
    }

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
