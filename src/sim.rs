//! The batched simulator: GPU buffers for N instances of one model and the forward step.
//!
//! Instances are split into chunks whose every buffer fits the device's storage-binding limit
//! (`adapter.limits()`; lavapipe allows 128 MiB per binding). Each chunk is an independent
//! sub-batch with its own bind group; since every instance only ever touches its own slots,
//! instance `i` computes the same bits whatever the batch size and chunking.

use std::sync::Arc;

use wgpu::util::DeviceExt;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::layout::{BODY_STATE_LEN, Compiled, ROW_LEN};
use crate::model::Model;
use crate::shaders;

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

struct Chunk {
    len: usize,
    header: wgpu::Buffer,
    state: wgpu::Buffer,
    params: wgpu::Buffer,
    commands: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
}

/// N instances of one model on the GPU.
pub struct Simulator {
    gpu: Arc<Gpu>,
    model: Model,
    compiled: Compiled,
    n_instances: usize,
    chunks: Vec<Chunk>,
    pipeline: wgpu::ComputePipeline,
    steps_per_dispatch: u32,
    device_bytes: u64,
}

/// Bytes each instance needs in each per-instance buffer: state, params, commands, rows.
fn per_instance_bytes(c: &Compiled) -> [u64; 4] {
    let h = &c.header;
    [
        u64::from(h.state_len) * 4,
        u64::from(h.param_len) * 4,
        u64::from(h.n_commands.max(1)) * 4,
        (c.n_rows().max(1) * ROW_LEN) as u64 * 4,
    ]
}

/// The largest number of instances a chunk may hold on a device with these limits.
pub fn max_chunk_instances(compiled: &Compiled, limits: &wgpu::Limits) -> usize {
    let binding = u64::from(limits.max_storage_buffer_binding_size).min(limits.max_buffer_size);
    let by_memory = per_instance_bytes(compiled)
        .iter()
        .map(|b| binding / b)
        .min()
        .unwrap_or(0);
    let by_dispatch = u64::from(limits.max_compute_workgroups_per_dimension) * u64::from(WORKGROUP);
    by_memory.min(by_dispatch) as usize
}

fn storage(gpu: &Gpu, label: &str, data: &[f32], writable: bool) -> wgpu::Buffer {
    let mut usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
    if writable {
        usage |= wgpu::BufferUsages::COPY_SRC;
    }
    gpu.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(data),
            usage,
        })
}

/// Repeats one instance's slot-major array for `n` instances, instance innermost.
fn broadcast(one: &[f32], n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(one.len() * n);
    for &v in one {
        out.extend(std::iter::repeat_n(v, n));
    }
    out
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
        let chunk_max = max_chunk_instances(&compiled, &gpu.limits);
        if chunk_max == 0 {
            return Err(Error::TooLarge(format!(
                "one instance of '{}' needs {} bytes of constraint scratch, more than the device's \
                 storage binding limit of {} bytes",
                model.name,
                per_instance_bytes(&compiled)[3],
                gpu.max_binding_bytes()
            )));
        }

        let assembled = shaders::assemble(shaders::STEP);
        shaders::validate(&assembled)?;
        let module = gpu
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("step.wgsl"),
                source: wgpu::ShaderSource::Wgsl(assembled.text.clone().into()),
            });
        let pipeline = gpu
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("step_forward"),
                layout: None,
                module: &module,
                entry_point: Some("step_forward"),
                compilation_options: Default::default(),
                cache: None,
            });
        let model_buf = gpu
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("model"),
                contents: bytemuck::cast_slice(&compiled.packed),
                usage: wgpu::BufferUsages::STORAGE,
            });

        let per_instance: u64 = per_instance_bytes(&compiled).iter().sum();
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < n_instances {
            let len = chunk_max.min(n_instances - start);
            let mut header = compiled.header;
            header.n_instances = len as u32;
            let header_buf = gpu
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("header"),
                    contents: bytemuck::bytes_of(&header),
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                });
            let state = storage(&gpu, "state", &broadcast(&compiled.initial_state, len), true);
            let params = storage(&gpu, "params", &broadcast(&compiled.default_params, len), true);
            let commands = storage(
                &gpu,
                "commands",
                &vec![0.0; compiled.header.n_commands.max(1) as usize * len],
                true,
            );
            let rows = storage(
                &gpu,
                "rows",
                &vec![0.0; compiled.n_rows().max(1) * ROW_LEN * len],
                true,
            );
            let layout = pipeline.get_bind_group_layout(0);
            let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("step"),
                layout: &layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: header_buf.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: model_buf.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: state.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: params.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 4,
                        resource: commands.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 5,
                        resource: rows.as_entire_binding(),
                    },
                ],
            });
            chunks.push(Chunk {
                len,
                header: header_buf,
                state,
                params,
                commands,
                bind_group,
            });
            start += len;
        }
        let device_bytes = per_instance * n_instances as u64 + compiled.packed.len() as u64 * 4;
        Ok(Simulator {
            gpu,
            model: model.clone(),
            compiled,
            n_instances,
            chunks,
            pipeline,
            steps_per_dispatch: 10,
            device_bytes,
        })
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
        self.n_instances
    }

    /// Number of chunks the batch was split into to respect the binding limit.
    pub fn n_chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Bytes of device memory held for states, parameters, commands and scratch.
    pub fn device_bytes(&self) -> u64 {
        self.device_bytes
    }

    /// Steps run by one dispatch (default 10). More amortise launch overhead; fewer keep each
    /// dispatch short on display GPUs with watchdogs.
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
            let per = self.steps_per_dispatch.min(remaining);
            let dispatches = remaining / per;
            for chunk in &self.chunks {
                let mut header = self.compiled.header;
                header.n_instances = chunk.len as u32;
                header.steps = per;
                self.gpu
                    .queue
                    .write_buffer(&chunk.header, 0, bytemuck::bytes_of(&header));
            }
            let mut encoder = self
                .gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("step") });
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("step_forward"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(&self.pipeline);
                for _ in 0..dispatches {
                    for chunk in &self.chunks {
                        pass.set_bind_group(0, &chunk.bind_group, &[]);
                        pass.dispatch_workgroups((chunk.len as u32).div_ceil(WORKGROUP), 1, 1);
                    }
                }
            }
            self.gpu.queue.submit([encoder.finish()]);
            remaining -= dispatches * per;
        }
        self.wait()
    }

    fn wait(&self) -> Result<()> {
        self.gpu
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Gpu(format!("waiting for the GPU failed: {e}")))
    }

    fn read_buffer(&self, buffer: &wgpu::Buffer) -> Result<Vec<f32>> {
        let size = buffer.size();
        let staging = self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self
            .gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
        self.gpu.queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| Error::Gpu("buffer mapping was dropped".into()))?
            .map_err(|e| Error::Gpu(format!("buffer mapping failed: {e}")))?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| Error::Gpu(format!("buffer mapping failed: {e}")))?;
        let data = bytemuck::cast_slice::<u8, f32>(&view).to_vec();
        drop(view);
        staging.unmap();
        Ok(data)
    }

    /// Reads a per-instance array of `width` slots, returned instance-major.
    fn read_per_instance(
        &self,
        width: usize,
        buffer: impl Fn(&Chunk) -> &wgpu::Buffer,
    ) -> Result<Vec<f32>> {
        let mut out = vec![0.0; width * self.n_instances];
        let mut start = 0;
        for chunk in &self.chunks {
            let raw = self.read_buffer(buffer(chunk))?;
            for i in 0..chunk.len {
                for s in 0..width {
                    out[(start + i) * width + s] = raw[s * chunk.len + i];
                }
            }
            start += chunk.len;
        }
        Ok(out)
    }

    /// Writes a per-instance array given instance-major.
    fn write_per_instance(
        &self,
        width: usize,
        what: &str,
        data: &[f32],
        buffer: impl Fn(&Chunk) -> &wgpu::Buffer,
    ) -> Result<()> {
        if data.len() != width * self.n_instances {
            return Err(Error::InvalidInput(format!(
                "{what}: expected {} values ({} instances x {width}), got {}",
                width * self.n_instances,
                self.n_instances,
                data.len()
            )));
        }
        if let Some(bad) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "{what}: value {bad} (instance {}, slot {}) is not finite",
                bad / width.max(1),
                bad % width.max(1)
            )));
        }
        let mut start = 0;
        for chunk in &self.chunks {
            let mut raw = vec![0.0f32; width.max(1) * chunk.len];
            for i in 0..chunk.len {
                for s in 0..width {
                    raw[s * chunk.len + i] = data[(start + i) * width + s];
                }
            }
            if width > 0 {
                self.gpu
                    .queue
                    .write_buffer(buffer(chunk), 0, bytemuck::cast_slice(&raw));
            }
            start += chunk.len;
        }
        Ok(())
    }

    /// Every instance's raw state (bodies including the world at index 0, then the solver's
    /// warm-start impulses), instance-major: `state_len()` floats per instance.
    pub fn read_state_raw(&self) -> Result<Vec<f32>> {
        self.read_per_instance(self.state_len(), |c| &c.state)
    }

    /// Overwrites every instance's raw state (layout of [`Simulator::read_state_raw`]).
    pub fn write_state_raw(&mut self, state: &[f32]) -> Result<()> {
        self.write_per_instance(self.state_len(), "state", state, |c| &c.state)
    }

    /// Body states of every instance, instance-major (`n_instances * bodies`), in model order.
    pub fn body_states(&self) -> Result<Vec<BodyState>> {
        let raw = self.read_state_raw()?;
        Ok(self.bodies_from_raw(&raw))
    }

    /// Extracts the model's bodies from raw states.
    pub fn bodies_from_raw(&self, raw: &[f32]) -> Vec<BodyState> {
        let n_bodies = self.model.bodies.len();
        let len = self.state_len();
        let mut out = Vec::with_capacity(n_bodies * self.n_instances);
        for inst in raw.chunks(len) {
            for b in 1..=n_bodies {
                out.push(BodyState::from_slice(&inst[b * BODY_STATE_LEN..]));
            }
        }
        out
    }

    /// Sets every instance's body states (instance-major, model order) and clears the solver's
    /// warm-start impulses.
    pub fn set_body_states(&mut self, bodies: &[BodyState]) -> Result<()> {
        let n_bodies = self.model.bodies.len();
        if bodies.len() != n_bodies * self.n_instances {
            return Err(Error::InvalidInput(format!(
                "expected {} body states ({} instances x {n_bodies} bodies), got {}",
                n_bodies * self.n_instances,
                self.n_instances,
                bodies.len()
            )));
        }
        let len = self.state_len();
        let mut raw = Vec::with_capacity(len * self.n_instances);
        for inst in bodies.chunks(n_bodies) {
            let mut s = self.compiled.initial_state.clone();
            s[(n_bodies + 1) * BODY_STATE_LEN..].fill(0.0);
            for (b, body) in inst.iter().enumerate() {
                body.write(&mut s[(b + 1) * BODY_STATE_LEN..]);
            }
            raw.extend_from_slice(&s);
        }
        self.write_state_raw(&raw)
    }

    /// Resets every instance to the model's initial state.
    pub fn reset(&mut self) -> Result<()> {
        let raw = broadcast_instances(&self.compiled.initial_state, self.n_instances);
        self.write_state_raw(&raw)
    }

    /// Sets every instance's actuator commands, instance-major (`n_instances * actuators`).
    pub fn set_commands(&mut self, commands: &[f32]) -> Result<()> {
        let width = self.compiled.header.n_commands as usize;
        self.write_per_instance(width, "commands", commands, |c| &c.commands)
    }

    /// Every instance's physical parameters, instance-major; slot meanings are in
    /// [`Compiled::param_slots`].
    pub fn params(&self) -> Result<Vec<f32>> {
        self.read_per_instance(self.compiled.header.param_len as usize, |c| &c.params)
    }

    /// Sets every instance's physical parameters (layout of [`Simulator::params`]).
    pub fn set_params(&mut self, params: &[f32]) -> Result<()> {
        let width = self.compiled.header.param_len as usize;
        self.write_per_instance(width, "params", params, |c| &c.params)
    }
}

/// Repeats one instance's array for `n` instances, instance-major.
pub fn broadcast_instances(one: &[f32], n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(one.len() * n);
    for _ in 0..n {
        out.extend_from_slice(one);
    }
    out
}
