//! CPU twins of the WGSL stages: the same arithmetic, function for function and with the same
//! names, on one instance, generic over `f32` (to check the GPU) and `f64` (to check adjoints
//! against finite differences). `if` here mirrors WGSL `select`: both sides are cheap values,
//! never control flow that changes which memory is touched.

mod actuator;
mod contact;
mod fluid;
mod integrate;
mod joint;
pub mod loss;
pub mod math;
pub mod optimizer;
pub mod policy;
pub mod residual;
mod solver;
mod tendon;
pub mod throughput;

pub use actuator::{
    actuator_activation_adjoint, actuator_activation_forward, force_actuators_adjoint,
    force_actuators_forward, servo_rows_adjoint, servo_rows_forward,
};
pub use contact::{
    ground_contact_rows_adjoint, ground_contact_rows_forward, sphere_pair_rows_adjoint,
    sphere_pair_rows_forward, world_contact_rows_adjoint, world_contact_rows_forward,
};
pub use fluid::{fluid_forces_adjoint, fluid_forces_forward};
pub use integrate::{
    integrate_position_adjoint, integrate_position_forward, integrate_velocity_adjoint,
    integrate_velocity_forward,
};
pub use joint::{
    joint_axis, joint_axis_adjoint, joint_limit_rows_adjoint, joint_limit_rows_forward,
    joint_lock_rows_adjoint, joint_lock_rows_forward, joint_passive_rows_adjoint,
    joint_passive_rows_forward,
};
pub use solver::{RowJacobian, solve_adjoint, solve_forward, solve_forward_taped};
pub use tendon::{tendon_rows_adjoint, tendon_rows_forward};

/// A zero row Jacobian (for adjoints that only involve a joint coordinate).
pub fn solver_zero_jacobian<T: Real>() -> RowJacobian<T> {
    RowJacobian {
        lin_a: V3::zero(),
        ang_a: V3::zero(),
        lin_b: V3::zero(),
        ang_b: V3::zero(),
    }
}

use crate::engine::layout::{BODY_PARAM_LEN, BODY_STATE_LEN, Compiled, Header, ROW_LEN};
use math::{Q, Real, V3};

/// One instance's arrays, laid out as on the GPU with a single instance.
#[derive(Clone, Debug)]
pub struct Instance<'m, T> {
    /// Header of the compiled model.
    pub hdr: &'m Header,
    /// Packed shared model records.
    pub model: &'m [u32],
    /// State: bodies, warm-start impulses, then the actuators' activations.
    pub state: Vec<T>,
    /// Physical parameters.
    pub params: Vec<T>,
    /// Actuator commands.
    pub commands: Vec<T>,
    /// Row scratch.
    pub rows: Vec<T>,
}

impl<'m, T: Real> Instance<'m, T> {
    /// An instance at the model's initial state with default parameters and zero commands.
    pub fn new(compiled: &'m Compiled) -> Self {
        let conv = |v: &[f32]| v.iter().map(|&x| T::of(x)).collect::<Vec<T>>();
        Instance {
            hdr: &compiled.header,
            model: &compiled.packed,
            state: conv(&compiled.initial_state),
            params: conv(&compiled.default_params),
            commands: vec![T::zero(); compiled.header.n_commands as usize],
            rows: vec![T::zero(); compiled.n_rows() * ROW_LEN],
        }
    }

    /// Advances one step: the same stage sequence as `step_forward` in `shaders/step.wgsl`.
    pub fn step(&mut self) {
        self.write_rows();
        solve_forward(self);
        actuator_activation_forward(self);
        integrate_position_forward(self);
    }

    /// The stages of [`Instance::step`] before the solve: passive rows, gravity, force
    /// actuators and every constraint row's write. Public so that the residual measurement can
    /// solve the rows itself ([`residual`]).
    pub fn write_rows(&mut self) {
        joint_passive_rows_forward(self);
        joint_limit_rows_forward(self);
        fluid_forces_forward(self);
        integrate_velocity_forward(self);
        force_actuators_forward(self);
        joint_lock_rows_forward(self);
        servo_rows_forward(self);
        ground_contact_rows_forward(self);
        sphere_pair_rows_forward(self);
        world_contact_rows_forward(self);
        tendon_rows_forward(self);
    }

    /// Recomputes the step from the current state and pulls `adj.state` (the adjoint of the
    /// next state) back to the adjoint of the current state, accumulating parameter and command
    /// adjoints. Mirrors `step_adjoint` in `shaders/step_adjoint.wgsl`. On return `self.state`
    /// is unchanged.
    pub fn step_adjoint(&mut self, adj: &mut Adjoint<T>) {
        let start = self.state.clone();
        joint_passive_rows_forward(self);
        joint_limit_rows_forward(self);
        fluid_forces_forward(self);
        integrate_velocity_forward(self);
        force_actuators_forward(self);
        adj.velocity_before_solve.copy_from_slice(&self.state);
        joint_lock_rows_forward(self);
        servo_rows_forward(self);
        ground_contact_rows_forward(self);
        sphere_pair_rows_forward(self);
        world_contact_rows_forward(self);
        tendon_rows_forward(self);
        solve_forward_taped(self, adj);
        actuator_activation_forward(self);
        adj.rows.fill(T::zero());
        integrate_position_adjoint(self, adj);
        actuator_activation_adjoint(self, adj);
        solve_adjoint(self, adj, &start);
        self.state.copy_from_slice(&adj.velocity_before_solve);
        tendon_rows_adjoint(self, adj);
        world_contact_rows_adjoint(self, adj);
        sphere_pair_rows_adjoint(self, adj);
        ground_contact_rows_adjoint(self, adj);
        servo_rows_adjoint(self, adj);
        joint_lock_rows_adjoint(self, adj);
        force_actuators_adjoint(self, adj);
        integrate_velocity_adjoint(self, adj);
        self.state.copy_from_slice(&start);
        fluid_forces_adjoint(self, adj);
        joint_limit_rows_adjoint(self, adj);
        joint_passive_rows_adjoint(self, adj);
        let decay = T::of(self.hdr.gradient_decay);
        for g in adj.state.iter_mut() {
            *g = *g * decay;
        }
    }

    pub(crate) fn model_u32(&self, k: u32) -> u32 {
        self.model[k as usize]
    }
    pub(crate) fn model_f32(&self, k: u32) -> T {
        T::of(f32::from_bits(self.model[k as usize]))
    }
    pub(crate) fn model_vec3(&self, k: u32) -> V3<T> {
        V3::new(
            self.model_f32(k),
            self.model_f32(k + 1),
            self.model_f32(k + 2),
        )
    }
    pub(crate) fn model_quat(&self, k: u32) -> Q<T> {
        Q::new(self.model_vec3(k), self.model_f32(k + 3))
    }
    /// Three consecutive state floats.
    pub fn state_vec3(&self, slot: u32) -> V3<T> {
        let s = slot as usize;
        V3::new(self.state[s], self.state[s + 1], self.state[s + 2])
    }
    pub(crate) fn state_set_vec3(&mut self, slot: u32, v: V3<T>) {
        let s = slot as usize;
        self.state[s] = v.x;
        self.state[s + 1] = v.y;
        self.state[s + 2] = v.z;
    }
    pub(crate) fn param(&self, slot: u32) -> T {
        self.params[slot as usize]
    }
    pub(crate) fn param_vec3(&self, slot: u32) -> V3<T> {
        V3::new(self.param(slot), self.param(slot + 1), self.param(slot + 2))
    }
    pub(crate) fn row_get(&self, r: u32, f: u32) -> T {
        self.rows[(r * ROW_LEN as u32 + f) as usize]
    }
    pub(crate) fn row_set(&mut self, r: u32, f: u32, v: T) {
        self.rows[(r * ROW_LEN as u32 + f) as usize] = v;
    }
    pub(crate) fn row_vec3(&self, r: u32, f: u32) -> V3<T> {
        V3::new(
            self.row_get(r, f),
            self.row_get(r, f + 1),
            self.row_get(r, f + 2),
        )
    }
    pub(crate) fn row_set_vec3(&mut self, r: u32, f: u32, v: V3<T>) {
        self.row_set(r, f, v.x);
        self.row_set(r, f + 1, v.y);
        self.row_set(r, f + 2, v.z);
    }

    pub(crate) fn body_slot(b: u32) -> u32 {
        b * BODY_STATE_LEN as u32
    }
    pub(crate) fn body_position(&self, b: u32) -> V3<T> {
        self.state_vec3(Self::body_slot(b))
    }
    /// Orientation of body slot `b` (0 is the world).
    pub fn body_orientation(&self, b: u32) -> Q<T> {
        let s = Self::body_slot(b) + 3;
        Q::new(self.state_vec3(s), self.state[s as usize + 3])
    }
    pub(crate) fn body_velocity(&self, b: u32) -> V3<T> {
        self.state_vec3(Self::body_slot(b) + 7)
    }
    pub(crate) fn body_angular_velocity(&self, b: u32) -> V3<T> {
        self.state_vec3(Self::body_slot(b) + 10)
    }
    pub(crate) fn body_inverse_mass(&self, b: u32) -> T {
        self.param(b * BODY_PARAM_LEN as u32)
    }
    pub(crate) fn body_inverse_inertia(&self, b: u32) -> V3<T> {
        self.param_vec3(b * BODY_PARAM_LEN as u32 + 1)
    }
}

/// Adjoint arrays of one instance for one step, plus the step's tape.
#[derive(Clone, Debug)]
pub struct Adjoint<T> {
    /// Adjoint of the state: set to dL/d(next state) before [`Instance::step_adjoint`], holds
    /// dL/d(current state) after.
    pub state: Vec<T>,
    /// Accumulated adjoint of the parameters.
    pub params: Vec<T>,
    /// Adjoint of this step's commands (accumulated).
    pub commands: Vec<T>,
    /// Adjoint of the row scratch.
    pub rows: Vec<T>,
    /// Impulse of every row after every sweep (`sweeps * rows`).
    pub lambda_history: Vec<T>,
    /// The state just before the solve (velocities after gravity and force actuators).
    pub velocity_before_solve: Vec<T>,
    /// Whether parameter adjoints are accumulated (mirrors the header's `param_gradients`).
    pub param_gradients: bool,
}

impl<T: Real> Adjoint<T> {
    /// Zeroed adjoint arrays for a compiled model.
    pub fn new(compiled: &Compiled) -> Self {
        let h = &compiled.header;
        Adjoint {
            state: vec![T::zero(); h.state_len as usize],
            params: vec![T::zero(); h.param_len as usize],
            commands: vec![T::zero(); h.n_commands as usize],
            rows: vec![T::zero(); compiled.n_rows() * ROW_LEN],
            lambda_history: vec![T::zero(); compiled.n_rows() * h.sweeps as usize],
            velocity_before_solve: vec![T::zero(); h.state_len as usize],
            param_gradients: true,
        }
    }

    /// Adds to three consecutive state-adjoint floats.
    pub fn state_add_vec3(&mut self, slot: u32, v: V3<T>) {
        let s = slot as usize;
        self.state[s] += v.x;
        self.state[s + 1] += v.y;
        self.state[s + 2] += v.z;
    }
    pub(crate) fn state_add_quat(&mut self, slot: u32, q: Q<T>) {
        self.state_add_vec3(slot, q.v);
        self.state[slot as usize + 3] += q.w;
    }
    pub(crate) fn state_vec3(&self, slot: u32) -> V3<T> {
        let s = slot as usize;
        V3::new(self.state[s], self.state[s + 1], self.state[s + 2])
    }
    pub(crate) fn param_add(&mut self, slot: u32, v: T) {
        if self.param_gradients {
            self.params[slot as usize] += v;
        }
    }
    pub(crate) fn param_add_vec3(&mut self, slot: u32, v: V3<T>) {
        self.param_add(slot, v.x);
        self.param_add(slot + 1, v.y);
        self.param_add(slot + 2, v.z);
    }
    pub(crate) fn row_get(&self, r: u32, f: u32) -> T {
        self.rows[(r * ROW_LEN as u32 + f) as usize]
    }
    pub(crate) fn row_add(&mut self, r: u32, f: u32, v: T) {
        self.rows[(r * ROW_LEN as u32 + f) as usize] += v;
    }
    pub(crate) fn row_vec3(&self, r: u32, f: u32) -> V3<T> {
        V3::new(
            self.row_get(r, f),
            self.row_get(r, f + 1),
            self.row_get(r, f + 2),
        )
    }
    pub(crate) fn row_add_vec3(&mut self, r: u32, f: u32, v: V3<T>) {
        self.row_add(r, f, v.x);
        self.row_add(r, f + 1, v.y);
        self.row_add(r, f + 2, v.z);
    }
}

#[cfg(test)]
mod tests;
