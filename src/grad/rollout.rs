//! Differentiable rollouts: forward with checkpoints, then the adjoint in reverse time.
//!
//! The forward pass stores the state every `K` steps and the final state (checkpoints). The
//! backward pass walks the segments from last to first: it recomputes the `K - 1` states inside
//! a segment from its checkpoint (the segment's last state is the next checkpoint), then for
//! each step in reverse adds the loss gradient of the state after the step (`loss_adjoint`) and
//! runs `step_adjoint`, which itself recomputes the step to recover the solver's sweeps. State
//! memory per instance is `T / K + K + 2` states. By default `K` is 1 (every state kept, nothing
//! recomputed) when the whole trajectory of the batch fits in [`FULL_TRAJECTORY_BYTES`], and
//! `ceil(sqrt(T))` otherwise. Gradients are per instance and deterministic: every instance
//! accumulates its own parameter adjoints, no atomics.

use std::sync::Arc;

use wgpu::util::DeviceExt;

use crate::engine::buffers::{self, Chunking, PerInstance};
use crate::engine::gpu::Gpu;
use crate::engine::layout::{Compiled, Header, ROW_LEN};
use crate::engine::shaders;
use crate::error::{Error, Result};
use crate::grad::loss::Loss;
use crate::model::Model;

const WORKGROUP: u32 = 64;
const HEADER_BYTES: u64 = std::mem::size_of::<Header>() as u64;

/// Options of a differentiable rollout.
#[derive(Clone, Debug)]
pub struct RolloutOptions {
    /// Number of steps.
    pub horizon: u32,
    /// Checkpoint interval `K`; `None` stores every state when the whole trajectory takes at
    /// most [`FULL_TRAJECTORY_BYTES`], and picks `ceil(sqrt(horizon))` otherwise. `Some(1)`
    /// stores every state (no recomputation at all).
    pub checkpoint_every: Option<u32>,
    /// Factor applied to the gradient flowing back through each step (the paper's alpha);
    /// 1 gives the exact gradient.
    pub gradient_decay: f32,
    /// Truncated backpropagation through time: every this many steps (counted from the start
    /// of the rollout) the state adjoint is cut to zero, so a loss term reaches back at most
    /// that far. `None` (the default) gives the exact gradient. It bounds how far an adjoint
    /// that grows through contact can grow before it is cut, where the decay only slows it.
    pub truncation: Option<u32>,
    /// Keep the gradient with respect to every step's commands (`horizon * actuators` floats
    /// per instance).
    pub command_gradients: bool,
    /// Refuse to allocate more device memory than this many bytes.
    pub memory_limit: Option<u64>,
    /// Most instances per chunk (`None`: as many as the binding limit allows); results do not
    /// depend on it.
    pub max_chunk: Option<usize>,
    /// Accumulate gradients with respect to the physical parameters (off: they cost nothing and
    /// [`Gradients::params`] is zero).
    pub param_gradients: bool,
}

impl RolloutOptions {
    /// Exact gradients over `horizon` steps with the default checkpoint interval.
    pub fn new(horizon: u32) -> Self {
        RolloutOptions {
            horizon,
            checkpoint_every: None,
            gradient_decay: 1.0,
            truncation: None,
            command_gradients: true,
            memory_limit: None,
            max_chunk: None,
            param_gradients: true,
        }
    }

    /// The checkpoint interval used for `n_instances` instances of states of `state_len`
    /// floats.
    pub fn interval(&self, state_len: usize, n_instances: usize) -> u32 {
        let full = (u64::from(self.horizon) + 1) * state_len as u64 * n_instances as u64 * 4;
        self.checkpoint_every
            .unwrap_or(if full <= FULL_TRAJECTORY_BYTES {
                1
            } else {
                (self.horizon as f64).sqrt().ceil() as u32
            })
            .clamp(1, self.horizon.max(1))
    }
}

/// Submissions queued before the host waits for the device (and reports progress).
const MAX_PENDING_SUBMISSIONS: u32 = 16;

/// Below this many bytes for the whole trajectory of a batch, the default keeps every state
/// and the backward pass recomputes nothing; above it, checkpoints every `ceil(sqrt(T))` steps.
pub const FULL_TRAJECTORY_BYTES: u64 = 64 << 20;

/// Device memory a rollout needs, by purpose, in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Current state, parameters and constraint rows.
    pub working: u64,
    /// The command sequence (and its gradient when kept).
    pub commands: u64,
    /// Checkpoints and the recomputed segment.
    pub checkpoints: u64,
    /// The adjoint buffer (state, parameter and row adjoints, the sweep tape).
    pub adjoint: u64,
    /// Buffers every instance of a chunk shares: the packed model, and each chunk's step
    /// header and sequence of per-step headers. The loss terms' buffer (16 bytes or so per term)
    /// is not included: the estimate does not know the loss.
    pub shared: u64,
}

impl MemoryEstimate {
    /// Total bytes.
    pub fn total(&self) -> u64 {
        self.working + self.commands + self.checkpoints + self.adjoint + self.shared
    }
}

impl std::fmt::Display for MemoryEstimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        write!(
            f,
            "{:.1} MiB (working {:.1}, commands {:.1}, checkpoints {:.1}, adjoint {:.1}, \
             shared {:.1})",
            mib(self.total()),
            mib(self.working),
            mib(self.commands),
            mib(self.checkpoints),
            mib(self.adjoint),
            mib(self.shared)
        )
    }
}

/// Floats per instance of each per-instance buffer of a rollout, in allocation order:
/// state, initial state, params, commands, command gradients, rows, adjoint, checkpoints
/// (one every `K` steps plus the final state), segment, loss.
fn per_instance_floats(c: &Compiled, o: &RolloutOptions, n_instances: usize) -> [u64; 10] {
    let h = &c.header;
    let state = u64::from(h.state_len);
    let k = u64::from(o.interval(h.state_len as usize, n_instances));
    let t = u64::from(o.horizon);
    // An empty buffer still takes one float per instance (see `PerInstance::new`).
    let commands = (t * u64::from(h.n_commands)).max(1);
    [
        state,
        state,
        u64::from(h.param_len),
        commands,
        if o.command_gradients { commands } else { 1 },
        (c.n_rows().max(1) * ROW_LEN) as u64,
        u64::from(h.adj_len),
        (t.div_ceil(k) + 1) * state,
        (k + 1) * state,
        1,
    ]
}

/// Estimates the device memory of a rollout without allocating anything: every buffer that
/// [`Rollout::new`] allocates but the loss terms', assuming the batch is split into chunks only
/// where `options.max_chunk` says (a device whose binding limit splits it further adds one
/// step header per step and chunk).
pub fn estimate_memory(
    model: &Model,
    n_instances: usize,
    options: &RolloutOptions,
) -> MemoryEstimate {
    let c = Compiled::new(model);
    let f = per_instance_floats(&c, options, n_instances);
    let n = n_instances as u64 * 4;
    let chunks = options
        .max_chunk
        .map_or(1, |max| n_instances.div_ceil(max.max(1))) as u64;
    let headers = (u64::from(options.horizon) + 1) * std::mem::size_of::<Header>() as u64;
    MemoryEstimate {
        working: (f[0] + f[1] + f[2] + f[5] + f[9]) * n,
        commands: (f[3] + f[4]) * n,
        checkpoints: (f[7] + f[8]) * n,
        adjoint: f[6] * n,
        shared: c.packed.len() as u64 * 4 + chunks * headers,
    }
}

/// Gradients of a rollout, per instance, instance-major.
#[derive(Clone, Debug)]
pub struct Gradients {
    /// Loss of each instance.
    pub loss: Vec<f32>,
    /// dL/d(initial raw state), `state_len` per instance (bodies from slot 13, the world's
    /// slots and the warm-start impulses' entries included).
    pub initial_state: Vec<f32>,
    /// dL/d(parameters), layout of [`Compiled::param_slots`].
    pub params: Vec<f32>,
    /// dL/d(commands) for every step, `horizon * actuators` per instance (when kept).
    pub commands: Option<Vec<f32>>,
}

/// Work encoded around every step of a rollout (a policy choosing the commands).
pub trait StepHook {
    /// After the header of step `t` is in place, before the step: choose step `t`'s commands.
    fn before_step(&self, encoder: &mut wgpu::CommandEncoder, t: u32);
    /// After step `t`'s adjoint, with the state at the start of step `t` in place.
    fn after_step_adjoint(&self, encoder: &mut wgpu::CommandEncoder, t: u32);
}

/// The buffers of one chunk, for hooks that bind them.
pub struct ChunkView<'a> {
    /// Instances in the chunk.
    pub len: usize,
    /// The step header (uniform, updated before every step).
    pub header: &'a wgpu::Buffer,
    /// Current state.
    pub state: &'a wgpu::Buffer,
    /// Physical parameters.
    pub params: &'a wgpu::Buffer,
    /// Command sequence.
    pub commands: &'a wgpu::Buffer,
    /// Adjoint buffer.
    pub adjoint: &'a wgpu::Buffer,
}

struct ChunkBuffers {
    header: wgpu::Buffer,
    header_sequence: wgpu::Buffer,
    forward: wgpu::BindGroup,
    adjoint: wgpu::BindGroup,
    loss_forward: wgpu::BindGroup,
    loss_adjoint: wgpu::BindGroup,
    loss_command_adjoint: wgpu::BindGroup,
}

/// A batch of differentiable rollouts of one model over a fixed horizon.
pub struct Rollout {
    gpu: Arc<Gpu>,
    model: Model,
    compiled: Compiled,
    options: RolloutOptions,
    chunking: Chunking,
    state: PerInstance,
    initial: PerInstance,
    params: PerInstance,
    commands: PerInstance,
    command_grads: PerInstance,
    rows: PerInstance,
    adjoint: PerInstance,
    checkpoints: PerInstance,
    segment: PerInstance,
    loss: PerInstance,
    chunks: Vec<ChunkBuffers>,
    step_forward: wgpu::ComputePipeline,
    step_adjoint: wgpu::ComputePipeline,
    loss_forward: wgpu::ComputePipeline,
    loss_adjoint: wgpu::ComputePipeline,
    loss_command_adjoint: wgpu::ComputePipeline,
    /// Whether a loss term depends on the commands (a control cost), so that
    /// `loss_command_adjoint` has to run after every step adjoint.
    loss_has_command_terms: bool,
    model_buf: wgpu::Buffer,
    loss_buf: wgpu::Buffer,
    hook: Option<Box<dyn StepHook>>,
    forward_done: bool,
    interval: u32,
}

/// The headers of a chunk of `len` instances, one per step of the horizon.
fn header_sequence(
    h: Header,
    len: usize,
    options: &RolloutOptions,
    n_loss_terms: u32,
) -> Vec<Header> {
    let mut sequence = Vec::with_capacity(options.horizon as usize);
    for t in 0..options.horizon {
        let mut hh = h;
        hh.n_instances = len as u32;
        hh.steps = 1;
        hh.command_base_step = t;
        hh.command_step_stride = 1;
        hh.loss_step = t + 1;
        hh.horizon = options.horizon;
        hh.n_loss_terms = n_loss_terms;
        hh.gradient_decay = options.gradient_decay;
        hh.param_gradients = u32::from(options.param_gradients);
        sequence.push(hh);
    }
    sequence
}

/// What every chunk's buffers and bind groups are made over: the pipelines, the shared model
/// and loss buffers and the per-instance buffers.
struct ChunkInputs<'a> {
    gpu: &'a Gpu,
    step_forward: &'a wgpu::ComputePipeline,
    step_adjoint: &'a wgpu::ComputePipeline,
    loss_forward: &'a wgpu::ComputePipeline,
    loss_adjoint: &'a wgpu::ComputePipeline,
    loss_command_adjoint: &'a wgpu::ComputePipeline,
    model_buf: &'a wgpu::Buffer,
    loss_buf: &'a wgpu::Buffer,
    state: &'a PerInstance,
    params: &'a PerInstance,
    commands: &'a PerInstance,
    rows: &'a PerInstance,
    adjoint: &'a PerInstance,
    loss_values: &'a PerInstance,
}

impl ChunkInputs<'_> {
    /// Chunk `c`'s header buffers (the first step's header, and every step's to copy from) and
    /// its forward, adjoint and loss bind groups.
    fn chunk_buffers(&self, c: usize, sequence: &[Header]) -> ChunkBuffers {
        let header_sequence =
            self.gpu
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("header sequence"),
                    contents: bytemuck::cast_slice(sequence),
                    usage: wgpu::BufferUsages::COPY_SRC,
                });
        let header = self
            .gpu
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("header"),
                contents: bytemuck::bytes_of(&sequence[0]),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            });
        let forward = buffers::bind_group(
            self.gpu,
            self.step_forward,
            &[
                (0, &header),
                (1, self.model_buf),
                (2, self.state.buffer(c)),
                (3, self.params.buffer(c)),
                (4, self.commands.buffer(c)),
                (5, self.rows.buffer(c)),
            ],
        );
        let adjoint_bg = buffers::bind_group(
            self.gpu,
            self.step_adjoint,
            &[
                (0, &header),
                (1, self.model_buf),
                (2, self.state.buffer(c)),
                (3, self.params.buffer(c)),
                (4, self.commands.buffer(c)),
                (5, self.rows.buffer(c)),
                (6, self.adjoint.buffer(c)),
            ],
        );
        let loss_forward_bg = buffers::bind_group(
            self.gpu,
            self.loss_forward,
            &[
                (0, &header),
                (1, self.model_buf),
                (2, self.state.buffer(c)),
                (3, self.params.buffer(c)),
                (4, self.commands.buffer(c)),
                (7, self.loss_buf),
                (8, self.loss_values.buffer(c)),
            ],
        );
        let loss_adjoint_bg = buffers::bind_group(
            self.gpu,
            self.loss_adjoint,
            &[
                (0, &header),
                (1, self.model_buf),
                (2, self.state.buffer(c)),
                (3, self.params.buffer(c)),
                (6, self.adjoint.buffer(c)),
                (7, self.loss_buf),
            ],
        );
        let loss_command_adjoint_bg = buffers::bind_group(
            self.gpu,
            self.loss_command_adjoint,
            &[
                (0, &header),
                (4, self.commands.buffer(c)),
                (6, self.adjoint.buffer(c)),
                (7, self.loss_buf),
            ],
        );
        ChunkBuffers {
            header,
            header_sequence,
            forward,
            adjoint: adjoint_bg,
            loss_forward: loss_forward_bg,
            loss_adjoint: loss_adjoint_bg,
            loss_command_adjoint: loss_command_adjoint_bg,
        }
    }
}

impl Rollout {
    /// Allocates a rollout of `n_instances` instances of `model` under `loss`. Fails with
    /// [`Error::TooLarge`] when the memory estimate exceeds `options.memory_limit`.
    pub fn new(
        gpu: Arc<Gpu>,
        model: &Model,
        n_instances: usize,
        loss: &Loss,
        options: RolloutOptions,
    ) -> Result<Rollout> {
        model.validate()?;
        if n_instances == 0 {
            return Err(Error::InvalidInput(
                "the number of instances must be at least 1".into(),
            ));
        }
        if options.horizon == 0 {
            return Err(Error::InvalidInput(
                "the horizon must be at least 1 step".into(),
            ));
        }
        if options.truncation == Some(0) {
            return Err(Error::InvalidInput(
                "truncation must be at least one step (None: no truncation)".into(),
            ));
        }
        if !(options.gradient_decay.is_finite() && options.gradient_decay > 0.0) {
            return Err(Error::InvalidInput(format!(
                "gradient decay must be positive, got {}",
                options.gradient_decay
            )));
        }
        let estimate = estimate_memory(model, n_instances, &options);
        if let Some(limit) = options.memory_limit
            && estimate.total() > limit
        {
            return Err(Error::TooLarge(format!(
                "the rollout needs {estimate}, over the limit of {:.1} MiB; use fewer instances, a \
                 shorter horizon or another checkpoint interval",
                limit as f64 / (1024.0 * 1024.0)
            )));
        }
        let what = format!("a rollout of {n_instances} instances of '{}'", model.name);
        gpu.check_budget(estimate.total(), &what)?;
        let device = gpu.clone();
        device.allocation_scope(&what, || {
            Rollout::allocate(gpu, model, n_instances, loss, options)
        })?
    }

    /// Creates the buffers, pipelines and bind groups of a checked rollout.
    fn allocate(
        gpu: Arc<Gpu>,
        model: &Model,
        n_instances: usize,
        loss: &Loss,
        options: RolloutOptions,
    ) -> Result<Rollout> {
        let compiled = Compiled::new(model);
        let floats = per_instance_floats(&compiled, &options, n_instances);
        let options_interval = options.interval(compiled.header.state_len as usize, n_instances);
        let chunk_max = Chunking::max_instances(&gpu.limits, &floats)
            .min(options.max_chunk.unwrap_or(usize::MAX).max(1));
        if chunk_max == 0 {
            return Err(Error::TooLarge(format!(
                "one instance needs more than the device's storage binding limit of {} bytes \
                 (largest per-instance buffer {} bytes)",
                gpu.max_binding_bytes(),
                floats.iter().max().unwrap_or(&0) * 4
            )));
        }
        let chunking = Chunking::new(n_instances, chunk_max);
        let h = compiled.header;
        let packed_loss = loss.pack(model)?;
        let n_loss_terms = loss.terms.len() as u32;

        let step_forward = buffers::pipeline(&gpu, shaders::STEP, "step_forward")?;
        let step_adjoint = buffers::pipeline(&gpu, shaders::STEP_ADJOINT, "step_adjoint")?;
        let loss_forward = buffers::pipeline(&gpu, shaders::LOSS, "loss_forward")?;
        let loss_adjoint = buffers::pipeline(&gpu, shaders::LOSS, "loss_adjoint")?;
        let loss_command_adjoint = buffers::pipeline(&gpu, shaders::LOSS, "loss_command_adjoint")?;
        let loss_has_command_terms = loss
            .terms
            .iter()
            .any(|t| matches!(t.quantity, crate::grad::loss::Quantity::ControlCost));

        let alloc = |width: u64, label: &str, one: Option<&[f32]>| {
            PerInstance::new(&gpu, &chunking, width as usize, label, one)
        };
        let state = alloc(floats[0], "state", Some(&compiled.initial_state));
        let initial = alloc(floats[1], "initial state", Some(&compiled.initial_state));
        let params = alloc(floats[2], "params", Some(&compiled.default_params));
        let command_floats = u64::from(options.horizon) * u64::from(h.n_commands);
        let commands = alloc(command_floats, "commands", None);
        let command_grads = alloc(
            if options.command_gradients {
                command_floats
            } else {
                0
            },
            "command gradients",
            None,
        );
        let rows = alloc(floats[5], "rows", None);
        let adjoint = alloc(floats[6], "adjoint", None);
        let checkpoints = alloc(floats[7], "checkpoints", None);
        let segment = alloc(floats[8], "segment", None);
        let loss_values = alloc(floats[9], "loss", None);

        let storage = |label: &str, words: &[u32]| {
            gpu.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: bytemuck::cast_slice(words),
                    usage: wgpu::BufferUsages::STORAGE,
                })
        };
        let model_buf = storage("model", &compiled.packed);
        let loss_buf = storage("loss terms", &packed_loss);

        let inputs = ChunkInputs {
            gpu: &gpu,
            step_forward: &step_forward,
            step_adjoint: &step_adjoint,
            loss_forward: &loss_forward,
            loss_adjoint: &loss_adjoint,
            loss_command_adjoint: &loss_command_adjoint,
            model_buf: &model_buf,
            loss_buf: &loss_buf,
            state: &state,
            params: &params,
            commands: &commands,
            rows: &rows,
            adjoint: &adjoint,
            loss_values: &loss_values,
        };
        let mut chunks = Vec::new();
        for (c, (_, len)) in chunking.ranges().enumerate() {
            // One header per step: command_base_step = t, loss_step = t + 1.
            let sequence = header_sequence(h, len, &options, n_loss_terms);
            chunks.push(inputs.chunk_buffers(c, &sequence));
        }
        Ok(Rollout {
            gpu,
            model: model.clone(),
            compiled,
            options,
            chunking,
            state,
            initial,
            params,
            commands,
            command_grads,
            rows,
            adjoint,
            checkpoints,
            segment,
            loss: loss_values,
            chunks,
            step_forward,
            step_adjoint,
            loss_forward,
            loss_adjoint,
            loss_command_adjoint,
            loss_has_command_terms,
            model_buf,
            loss_buf,
            hook: None,
            forward_done: false,
            interval: options_interval,
        })
    }

    /// Installs work to run around every step (replacing any earlier hook).
    pub fn set_hook(&mut self, hook: Box<dyn StepHook>) {
        self.forward_done = false;
        self.hook = Some(hook);
    }

    /// The packed model buffer shared by all chunks.
    pub fn model_buffer(&self) -> &wgpu::Buffer {
        &self.model_buf
    }

    /// The buffers of every chunk.
    pub fn chunk_views(&self) -> Vec<ChunkView<'_>> {
        self.chunking
            .lens
            .iter()
            .enumerate()
            .map(|(c, &len)| ChunkView {
                len,
                header: &self.chunks[c].header,
                state: self.state.buffer(c),
                params: self.params.buffer(c),
                commands: self.commands.buffer(c),
                adjoint: self.adjoint.buffer(c),
            })
            .collect()
    }

    /// The compiled model.
    pub fn compiled(&self) -> &Compiled {
        &self.compiled
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Number of instances.
    pub fn n_instances(&self) -> usize {
        self.chunking.total()
    }

    /// The options.
    pub fn options(&self) -> &RolloutOptions {
        &self.options
    }

    /// The checkpoint interval in use.
    pub fn checkpoint_interval(&self) -> u32 {
        self.interval
    }

    /// Device memory held in buffers, in bytes: every buffer of the rollout (not the
    /// pipelines). It is [`estimate_memory`]'s total plus the loss terms' buffer.
    pub fn device_bytes(&self) -> u64 {
        let per_instance: u64 = [
            &self.state,
            &self.initial,
            &self.params,
            &self.commands,
            &self.command_grads,
            &self.rows,
            &self.adjoint,
            &self.checkpoints,
            &self.segment,
            &self.loss,
        ]
        .iter()
        .map(|b| b.bytes())
        .sum();
        let chunks: u64 = self
            .chunks
            .iter()
            .map(|c| c.header.size() + c.header_sequence.size())
            .sum();
        per_instance + chunks + self.model_buf.size() + self.loss_buf.size()
    }

    /// Sets every instance's initial raw state (instance-major, `state_len` each).
    pub fn set_initial_state(&mut self, state: &[f32]) -> Result<()> {
        self.forward_done = false;
        self.initial.write(&self.gpu, state, "initial state")
    }

    /// Sets every instance's command sequence: instance-major, `horizon * actuators` each.
    pub fn set_commands(&mut self, commands: &[f32]) -> Result<()> {
        self.forward_done = false;
        self.commands.write(&self.gpu, commands, "commands")
    }

    /// Sets every instance's parameters (layout of [`Compiled::param_slots`]).
    pub fn set_params(&mut self, params: &[f32]) -> Result<()> {
        self.forward_done = false;
        self.params.write(&self.gpu, params, "params")
    }

    /// Every instance's parameters.
    pub fn params(&self) -> Result<Vec<f32>> {
        self.params.read(&self.gpu)
    }

    /// The final raw states after [`Rollout::forward`].
    pub fn final_state(&self) -> Result<Vec<f32>> {
        self.state.read(&self.gpu)
    }

    fn state_bytes(&self, len: usize) -> u64 {
        u64::from(self.compiled.header.state_len) * len as u64 * 4
    }

    /// Encodes the copy of step `t`'s header into every chunk's uniform.
    fn encode_header(&self, encoder: &mut wgpu::CommandEncoder, t: u32) {
        for chunk in &self.chunks {
            encoder.copy_buffer_to_buffer(
                &chunk.header_sequence,
                u64::from(t) * HEADER_BYTES,
                &chunk.header,
                0,
                HEADER_BYTES,
            );
        }
    }

    /// Encodes: header of step `t`, then one dispatch of `pipeline` per chunk.
    fn encode_dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        t: u32,
        pipeline: &wgpu::ComputePipeline,
        group: impl Fn(&ChunkBuffers) -> &wgpu::BindGroup,
    ) {
        self.encode_header(encoder, t);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
        pass.set_pipeline(pipeline);
        for (chunk, &len) in self.chunks.iter().zip(&self.chunking.lens) {
            pass.set_bind_group(0, group(chunk), &[]);
            pass.dispatch_workgroups((len as u32).div_ceil(WORKGROUP), 1, 1);
        }
    }

    /// Copies state slots between per-instance buffers for every chunk: `count` states from
    /// state index `from` of `src` to state index `to` of `dst`.
    fn encode_state_copy(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        src: &PerInstance,
        from: u64,
        dst: &PerInstance,
        to: u64,
    ) {
        for (c, &len) in self.chunking.lens.iter().enumerate() {
            let bytes = self.state_bytes(len);
            encoder.copy_buffer_to_buffer(
                src.buffer(c),
                from * bytes,
                dst.buffer(c),
                to * bytes,
                bytes,
            );
        }
    }

    fn new_encoder(&self) -> wgpu::CommandEncoder {
        self.gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("rollout"),
            })
    }

    /// Runs the rollout forward from the initial states, storing checkpoints, and returns each
    /// instance's loss. `progress` is called with (steps done, horizon).
    pub fn forward_with_progress(
        &mut self,
        progress: &mut dyn FnMut(u32, u32),
    ) -> Result<Vec<f32>> {
        self.run_forward(None, progress).map(|(loss, _)| loss)
    }

    /// Runs the rollout forward like [`Rollout::forward`] and returns the raw states of every
    /// instance (instance-major) after every `every` steps, the initial state first. One
    /// submission per recorded step: meant for looking at a rollout, not for speed.
    pub fn forward_recording(&mut self, every: u32) -> Result<Vec<Vec<f32>>> {
        self.run_forward(Some(every.max(1)), &mut |_, _| {})
            .map(|(_, frames)| frames)
    }

    fn run_forward(
        &mut self,
        record_every: Option<u32>,
        progress: &mut dyn FnMut(u32, u32),
    ) -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
        let horizon = self.options.horizon;
        let k = self.interval;
        let mut encoder = self.new_encoder();
        self.encode_state_copy(&mut encoder, &self.initial, 0, &self.state, 0);
        self.encode_state_copy(&mut encoder, &self.state, 0, &self.checkpoints, 0);
        for c in 0..self.chunks.len() {
            encoder.clear_buffer(self.loss.buffer(c), 0, None);
        }
        let mut frames = Vec::new();
        let mut pending = 0;
        if record_every.is_some() {
            self.gpu.queue.submit([encoder.finish()]);
            frames.push(self.state.read(&self.gpu)?);
            encoder = self.new_encoder();
        }
        for t in 0..horizon {
            if let Some(hook) = &self.hook {
                self.encode_header(&mut encoder, t);
                hook.before_step(&mut encoder, t);
            }
            self.encode_dispatch(&mut encoder, t, &self.step_forward, |c| &c.forward);
            self.encode_dispatch(&mut encoder, t, &self.loss_forward, |c| &c.loss_forward);
            let done = t + 1;
            // Checkpoint c holds the state after c * K steps; the last slot the final state.
            if done % k == 0 || done == horizon {
                self.encode_state_copy(
                    &mut encoder,
                    &self.state,
                    0,
                    &self.checkpoints,
                    u64::from(done.div_ceil(k)),
                );
            }
            let record = record_every.is_some_and(|e| done % e == 0 || done == horizon);
            if done % k == 0 || done == horizon || record {
                self.gpu.queue.submit([encoder.finish()]);
                pending += 1;
                // Waiting after every submission would leave the device idle while the next
                // one is encoded; wait only to read, to report progress now and then, and at
                // the end.
                if record || done == horizon || pending >= MAX_PENDING_SUBMISSIONS {
                    buffers::wait(&self.gpu)?;
                    pending = 0;
                    progress(done, horizon);
                }
                if record {
                    frames.push(self.state.read(&self.gpu)?);
                }
                encoder = self.new_encoder();
            }
        }
        self.forward_done = true;
        Ok((self.loss.read(&self.gpu)?, frames))
    }

    /// [`Rollout::forward_with_progress`] without progress reports.
    pub fn forward(&mut self) -> Result<Vec<f32>> {
        self.forward_with_progress(&mut |_, _| {})
    }

    /// Runs the adjoint backward through the whole rollout, after [`Rollout::forward`].
    pub fn backward(&mut self) -> Result<Gradients> {
        self.backward_from(None, &mut |_, _| {})
    }

    /// The adjoint pass, optionally seeded with dL/d(final raw state) (instance-major) on top
    /// of the loss terms; `progress` is called with (steps done, horizon).
    pub fn backward_from(
        &mut self,
        final_state_seed: Option<&[f32]>,
        progress: &mut dyn FnMut(u32, u32),
    ) -> Result<Gradients> {
        if !self.forward_done {
            return Err(Error::InvalidInput(
                "backward needs a forward pass over the current inputs first".into(),
            ));
        }
        let horizon = self.options.horizon;
        let k = self.interval;
        let state_len = self.compiled.header.state_len as usize;
        let adj_len = self.compiled.header.adj_len as usize;
        // Zero the adjoint, then place the seed in its state region.
        let mut seed = vec![0.0f32; adj_len * self.n_instances()];
        if let Some(s) = final_state_seed {
            if s.len() != state_len * self.n_instances() {
                return Err(Error::InvalidInput(format!(
                    "final state seed: expected {} values, got {}",
                    state_len * self.n_instances(),
                    s.len()
                )));
            }
            for i in 0..self.n_instances() {
                seed[i * adj_len..i * adj_len + state_len]
                    .copy_from_slice(&s[i * state_len..(i + 1) * state_len]);
            }
        }
        self.adjoint.write(&self.gpu, &seed, "final state seed")?;
        let n_segments = horizon.div_ceil(k);
        let mut done = 0;
        let mut pending = 0;
        for seg in (0..n_segments).rev() {
            let t0 = seg * k;
            let t1 = (t0 + k).min(horizon);
            let mut encoder = self.new_encoder();
            self.encode_state_copy(
                &mut encoder,
                &self.checkpoints,
                u64::from(seg),
                &self.state,
                0,
            );
            self.encode_state_copy(&mut encoder, &self.state, 0, &self.segment, 0);
            // Recompute the states inside the segment; its last one is the next checkpoint.
            for t in t0..t1 - 1 {
                self.encode_dispatch(&mut encoder, t, &self.step_forward, |c| &c.forward);
                self.encode_state_copy(
                    &mut encoder,
                    &self.state,
                    0,
                    &self.segment,
                    u64::from(t - t0 + 1),
                );
            }
            self.encode_state_copy(
                &mut encoder,
                &self.checkpoints,
                u64::from(seg + 1),
                &self.segment,
                u64::from(t1 - t0),
            );
            for t in (t0..t1).rev() {
                self.encode_state_copy(
                    &mut encoder,
                    &self.segment,
                    u64::from(t - t0 + 1),
                    &self.state,
                    0,
                );
                self.encode_dispatch(&mut encoder, t, &self.loss_adjoint, |c| &c.loss_adjoint);
                self.encode_state_copy(
                    &mut encoder,
                    &self.segment,
                    u64::from(t - t0),
                    &self.state,
                    0,
                );
                self.encode_dispatch(&mut encoder, t, &self.step_adjoint, |c| &c.adjoint);
                if self.loss_has_command_terms {
                    self.encode_dispatch(&mut encoder, t, &self.loss_command_adjoint, |c| {
                        &c.loss_command_adjoint
                    });
                }
                if let Some(hook) = &self.hook {
                    hook.after_step_adjoint(&mut encoder, t);
                }
                if let Some(window) = self.options.truncation
                    && t > 0
                    && t % window == 0
                {
                    // What flows on to step t - 1 is the state adjoint (bodies and warm-start
                    // impulses); the adjoint buffer is slot-major within each chunk.
                    let h = &self.compiled.header;
                    for (c, &len) in self.chunking.lens.iter().enumerate() {
                        let len = len as u64;
                        encoder.clear_buffer(
                            self.adjoint.buffer(c),
                            u64::from(h.adj_state) * len * 4,
                            Some(u64::from(h.state_len) * len * 4),
                        );
                    }
                }
                if self.options.command_gradients {
                    let h = &self.compiled.header;
                    let a = u64::from(h.n_commands);
                    for (c, &len) in self.chunking.lens.iter().enumerate() {
                        let len = len as u64;
                        encoder.copy_buffer_to_buffer(
                            self.adjoint.buffer(c),
                            u64::from(h.adj_commands) * len * 4,
                            self.command_grads.buffer(c),
                            u64::from(t) * a * len * 4,
                            a * len * 4,
                        );
                    }
                }
            }
            self.gpu.queue.submit([encoder.finish()]);
            pending += 1;
            done += t1 - t0;
            if seg == 0 || pending >= MAX_PENDING_SUBMISSIONS {
                buffers::wait(&self.gpu)?;
                pending = 0;
                progress(done, horizon);
            }
        }
        let adjoint = self.adjoint.read(&self.gpu)?;
        let h = &self.compiled.header;
        let n = self.n_instances();
        let mut nonfinite = Vec::new();
        let mut initial_state = Vec::with_capacity(n * state_len);
        let mut params = Vec::with_capacity(n * h.param_len as usize);
        for i in 0..n {
            let a = &adjoint[i * adj_len..(i + 1) * adj_len];
            let flag = a[h.adj_nonfinite as usize];
            if flag != 0.0 {
                nonfinite.push((i, flag as u32 - 1));
            }
            initial_state.extend_from_slice(&a[..state_len]);
            let p0 = h.adj_params as usize;
            params.extend_from_slice(&a[p0..p0 + h.param_len as usize]);
        }
        if !nonfinite.is_empty() {
            return Err(Error::NonFiniteGradient(nonfinite));
        }
        let commands = if self.options.command_gradients {
            Some(self.command_grads.read(&self.gpu)?)
        } else {
            None
        };
        Ok(Gradients {
            loss: self.loss.read(&self.gpu)?,
            initial_state,
            params,
            commands,
        })
    }
}
