//! The packed model's record strides and the uniform header every kernel reads.

use bytemuck::{Pod, Zeroable};

/// Record strides (in `u32` words) in the packed model array. `src/engine/shaders.rs` emits them into
/// every kernel's prelude as `JOINT_RECORD_LEN`, `LOCK_RECORD_LEN`, ...; a test checks that
/// [`Compiled::new`](super::Compiled::new) packs with them and that the kernels index with them.
pub mod stride {
    /// `[body_a, body_b, is_hinge, 0, frame_a xyzw, frame_b xyzw]`
    pub const JOINT: usize = 12;
    /// `[joint, axis, erp, cfm_scale]`: the last two 0 for the header's joint softness, else
    /// `settings.lock_frequency`'s (f32 bits; the mass scale is `1 / (1 + cfm_scale)`).
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
    /// `[body_a, body_b, reference_row, block, relaxation, 0, 0, 0]`: `block` pairs a joint
    /// limit row with the rotor row on its axis (see
    /// [`ROW_BLOCK_FOLLOWER`](crate::engine::layout::ROW_BLOCK_FOLLOWER)); the relaxation (f32
    /// bits) scales the row's Gauss-Seidel step (`settings.solver_relaxation` on lock and servo
    /// rows, 1 elsewhere).
    pub const ROW: usize = 8;
    /// A body's contact point against a world shape: `[body, offset xyz, radius, is_plane,
    /// is_cylinder, rounding, shape rotation xyzw, shape position xyz, 0, core half extents
    /// xyz, 0]` (see `world_contact_record`).
    pub const WORLD_CONTACT: usize = 20;
    /// `[joint, axis, start_velocity_weight, 0, cfm, coordinate_gain, coordinate_target,
    /// bound]`: a joint's passive row (see [`crate::engine::layout::PassiveRow`]), packed after the row table.
    pub const PASSIVE: usize = 8;
    /// `[body, box side x, y, z]`: a body under the fluid and its equivalent-inertia box
    /// (see [`crate::engine::layout::inertia_box`]), packed after the passive records.
    pub const FLUID: usize = 4;
    /// `[first_term, n_terms, lower, upper]` (lower == upper: held at that length)
    pub const TENDON: usize = 4;
    /// `[joint, axis, coefficient, 0]`
    pub const TENDON_TERM: usize = 4;
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
    /// The row adjoints are not in the adjoint buffer but in the rows buffer of the adjoint
    /// kernel, from row `adj_rows` (= `n_rows`) on, in the rows' own vec4 record layout: a
    /// reverse row update then reads and writes 8 vectors instead of 30 scalars.
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
    /// Contacts between body contact points and world shapes (three rows each).
    pub n_world_contacts: u32,
    pub off_world_contact: u32,
    pub row_world_contact: u32,
    pub p_world_contact: u32,
    /// Number of passive joint rows (damping and springs, dry friction, armature).
    pub n_passive: u32,
    /// Offset of the passive rows' records in the packed model.
    pub off_passive: u32,
    /// Index of the first passive row.
    pub row_passive: u32,
    /// Tendon rows (one per held length and one per limited tendon).
    pub n_tendon: u32,
    /// Tendon terms summed by all tendon rows together (loop iterations per step).
    pub n_tendon_terms: u32,
    pub off_tendon: u32,
    pub off_tendon_term: u32,
    pub row_tendon: u32,
    /// Bodies under the fluid (0 when the fluid's density and viscosity are both zero).
    pub n_fluid: u32,
    /// Offset of the fluid records in the packed model.
    pub off_fluid: u32,
    /// Fluid density, kg/m^3.
    pub fluid_density: f32,
    /// Fluid dynamic viscosity, Pa s.
    pub fluid_viscosity: f32,
    /// Floats per instance of the bound commands array: one step's commands, or a whole
    /// sequence's (the blocked layout's row width, see [`crate::engine::buffers::device_index`]).
    pub command_width: u32,
    /// Vec4 records per instance of the bound rows array: `n_rows * ROW_VEC4S`, or twice that
    /// where the adjoint keeps the row adjoints after the rows (the blocked layout's row width).
    pub row_width: u32,
    /// The joint limits' softness (`Settings::limit_softness`): equal to the joints' unless
    /// the model sets a limit frequency or damping ratio.
    pub limit_mass_scale: f32,
    pub limit_cfm_scale: f32,
    pub limit_erp: f32,
    /// Index, in the whole batch, of this chunk's first instance: per-robot random draws
    /// (the policy's exploration noise) are keyed by the batch index, so that a batch split
    /// into chunks draws what the whole batch does ([`crate::engine::batch::Batch::chunk_header`]).
    pub first_instance: u32,
    /// Offset in the packed model of the joint limits' impedance record
    /// (`Settings::limit_impedance`, see [`impedance_record`](super::impedance_record)).
    pub off_impedance: u32,
    /// Which row kinds take MuJoCo's impedance model: [`IMPEDANCE_LIMITS`](super::IMPEDANCE_LIMITS)
    /// set for the joint limits; 0 for none (the soft rows).
    pub impedance_rows: u32,
}
