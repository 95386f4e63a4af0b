//! The batched simulator: N instances of one model on the GPU and the forward step, on the
//! host core ([`Batch`]) that owns the model buffer, the chunking and the per-instance arrays.

use std::sync::Arc;

use wgpu::util::DeviceExt;

use crate::engine::batch::{self, Batch};
use crate::engine::buffers::{self, padded_len};
use crate::engine::gpu::Gpu;
use crate::engine::layout::{BODY_STATE_LEN, Compiled};
use crate::engine::shaders;
use crate::error::{Error, Result};
use crate::model::Model;

/// One body's kinematic state.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BodyState {
    /// Centre of mass position.
    pub position: [f32; 3],
    /// Orientation quaternion `[x, y, z, w]`.
    pub orientation: [f32; 4],
    /// Linear velocity.
    pub linear_velocity: [f32; 3],
    /// Angular velocity (world frame).
    pub angular_velocity: [f32; 3],
}

impl BodyState {
    /// Reads a body from 13 state floats.
    pub fn from_slice(s: &[f32]) -> Self {
        BodyState {
            position: [s[0], s[1], s[2]],
            orientation: [s[3], s[4], s[5], s[6]],
            linear_velocity: [s[7], s[8], s[9]],
            angular_velocity: [s[10], s[11], s[12]],
        }
    }

    /// Writes a body into 13 state floats.
    pub fn write(&self, s: &mut [f32]) {
        s[0..3].copy_from_slice(&self.position);
        s[3..7].copy_from_slice(&self.orientation);
        s[7..10].copy_from_slice(&self.linear_velocity);
        s[10..13].copy_from_slice(&self.angular_velocity);
    }
}

/// N instances of one model on the GPU.
pub struct Simulator {
    model: Model,
    batch: Batch,
    headers: Vec<wgpu::Buffer>,
    bind_groups: Vec<wgpu::BindGroup>,
    pipeline: wgpu::ComputePipeline,
    steps_per_dispatch: u32,
    finite_check: Option<FiniteCheck>,
}

/// Device buffers of the non-finite state check, one of each per chunk.
struct FiniteCheck {
    pipeline: wgpu::ComputePipeline,
    /// `CheckParams` uniforms (n_instances, n_bodies, steps, state_len).
    params: Vec<wgpu::Buffer>,
    /// 4 words per instance (see `shaders/finite_check.wgsl`).
    records: Vec<wgpu::Buffer>,
    bind_groups: Vec<wgpu::BindGroup>,
}

/// Floats each instance needs in each per-instance buffer: state, params, commands, rows.
fn per_instance_floats(c: &Compiled) -> [u64; 4] {
    Batch::step_floats(c, u64::from(c.header.n_commands))
}

impl Simulator {
    /// Creates `n_instances` copies of `model` at its initial state, with default parameters and
    /// zero commands.
    pub fn new(gpu: Arc<Gpu>, model: &Model, n_instances: usize) -> Result<Simulator> {
        model.validate()?;
        Simulator::with_compiled(gpu, model, Arc::new(Compiled::new(model)), n_instances)
    }

    /// [`Simulator::new`] over a layout already compiled from `model` (`Compiled::new(model)`),
    /// so that a run compiles its model once.
    pub fn with_compiled(
        gpu: Arc<Gpu>,
        model: &Model,
        compiled: Arc<Compiled>,
        n_instances: usize,
    ) -> Result<Simulator> {
        model.validate()?;
        batch::check_compiled(model, &compiled)?;
        if n_instances == 0 {
            return Err(Error::InvalidInput(
                "the number of instances must be at least 1".into(),
            ));
        }
        let floats = per_instance_floats(&compiled);
        let chunking = Batch::plan_chunks(&gpu, &model.name, &floats, n_instances, None)?;
        let binding = Batch::model_binding_for(&gpu, &compiled);
        let estimate = (floats.iter().sum::<u64>() * 4)
            .saturating_mul(
                chunking
                    .lens
                    .iter()
                    .map(|&len| padded_len(len) as u64)
                    .sum(),
            )
            .saturating_add(binding.buffer_bytes(compiled.packed.len()));
        let what = format!("{n_instances} instances of '{}'", model.name);
        gpu.check_budget(estimate, &what)?;
        let pipeline = buffers::pipeline_with(&gpu, shaders::STEP, "step_forward", binding)?;
        let device = gpu.clone();
        device.allocation_scope(&what, || {
            let commands = u64::from(compiled.header.n_commands);
            let batch = Batch::allocate(gpu, compiled, chunking, commands);
            Simulator::bind(model, batch, pipeline)
        })
    }

    /// Creates the step headers and bind groups of an allocated batch.
    fn bind(model: &Model, batch: Batch, pipeline: wgpu::ComputePipeline) -> Simulator {
        let mut headers = Vec::new();
        let mut bind_groups = Vec::new();
        for c in 0..batch.n_chunks() {
            let header_buf = batch.header_buffer(&batch.chunk_header(c));
            bind_groups.push(buffers::bind_group(
                batch.gpu(),
                &pipeline,
                &batch.step_bindings(c, &header_buf),
            ));
            headers.push(header_buf);
        }
        Simulator {
            model: model.clone(),
            batch,
            headers,
            bind_groups,
            pipeline,
            steps_per_dispatch: 10,
            finite_check: None,
        }
    }

    /// Checks every instance's body states for NaN and infinities on the device after every
    /// step from now on, recording per instance the first step, body and component
    /// ([`Simulator::non_finite`]). It sets one step per dispatch so that the step is exact; a
    /// later [`Simulator::set_steps_per_dispatch`] trades that for fewer dispatches (the step
    /// reported is then the end of the dispatch that produced the value).
    pub fn enable_finite_check(&mut self) -> Result<()> {
        if self.finite_check.is_some() {
            return Ok(());
        }
        let gpu = self.batch.gpu();
        let pipeline = buffers::pipeline(gpu, shaders::FINITE_CHECK, "finite_check")?;
        let mut params = Vec::new();
        let mut records = Vec::new();
        let mut bind_groups = Vec::new();
        for (c, &len) in self.batch.lens().iter().enumerate() {
            let header = &self.batch.compiled().header;
            let words = [len as u32, header.n_bodies, 0, header.state_len];
            let param = gpu
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("finite check params"),
                    contents: bytemuck::cast_slice(&words),
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                });
            let record = gpu
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("finite check record"),
                    contents: bytemuck::cast_slice(&vec![0u32; 4 * len]),
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                });
            bind_groups.push(buffers::bind_group(
                gpu,
                &pipeline,
                &[(0, &param), (1, self.batch.state.buffer(c)), (2, &record)],
            ));
            params.push(param);
            records.push(record);
        }
        self.finite_check = Some(FiniteCheck {
            pipeline,
            params,
            records,
            bind_groups,
        });
        self.steps_per_dispatch = 1;
        Ok(())
    }

    /// The first non-finite body-state value of every instance that has one, in instance
    /// order, since [`Simulator::enable_finite_check`] (empty when the check is off).
    pub fn non_finite(&self) -> Result<Vec<crate::engine::finite_check::NonFinite>> {
        let Some(check) = &self.finite_check else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (record, (first, _)) in check.records.iter().zip(self.batch.chunking().ranges()) {
            let words: Vec<u32> = buffers::read_buffer(self.batch.gpu(), record)?
                .iter()
                .map(|x| x.to_bits())
                .collect();
            out.extend(crate::engine::finite_check::decode(&words, first));
        }
        Ok(out)
    }

    /// The model being simulated.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The compiled model (layout of states and parameters).
    pub fn compiled(&self) -> &Compiled {
        self.batch.compiled()
    }

    /// The compiled model, shared: pass it to other simulators or rollouts of the same model.
    pub fn compiled_shared(&self) -> Arc<Compiled> {
        self.batch.compiled().clone()
    }

    /// Number of instances.
    pub fn n_instances(&self) -> usize {
        self.batch.n_instances()
    }

    /// Number of chunks the batch was split into to respect the binding limit.
    pub fn n_chunks(&self) -> usize {
        self.batch.n_chunks()
    }

    /// Bytes of device memory held for states, parameters, commands and scratch.
    pub fn device_bytes(&self) -> u64 {
        self.batch.device_bytes()
    }

    /// Steps run by one dispatch (default 10). More amortise launch overhead; fewer keep each
    /// dispatch short on display GPUs with watchdogs. [`Simulator::step`] runs fewer where the
    /// model needs it ([`Compiled::max_steps_per_dispatch`]).
    pub fn set_steps_per_dispatch(&mut self, steps: u32) {
        self.steps_per_dispatch = steps.max(1);
    }

    /// Length of one instance's raw state (`13 * (bodies + 1)`, one impulse per row, then one
    /// activation per actuator with activation dynamics).
    pub fn state_len(&self) -> usize {
        self.batch.compiled().header.state_len as usize
    }

    /// Advances every instance by `steps` steps.
    pub fn step(&mut self, steps: u32) -> Result<()> {
        let gpu = self.batch.gpu();
        let compiled = self.batch.compiled();
        let mut remaining = steps;
        while remaining > 0 {
            // lavapipe silently cuts an invocation's loops short past a fixed count.
            let per = self
                .steps_per_dispatch
                .min(compiled.max_steps_per_dispatch())
                .min(remaining);
            let dispatches = remaining / per;
            for (c, header_buf) in self.headers.iter().enumerate() {
                let mut header = self.batch.chunk_header(c);
                header.steps = per;
                gpu.queue
                    .write_buffer(header_buf, 0, bytemuck::bytes_of(&header));
            }
            if let Some(check) = &self.finite_check {
                for param in &check.params {
                    gpu.queue.write_buffer(param, 8, bytemuck::bytes_of(&per));
                }
            }
            let mut encoder = gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("step"),
                });
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("step_forward"),
                    timestamp_writes: None,
                });
                for _ in 0..dispatches {
                    pass.set_pipeline(&self.pipeline);
                    self.batch.dispatch(&mut pass, &self.bind_groups);
                    if let Some(check) = &self.finite_check {
                        pass.set_pipeline(&check.pipeline);
                        self.batch.dispatch(&mut pass, &check.bind_groups);
                    }
                }
            }
            gpu.queue.submit([encoder.finish()]);
            remaining -= dispatches * per;
        }
        buffers::wait(gpu)
    }

    /// Every instance's raw state (bodies including the world at index 0, then the solver's
    /// warm-start impulses, then the actuators' activations), instance-major: `state_len()`
    /// floats per instance.
    pub fn read_state_raw(&self) -> Result<Vec<f32>> {
        self.batch.state.read(self.batch.gpu())
    }

    /// Overwrites every instance's raw state (layout of [`Simulator::read_state_raw`]).
    pub fn write_state_raw(&mut self, state: &[f32]) -> Result<()> {
        self.batch.state.write(self.batch.gpu(), state, "state")
    }

    /// Body states of every instance, instance-major (`n_instances * bodies`), in model order.
    pub fn body_states(&self) -> Result<Vec<BodyState>> {
        let raw = self.read_state_raw()?;
        Ok(self.bodies_from_raw(&raw))
    }

    /// Extracts the model's bodies from raw states.
    pub fn bodies_from_raw(&self, raw: &[f32]) -> Vec<BodyState> {
        bodies_from_raw(&self.model, self.state_len(), raw)
    }

    /// Sets every instance's body states (instance-major, model order) and clears the solver's
    /// warm-start impulses and the actuators' activations.
    pub fn set_body_states(&mut self, bodies: &[BodyState]) -> Result<()> {
        let raw = raw_from_bodies(
            self.batch.compiled(),
            &self.model,
            bodies,
            self.n_instances(),
        )?;
        self.write_state_raw(&raw)
    }

    /// Resets every instance to the model's initial state.
    pub fn reset(&mut self) -> Result<()> {
        let raw = broadcast_instances(&self.batch.compiled().initial_state, self.n_instances());
        self.write_state_raw(&raw)
    }

    /// Sets every instance's actuator commands, instance-major (`n_instances * actuators`).
    pub fn set_commands(&mut self, commands: &[f32]) -> Result<()> {
        self.batch
            .commands
            .write(self.batch.gpu(), commands, "commands")
    }

    /// Every instance's physical parameters, instance-major; slot meanings are in
    /// [`Compiled::param_slots`].
    pub fn params(&self) -> Result<Vec<f32>> {
        self.batch.params.read(self.batch.gpu())
    }

    /// Sets every instance's physical parameters (layout of [`Simulator::params`]).
    pub fn set_params(&mut self, params: &[f32]) -> Result<()> {
        self.batch.params.write(self.batch.gpu(), params, "params")
    }
}

/// Extracts the model's bodies (not the world) from instance-major raw states.
pub fn bodies_from_raw(model: &Model, state_len: usize, raw: &[f32]) -> Vec<BodyState> {
    let n_bodies = model.bodies.len();
    let mut out = Vec::with_capacity(n_bodies * raw.len() / state_len.max(1));
    for inst in raw.chunks(state_len) {
        for b in 1..=n_bodies {
            out.push(BodyState::from_slice(&inst[b * BODY_STATE_LEN..]));
        }
    }
    out
}

/// Builds instance-major raw states from body states, with zero warm-start impulses and
/// activations.
pub fn raw_from_bodies(
    compiled: &Compiled,
    model: &Model,
    bodies: &[BodyState],
    n_instances: usize,
) -> Result<Vec<f32>> {
    let n_bodies = model.bodies.len();
    if bodies.len() != n_bodies * n_instances {
        return Err(Error::InvalidInput(format!(
            "expected {} body states ({n_instances} instances x {n_bodies} bodies), got {}",
            n_bodies * n_instances,
            bodies.len()
        )));
    }
    let len = compiled.header.state_len as usize;
    let mut raw = Vec::with_capacity(len * n_instances);
    // Per instance by index: a model without moving bodies has empty instances, which
    // `chunks` cannot make.
    for k in 0..n_instances {
        let inst = &bodies[k * n_bodies..(k + 1) * n_bodies];
        let mut s = compiled.initial_state.clone();
        s[(n_bodies + 1) * BODY_STATE_LEN..].fill(0.0);
        for (b, body) in inst.iter().enumerate() {
            body.write(&mut s[(b + 1) * BODY_STATE_LEN..]);
        }
        raw.extend_from_slice(&s);
    }
    Ok(raw)
}

/// Repeats one instance's array for `n` instances, instance-major.
pub fn broadcast_instances(one: &[f32], n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(one.len() * n);
    for _ in 0..n {
        out.extend_from_slice(one);
    }
    out
}

/// The largest number of instances one chunk of a [`Simulator`] may hold under these limits.
pub fn max_chunk_instances(compiled: &Compiled, limits: &wgpu::Limits) -> usize {
    crate::engine::buffers::Chunking::max_instances(limits, &per_instance_floats(compiled))
}
