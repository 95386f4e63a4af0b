//! The batched simulator: GPU buffers for N instances of one model and the forward step.
//!
//! Instances are split into chunks whose every buffer fits the device's storage-binding limit
//! (`adapter.limits()`; lavapipe allows 128 MiB per binding). Each chunk is an independent
//! sub-batch with its own bind group; since every instance only ever touches its own slots,
//! instance `i` computes the same bits whatever the batch size and chunking.

use std::sync::Arc;

use wgpu::util::DeviceExt;

use crate::engine::buffers::{self, Chunking, PerInstance};
use crate::engine::gpu::Gpu;
use crate::engine::layout::{BODY_STATE_LEN, Compiled, ROW_LEN};
use crate::engine::shaders;
use crate::error::{Error, Result};
use crate::model::Model;

const WORKGROUP: u32 = 64;

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
    gpu: Arc<Gpu>,
    model: Model,
    compiled: Compiled,
    chunking: Chunking,
    headers: Vec<wgpu::Buffer>,
    state: PerInstance,
    params: PerInstance,
    commands: PerInstance,
    rows: PerInstance,
    bind_groups: Vec<wgpu::BindGroup>,
    pipeline: wgpu::ComputePipeline,
    steps_per_dispatch: u32,
    finite_check: Option<FiniteCheck>,
}

/// Device buffers of the non-finite state check, one of each per chunk.
struct FiniteCheck {
    pipeline: wgpu::ComputePipeline,
    /// `CheckParams` uniforms (n_instances, n_bodies, steps, pad).
    params: Vec<wgpu::Buffer>,
    /// 4 words per instance (see `shaders/finite_check.wgsl`).
    records: Vec<wgpu::Buffer>,
    bind_groups: Vec<wgpu::BindGroup>,
}

/// Floats each instance needs in each per-instance buffer: state, params, commands, rows.
fn per_instance_floats(c: &Compiled) -> [u64; 4] {
    let h = &c.header;
    [
        u64::from(h.state_len),
        u64::from(h.param_len),
        u64::from(h.n_commands.max(1)),
        (c.n_rows().max(1) * ROW_LEN) as u64,
    ]
}

impl Simulator {
    /// Creates `n_instances` copies of `model` at its initial state, with default parameters and
    /// zero commands.
    pub fn new(gpu: Arc<Gpu>, model: &Model, n_instances: usize) -> Result<Simulator> {
        model.validate()?;
        if n_instances == 0 {
            return Err(Error::InvalidInput(
                "the number of instances must be at least 1".into(),
            ));
        }
        let compiled = Compiled::new(model);
        let floats = per_instance_floats(&compiled);
        let chunk_max = Chunking::max_instances(&gpu.limits, &floats);
        if chunk_max == 0 {
            return Err(Error::TooLarge(format!(
                "one instance of '{}' needs {} bytes of constraint scratch, more than the device's \
                 storage binding limit of {} bytes",
                model.name,
                floats[3] * 4,
                gpu.max_binding_bytes()
            )));
        }
        let estimate = (floats.iter().sum::<u64>() * 4)
            .saturating_mul(n_instances as u64)
            .saturating_add(compiled.packed.len() as u64 * 4);
        let what = format!("{n_instances} instances of '{}'", model.name);
        gpu.check_budget(estimate, &what)?;
        let chunking = Chunking::new(n_instances, chunk_max);
        let pipeline = buffers::pipeline(&gpu, shaders::STEP, "step_forward")?;
        let device = gpu.clone();
        device.allocation_scope(&what, || {
            Simulator::allocate(gpu, model, compiled, chunking, pipeline)
        })
    }

    /// Creates the buffers and bind groups of a batch.
    fn allocate(
        gpu: Arc<Gpu>,
        model: &Model,
        compiled: Compiled,
        chunking: Chunking,
        pipeline: wgpu::ComputePipeline,
    ) -> Simulator {
        let model_buf = gpu
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("model"),
                contents: bytemuck::cast_slice(&compiled.packed),
                usage: wgpu::BufferUsages::STORAGE,
            });
        let h = &compiled.header;
        let state = PerInstance::new(
            &gpu,
            &chunking,
            h.state_len as usize,
            "state",
            Some(&compiled.initial_state),
        );
        let params = PerInstance::new(
            &gpu,
            &chunking,
            h.param_len as usize,
            "params",
            Some(&compiled.default_params),
        );
        let commands = PerInstance::new(&gpu, &chunking, h.n_commands as usize, "commands", None);
        let rows = PerInstance::new(
            &gpu,
            &chunking,
            compiled.n_rows().max(1) * ROW_LEN,
            "rows",
            None,
        );
        let mut headers = Vec::new();
        let mut bind_groups = Vec::new();
        for (c, (_, len)) in chunking.ranges().enumerate() {
            let mut header = compiled.header;
            header.n_instances = len as u32;
            let header_buf = gpu
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("header"),
                    contents: bytemuck::bytes_of(&header),
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                });
            bind_groups.push(buffers::bind_group(
                &gpu,
                &pipeline,
                &[
                    (0, &header_buf),
                    (1, &model_buf),
                    (2, state.buffer(c)),
                    (3, params.buffer(c)),
                    (4, commands.buffer(c)),
                    (5, rows.buffer(c)),
                ],
            ));
            headers.push(header_buf);
        }
        Simulator {
            gpu,
            model: model.clone(),
            compiled,
            chunking,
            headers,
            state,
            params,
            commands,
            rows,
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
        let gpu = &self.gpu;
        let pipeline = buffers::pipeline(gpu, shaders::FINITE_CHECK, "finite_check")?;
        let mut params = Vec::new();
        let mut records = Vec::new();
        let mut bind_groups = Vec::new();
        for (c, (_, len)) in self.chunking.ranges().enumerate() {
            let words = [len as u32, self.compiled.header.n_bodies, 0, 0];
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
                &[(0, &param), (1, self.state.buffer(c)), (2, &record)],
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
        for (record, (first, _)) in check.records.iter().zip(self.chunking.ranges()) {
            let words: Vec<u32> = buffers::read_buffer(&self.gpu, record)?
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
        &self.compiled
    }

    /// Number of instances.
    pub fn n_instances(&self) -> usize {
        self.chunking.total()
    }

    /// Number of chunks the batch was split into to respect the binding limit.
    pub fn n_chunks(&self) -> usize {
        self.chunking.lens.len()
    }

    /// Bytes of device memory held for states, parameters, commands and scratch.
    pub fn device_bytes(&self) -> u64 {
        self.state.bytes()
            + self.params.bytes()
            + self.commands.bytes()
            + self.rows.bytes()
            + self.compiled.packed.len() as u64 * 4
    }

    /// Steps run by one dispatch (default 10). More amortise launch overhead; fewer keep each
    /// dispatch short on display GPUs with watchdogs. [`Simulator::step`] runs fewer where the
    /// model needs it ([`Compiled::max_steps_per_dispatch`]).
    pub fn set_steps_per_dispatch(&mut self, steps: u32) {
        self.steps_per_dispatch = steps.max(1);
    }

    /// Length of one instance's raw state (`13 * (bodies + 1)` plus one impulse per row).
    pub fn state_len(&self) -> usize {
        self.compiled.header.state_len as usize
    }

    /// Advances every instance by `steps` steps.
    pub fn step(&mut self, steps: u32) -> Result<()> {
        let mut remaining = steps;
        while remaining > 0 {
            // lavapipe silently cuts an invocation's loops short past a fixed count.
            let per = self
                .steps_per_dispatch
                .min(self.compiled.max_steps_per_dispatch())
                .min(remaining);
            let dispatches = remaining / per;
            for (header_buf, (_, len)) in self.headers.iter().zip(self.chunking.ranges()) {
                let mut header = self.compiled.header;
                header.n_instances = len as u32;
                header.steps = per;
                self.gpu
                    .queue
                    .write_buffer(header_buf, 0, bytemuck::bytes_of(&header));
            }
            if let Some(check) = &self.finite_check {
                for param in &check.params {
                    self.gpu
                        .queue
                        .write_buffer(param, 8, bytemuck::bytes_of(&per));
                }
            }
            let mut encoder =
                self.gpu
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
                    for (bind_group, &len) in self.bind_groups.iter().zip(&self.chunking.lens) {
                        pass.set_bind_group(0, bind_group, &[]);
                        pass.dispatch_workgroups((len as u32).div_ceil(WORKGROUP), 1, 1);
                    }
                    if let Some(check) = &self.finite_check {
                        pass.set_pipeline(&check.pipeline);
                        for (bind_group, &len) in check.bind_groups.iter().zip(&self.chunking.lens)
                        {
                            pass.set_bind_group(0, bind_group, &[]);
                            pass.dispatch_workgroups((len as u32).div_ceil(WORKGROUP), 1, 1);
                        }
                    }
                }
            }
            self.gpu.queue.submit([encoder.finish()]);
            remaining -= dispatches * per;
        }
        buffers::wait(&self.gpu)
    }

    /// Every instance's raw state (bodies including the world at index 0, then the solver's
    /// warm-start impulses), instance-major: `state_len()` floats per instance.
    pub fn read_state_raw(&self) -> Result<Vec<f32>> {
        self.state.read(&self.gpu)
    }

    /// Overwrites every instance's raw state (layout of [`Simulator::read_state_raw`]).
    pub fn write_state_raw(&mut self, state: &[f32]) -> Result<()> {
        self.state.write(&self.gpu, state, "state")
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
    /// warm-start impulses.
    pub fn set_body_states(&mut self, bodies: &[BodyState]) -> Result<()> {
        let raw = raw_from_bodies(&self.compiled, &self.model, bodies, self.n_instances())?;
        self.write_state_raw(&raw)
    }

    /// Resets every instance to the model's initial state.
    pub fn reset(&mut self) -> Result<()> {
        let raw = broadcast_instances(&self.compiled.initial_state, self.n_instances());
        self.write_state_raw(&raw)
    }

    /// Sets every instance's actuator commands, instance-major (`n_instances * actuators`).
    pub fn set_commands(&mut self, commands: &[f32]) -> Result<()> {
        self.commands.write(&self.gpu, commands, "commands")
    }

    /// Every instance's physical parameters, instance-major; slot meanings are in
    /// [`Compiled::param_slots`].
    pub fn params(&self) -> Result<Vec<f32>> {
        self.params.read(&self.gpu)
    }

    /// Sets every instance's physical parameters (layout of [`Simulator::params`]).
    pub fn set_params(&mut self, params: &[f32]) -> Result<()> {
        self.params.write(&self.gpu, params, "params")
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

/// Builds instance-major raw states from body states, with zero warm-start impulses.
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
    for inst in bodies.chunks(n_bodies) {
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
    Chunking::max_instances(limits, &per_instance_floats(compiled))
}
