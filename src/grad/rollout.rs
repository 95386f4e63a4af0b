//! Differentiable rollouts: forward with checkpoints, then the adjoint in reverse time.
//!
//! The forward pass stores the state every `K` steps and the final state (checkpoints). The
//! backward pass walks the segments from last to first: it recomputes the `K - 1` states inside
//! a segment from its checkpoint (the segment's last state is the next checkpoint), then for
//! each step in reverse adds the loss gradient of the state after the step (`loss_adjoint`) and
//! runs `step_adjoint`, which recomputes the step's stages and replays the solver's sweeps
//! from a tape where one was recorded (see [`SolverTape`]), or re-runs them otherwise. State
//! memory per instance is `T / K + K + 2` states. By default `K` is 1 (every state kept, nothing
//! recomputed) when the whole trajectory of the batch fits in [`FULL_TRAJECTORY_BYTES`], and
//! `ceil(sqrt(T))` otherwise. Gradients are per instance and deterministic: every instance
//! accumulates its own parameter adjoints, no atomics.

use std::sync::Arc;

use wgpu::util::DeviceExt;

use crate::engine::batch::{self, Batch};
use crate::engine::buffers::{self, Chunking, PerInstance, padded_len};
use crate::engine::gpu::Gpu;
use crate::engine::layout::{Compiled, Header};
use crate::engine::shaders::{self, ModelBinding};
use crate::engine::sim::{BodyState, bodies_from_raw};
use crate::error::{Error, Result};
use crate::grad::loss::Loss;
use crate::model::Model;
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
    /// Bytes the solver's tape may take (`None`: [`DEFAULT_TAPE_BYTES`]); `Some(0)` never
    /// records it. See [`SolverTape`]: without a tape the backward pass re-runs every step's
    /// sweeps. The gradients are the same bits either way.
    pub tape_memory: Option<u64>,
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
            tape_memory: None,
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

/// One instance-major array per recorded step (states, or the loss summed so far).
pub type Recorded = Vec<Vec<f32>>;

/// `loss_last_step` of an instance paid for every step: above any loss step.
const EVERY_LOSS_STEP: f32 = f32::MAX;

/// Submissions queued before the host waits for the device (and reports progress).
const MAX_PENDING_SUBMISSIONS: u32 = 16;

/// Below this many bytes for the whole trajectory of a batch, the default keeps every state
/// and the backward pass recomputes nothing; above it, checkpoints every `ceil(sqrt(T))` steps.
pub const FULL_TRAJECTORY_BYTES: u64 = 64 << 20;

/// The default of [`RolloutOptions::tape_memory`].
pub const DEFAULT_TAPE_BYTES: u64 = 512 << 20;

/// Where the backward pass gets each step's Gauss-Seidel sweeps from, which the reverse sweeps
/// need (every row's impulse after every sweep, and the velocities after the solve).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SolverTape {
    /// No tape fits: `step_adjoint` re-runs the sweeps of every step it reverses.
    Recomputed,
    /// Every state is kept (`K` = 1): the forward pass records every step's tape.
    Forward,
    /// Checkpointed: the backward pass's recomputation of a segment records its steps' tapes
    /// (`K` steps, the segment's last step included).
    Segments,
}

/// Floats of one step's tape per instance: the impulses after every sweep and the bodies'
/// velocities after the solve (see `tape_index` in `shaders/solver.wgsl`).
fn tape_step_floats(h: &Header) -> u64 {
    u64::from(h.sweeps) * u64::from(h.n_rows) + 6 * u64::from(h.n_bodies)
}

/// How a rollout of `n_instances` tapes its solver, and the steps its tape holds: the whole
/// horizon where every state is kept, a segment where it checkpoints. A tape is recorded when
/// it takes at most `options.tape_memory` (default [`DEFAULT_TAPE_BYTES`]) in all, at most
/// `max_binding_bytes` per instance, and keeps the rollout within `options.memory_limit` and
/// `device_budget` given `other_bytes` for everything else.
fn solver_tape(
    c: &Compiled,
    options: &RolloutOptions,
    n_instances: usize,
    (max_binding_bytes, device_budget): (u64, Option<u64>),
    other_bytes: u64,
) -> (SolverTape, u32) {
    let h = &c.header;
    let k = options.interval(h.state_len as usize, n_instances);
    let (mode, window) = if k == 1 {
        (SolverTape::Forward, options.horizon)
    } else {
        (SolverTape::Segments, k)
    };
    let per_instance = u64::from(window) * tape_step_floats(h) * 4;
    let chunking = Chunking::new(n_instances, options.max_chunk.unwrap_or(usize::MAX));
    let padded: u64 = chunking
        .lens
        .iter()
        .map(|&len| padded_len(len) as u64)
        .sum();
    let bytes = per_instance.saturating_mul(padded);
    let fits = bytes <= options.tape_memory.unwrap_or(DEFAULT_TAPE_BYTES)
        && per_instance <= max_binding_bytes
        && [options.memory_limit, device_budget]
            .iter()
            .flatten()
            .all(|&limit| other_bytes.saturating_add(bytes) <= limit);
    if fits && per_instance > 0 {
        (mode, window)
    } else {
        (SolverTape::Recomputed, 0)
    }
}

/// Device memory a rollout needs, by purpose, in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Current state, parameters and constraint rows.
    pub working: u64,
    /// The command sequence (and its gradient when kept).
    pub commands: u64,
    /// Checkpoints and the recomputed segment.
    pub checkpoints: u64,
    /// The adjoint buffer (state, parameter and row adjoints, the sweep history) and the
    /// solver's tape ([`SolverTape`]).
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
/// (one every `K` steps plus the final state), segment, loss, the loss's last paid step, and the
/// solver's tape (`tape_window` steps of it).
fn per_instance_floats(
    c: &Compiled,
    o: &RolloutOptions,
    n_instances: usize,
    tape_window: u32,
) -> [u64; 12] {
    let h = &c.header;
    let k = u64::from(o.interval(h.state_len as usize, n_instances));
    let t = u64::from(o.horizon);
    // An empty buffer still takes one float per instance (see `PerInstance::new`).
    let [state, params, commands, _] = Batch::step_floats(c, t * u64::from(h.n_commands));
    let rows = Batch::adjoint_row_floats(c);
    [
        state,
        state,
        params,
        commands,
        if o.command_gradients { commands } else { 1 },
        rows,
        u64::from(h.adj_len),
        (t.div_ceil(k) + 1) * state,
        (k + 1) * state,
        1,
        1,
        // An empty buffer still takes one float per instance.
        (u64::from(tape_window) * tape_step_floats(h)).max(1),
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
    estimate_compiled_memory(&Compiled::new(model), n_instances, options)
}

/// [`estimate_memory`] for a model already compiled.
pub fn estimate_compiled_memory(
    c: &Compiled,
    n_instances: usize,
    options: &RolloutOptions,
) -> MemoryEstimate {
    estimate_with_device(c, n_instances, options, (u64::MAX, None)).0
}

/// [`estimate_compiled_memory`] on a device whose storage bindings hold at most
/// `device.0` bytes and whose memory budget is `device.1`, with the solver tape it leads to
/// (none where it would not fit).
fn estimate_with_device(
    c: &Compiled,
    n_instances: usize,
    options: &RolloutOptions,
    device: (u64, Option<u64>),
) -> (MemoryEstimate, SolverTape, u32) {
    let without_tape = estimate_with_tape(c, n_instances, options, 0);
    let (mode, window) = solver_tape(c, options, n_instances, device, without_tape.total());
    (
        estimate_with_tape(c, n_instances, options, window),
        mode,
        window,
    )
}

fn estimate_with_tape(
    c: &Compiled,
    n_instances: usize,
    options: &RolloutOptions,
    tape_window: u32,
) -> MemoryEstimate {
    let f = per_instance_floats(c, options, n_instances, tape_window);
    let chunking = Chunking::new(n_instances, options.max_chunk.unwrap_or(usize::MAX));
    // Chunks are allocated in whole blocks of instances.
    let n = chunking
        .lens
        .iter()
        .map(|&len| padded_len(len) as u64)
        .sum::<u64>()
        * 4;
    let chunks = options
        .max_chunk
        .map_or(1, |max| n_instances.div_ceil(max.max(1))) as u64;
    let headers = (u64::from(options.horizon) + 1) * std::mem::size_of::<Header>() as u64;
    // The model table as a device with WebGPU's default uniform limit binds it.
    let model_binding = ModelBinding::for_table(c.packed.len(), &wgpu::Limits::default());
    MemoryEstimate {
        working: (f[0] + f[1] + f[2] + f[5] + f[9] + f[10]) * n,
        commands: (f[3] + f[4]) * n,
        checkpoints: (f[7] + f[8]) * n,
        adjoint: (f[6] + f[11]) * n,
        shared: model_binding.buffer_bytes(c.packed.len())
            + chunks * headers
            + std::mem::size_of::<TapePlan>() as u64,
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

/// `struct TapePlan` in `shaders/common.wgsl`: where the steps lie in the solver's tape.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct TapePlan {
    /// Steps the tape holds; step `t` lies at `t % window`.
    window: u32,
    /// Floats per instance of the tape array.
    width: u32,
    /// 1 where the forward records the tape and the adjoint replays it, 0 where the adjoint
    /// re-runs the sweeps.
    recorded: u32,
    pad: u32,
}

struct ChunkBuffers {
    header: wgpu::Buffer,
    header_sequence: wgpu::Buffer,
    forward: wgpu::BindGroup,
    /// `step_forward_taped`'s bind group, where the rollout records a tape.
    forward_taped: Option<wgpu::BindGroup>,
    adjoint: wgpu::BindGroup,
    loss_forward: wgpu::BindGroup,
    loss_adjoint: wgpu::BindGroup,
    loss_command_adjoint: wgpu::BindGroup,
}

/// A batch of differentiable rollouts of one model over a fixed horizon.
pub struct Rollout {
    model: Model,
    options: RolloutOptions,
    /// The model buffer, the chunking, and the state, parameters, command sequence and rows.
    batch: Batch,
    initial: PerInstance,
    command_grads: PerInstance,
    adjoint: PerInstance,
    checkpoints: PerInstance,
    segment: PerInstance,
    loss: PerInstance,
    /// Per instance, the last loss step whose terms count (`shaders/loss.wgsl`,
    /// `loss_last_step`).
    loss_last_step: PerInstance,
    tape: PerInstance,
    tape_plan: wgpu::Buffer,
    solver_tape: SolverTape,
    chunks: Vec<ChunkBuffers>,
    step_forward: wgpu::ComputePipeline,
    /// Present where the rollout records a tape ([`SolverTape::Forward`] or `Segments`).
    step_forward_taped: Option<wgpu::ComputePipeline>,
    step_adjoint: wgpu::ComputePipeline,
    loss_forward: wgpu::ComputePipeline,
    loss_adjoint: wgpu::ComputePipeline,
    loss_command_adjoint: wgpu::ComputePipeline,
    /// Whether a loss term depends on the commands (a control cost), so that
    /// `loss_command_adjoint` has to run after every step adjoint.
    loss_has_command_terms: bool,
    loss_buf: wgpu::Buffer,
    hook: Option<Box<dyn StepHook>>,
    forward_done: bool,
    interval: u32,
}

/// The headers of a chunk (`h`: its header, [`Batch::chunk_header`]), one per step of the
/// horizon.
fn header_sequence(h: Header, options: &RolloutOptions, n_loss_terms: u32) -> Vec<Header> {
    let mut sequence = Vec::with_capacity(options.horizon as usize);
    for t in 0..options.horizon {
        let mut hh = h;
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
    batch: &'a Batch,
    step_forward: &'a wgpu::ComputePipeline,
    step_forward_taped: Option<&'a wgpu::ComputePipeline>,
    step_adjoint: &'a wgpu::ComputePipeline,
    loss_forward: &'a wgpu::ComputePipeline,
    loss_adjoint: &'a wgpu::ComputePipeline,
    loss_command_adjoint: &'a wgpu::ComputePipeline,
    loss_buf: &'a wgpu::Buffer,
    adjoint: &'a PerInstance,
    loss_values: &'a PerInstance,
    loss_last_step: &'a PerInstance,
    tape: &'a PerInstance,
    tape_plan: &'a wgpu::Buffer,
}

impl ChunkInputs<'_> {
    /// Chunk `c`'s header buffers (the first step's header, and every step's to copy from) and
    /// its forward, adjoint and loss bind groups.
    fn chunk_buffers(&self, c: usize, sequence: &[Header]) -> ChunkBuffers {
        let gpu = self.batch.gpu();
        let header_sequence = gpu
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("header sequence"),
                contents: bytemuck::cast_slice(sequence),
                usage: wgpu::BufferUsages::COPY_SRC,
            });
        let header = self.batch.header_buffer(&sequence[0]);
        let step = self.batch.step_bindings(c, &header);
        let forward = buffers::bind_group(gpu, self.step_forward, &step);
        let mut adjoint_entries = step.to_vec();
        adjoint_entries.push((6, self.adjoint.buffer(c)));
        adjoint_entries.push((16, self.tape.buffer(c)));
        adjoint_entries.push((17, self.tape_plan));
        let adjoint_bg = buffers::bind_group(gpu, self.step_adjoint, &adjoint_entries);
        let forward_taped = self
            .step_forward_taped
            .map(|p| buffers::bind_group(gpu, p, &adjoint_entries));
        // The loss kernels bind the header, model, state and params like the step.
        let loss_forward_bg = buffers::bind_group(
            gpu,
            self.loss_forward,
            &[
                step[0],
                step[1],
                step[2],
                step[3],
                step[4],
                (7, self.loss_buf),
                (8, self.loss_values.buffer(c)),
                (9, self.loss_last_step.buffer(c)),
            ],
        );
        let loss_adjoint_bg = buffers::bind_group(
            gpu,
            self.loss_adjoint,
            &[
                step[0],
                step[1],
                step[2],
                step[3],
                (6, self.adjoint.buffer(c)),
                (7, self.loss_buf),
                (9, self.loss_last_step.buffer(c)),
            ],
        );
        let loss_command_adjoint_bg = buffers::bind_group(
            gpu,
            self.loss_command_adjoint,
            &[
                step[0],
                step[4],
                (6, self.adjoint.buffer(c)),
                (7, self.loss_buf),
                (9, self.loss_last_step.buffer(c)),
            ],
        );
        ChunkBuffers {
            header,
            header_sequence,
            forward,
            forward_taped,
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
        let compiled = Arc::new(Compiled::new(model));
        Rollout::with_compiled(gpu, model, compiled, n_instances, loss, options)
    }

    /// [`Rollout::new`] over a layout already compiled from `model` (`Compiled::new(model)`),
    /// so that a run compiles its model once.
    pub fn with_compiled(
        gpu: Arc<Gpu>,
        model: &Model,
        compiled: Arc<Compiled>,
        n_instances: usize,
        loss: &Loss,
        options: RolloutOptions,
    ) -> Result<Rollout> {
        model.validate()?;
        batch::check_compiled(model, &compiled)?;
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
        let (estimate, solver_tape, tape_window) = estimate_with_device(
            &compiled,
            n_instances,
            &options,
            (gpu.max_binding_bytes(), gpu.memory_budget()),
        );
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
            Rollout::allocate(
                gpu,
                model,
                compiled,
                n_instances,
                loss,
                options,
                (solver_tape, tape_window),
            )
        })?
    }

    /// Creates the buffers, pipelines and bind groups of a checked rollout.
    fn allocate(
        gpu: Arc<Gpu>,
        model: &Model,
        compiled: Arc<Compiled>,
        n_instances: usize,
        loss: &Loss,
        options: RolloutOptions,
        (solver_tape, tape_window): (SolverTape, u32),
    ) -> Result<Rollout> {
        let floats = per_instance_floats(&compiled, &options, n_instances, tape_window);
        let interval = options.interval(compiled.header.state_len as usize, n_instances);
        let chunking =
            Batch::plan_chunks(&gpu, &model.name, &floats, n_instances, options.max_chunk)?;
        let h = compiled.header;
        let packed_loss = loss.pack(model)?;
        let n_loss_terms = loss.terms.len() as u32;

        let binding = Batch::model_binding_for(&gpu, &compiled);
        let pipeline = |entry, name| buffers::pipeline_with(&gpu, entry, name, binding);
        let step_forward = pipeline(shaders::STEP, "step_forward")?;
        let step_adjoint = pipeline(shaders::STEP_ADJOINT, "step_adjoint")?;
        let step_forward_taped = match solver_tape {
            SolverTape::Recomputed => None,
            _ => Some(pipeline(shaders::STEP_ADJOINT, "step_forward_taped")?),
        };
        let loss_forward = pipeline(shaders::LOSS, "loss_forward")?;
        let loss_adjoint = pipeline(shaders::LOSS, "loss_adjoint")?;
        let loss_command_adjoint = pipeline(shaders::LOSS, "loss_command_adjoint")?;
        let loss_has_command_terms = loss
            .terms
            .iter()
            .any(|t| matches!(t.quantity, crate::grad::loss::Quantity::ControlCost));

        let command_floats = u64::from(options.horizon) * u64::from(h.n_commands);
        let batch = Batch::allocate_for_adjoint(gpu.clone(), compiled, chunking, command_floats);
        let alloc = |width: u64, label: &str, one: Option<&[f32]>| {
            PerInstance::new(&gpu, batch.chunking(), width as usize, label, one)
        };
        let initial = alloc(
            floats[1],
            "initial state",
            Some(&batch.compiled().initial_state),
        );
        let command_grads = alloc(
            if options.command_gradients {
                command_floats
            } else {
                0
            },
            "command gradients",
            None,
        );
        let adjoint = alloc(floats[6], "adjoint", None);
        let checkpoints = alloc(floats[7], "checkpoints", None);
        let segment = alloc(floats[8], "segment", None);
        let loss_values = alloc(floats[9], "loss", None);
        let loss_last_step = alloc(floats[10], "loss last step", Some(&[EVERY_LOSS_STEP]));
        let tape = alloc(floats[11], "solver tape", None);
        let plan = TapePlan {
            window: tape_window.max(1),
            width: floats[11] as u32,
            recorded: u32::from(solver_tape != SolverTape::Recomputed),
            pad: 0,
        };
        let tape_plan = gpu
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("tape plan"),
                contents: bytemuck::bytes_of(&plan),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let loss_buf = gpu
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("loss terms"),
                contents: bytemuck::cast_slice(&packed_loss),
                usage: wgpu::BufferUsages::STORAGE,
            });

        let inputs = ChunkInputs {
            batch: &batch,
            step_forward: &step_forward,
            step_forward_taped: step_forward_taped.as_ref(),
            step_adjoint: &step_adjoint,
            loss_forward: &loss_forward,
            loss_adjoint: &loss_adjoint,
            loss_command_adjoint: &loss_command_adjoint,
            loss_buf: &loss_buf,
            adjoint: &adjoint,
            loss_values: &loss_values,
            loss_last_step: &loss_last_step,
            tape: &tape,
            tape_plan: &tape_plan,
        };
        let chunks = (0..batch.n_chunks())
            .map(|c| {
                // One header per step: command_base_step = t, loss_step = t + 1.
                let sequence = header_sequence(batch.chunk_header(c), &options, n_loss_terms);
                inputs.chunk_buffers(c, &sequence)
            })
            .collect();
        Ok(Rollout {
            model: model.clone(),
            options,
            batch,
            initial,
            command_grads,
            adjoint,
            checkpoints,
            segment,
            loss: loss_values,
            loss_last_step,
            tape,
            tape_plan,
            solver_tape,
            chunks,
            step_forward,
            step_forward_taped,
            step_adjoint,
            loss_forward,
            loss_adjoint,
            loss_command_adjoint,
            loss_has_command_terms,
            loss_buf,
            hook: None,
            forward_done: false,
            interval,
        })
    }

    /// Installs work to run around every step (replacing any earlier hook).
    pub fn set_hook(&mut self, hook: Box<dyn StepHook>) {
        self.forward_done = false;
        self.hook = Some(hook);
    }

    /// The packed model buffer shared by all chunks.
    pub fn model_buffer(&self) -> &wgpu::Buffer {
        self.batch.model_buffer()
    }

    /// How the model buffer is bound (every pipeline binding it is built for this).
    pub fn model_binding(&self) -> ModelBinding {
        self.batch.model_binding()
    }

    /// The buffers of every chunk.
    pub fn chunk_views(&self) -> Vec<ChunkView<'_>> {
        self.batch
            .lens()
            .iter()
            .enumerate()
            .map(|(c, &len)| ChunkView {
                len,
                header: &self.chunks[c].header,
                state: self.batch.state.buffer(c),
                params: self.batch.params.buffer(c),
                commands: self.batch.commands.buffer(c),
                adjoint: self.adjoint.buffer(c),
            })
            .collect()
    }

    /// The compiled model.
    pub fn compiled(&self) -> &Compiled {
        self.batch.compiled()
    }

    /// The compiled model, shared: pass it to other rollouts or simulators of the same model.
    pub fn compiled_shared(&self) -> Arc<Compiled> {
        self.batch.compiled().clone()
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Number of instances.
    pub fn n_instances(&self) -> usize {
        self.batch.n_instances()
    }

    /// The options.
    pub fn options(&self) -> &RolloutOptions {
        &self.options
    }

    /// The checkpoint interval in use.
    pub fn checkpoint_interval(&self) -> u32 {
        self.interval
    }

    /// Where the backward pass gets the solver's sweeps from.
    pub fn solver_tape(&self) -> SolverTape {
        self.solver_tape
    }

    /// Device memory held in buffers, in bytes: every buffer of the rollout (not the
    /// pipelines). It is [`estimate_memory`]'s total plus the loss terms' buffer.
    pub fn device_bytes(&self) -> u64 {
        let per_instance: u64 = [
            &self.batch.state,
            &self.initial,
            &self.batch.params,
            &self.batch.commands,
            &self.command_grads,
            &self.batch.rows,
            &self.adjoint,
            &self.checkpoints,
            &self.segment,
            &self.loss,
            &self.loss_last_step,
            &self.tape,
        ]
        .iter()
        .map(|b| b.bytes())
        .sum();
        let chunks: u64 = self
            .chunks
            .iter()
            .map(|c| c.header.size() + c.header_sequence.size())
            .sum();
        per_instance
            + chunks
            + self.batch.model_buffer().size()
            + self.loss_buf.size()
            + self.tape_plan.size()
    }

    /// Sets every instance's initial raw state (instance-major, `state_len` each).
    pub fn set_initial_state(&mut self, state: &[f32]) -> Result<()> {
        self.forward_done = false;
        self.initial.write(self.batch.gpu(), state, "initial state")
    }

    /// Sets, per instance, the last loss step whose terms count (`None`: every step, the
    /// default): instance `i` is paid for loss steps `1..=last[i]` (the states after steps
    /// `0..last[i]`) and nothing after, in the loss and in the adjoint alike. For a robot whose
    /// episode ends at the state after step `t` (a termination), `t`: its gradient then stops
    /// where its sum stops. It stays until set again; the loss [`Rollout::forward`] returns is
    /// that of the steps paid when it ran, and [`Rollout::backward_from`] follows the steps
    /// paid when it runs (a caller that learns the terminations from the forward pass sets
    /// them in between).
    pub fn set_loss_last_steps(&mut self, last: Option<&[u32]>) -> Result<()> {
        let n = self.n_instances();
        let values: Vec<f32> = match last {
            None => vec![EVERY_LOSS_STEP; n],
            Some(last) => {
                if let Some(&big) = last.iter().find(|&&t| t >= 1 << 24) {
                    return Err(Error::InvalidInput(format!(
                        "loss last step {big}: steps from 2^24 on are not exact in f32"
                    )));
                }
                last.iter().map(|&t| t as f32).collect()
            }
        };
        self.loss_last_step
            .write(self.batch.gpu(), &values, "loss last steps")
    }

    /// Sets every instance's command sequence: instance-major, `horizon * actuators` each.
    pub fn set_commands(&mut self, commands: &[f32]) -> Result<()> {
        self.forward_done = false;
        self.batch
            .commands
            .write(self.batch.gpu(), commands, "commands")
    }

    /// Sets every instance's parameters (layout of [`Compiled::param_slots`]).
    pub fn set_params(&mut self, params: &[f32]) -> Result<()> {
        self.forward_done = false;
        self.batch.params.write(self.batch.gpu(), params, "params")
    }

    /// Every instance's parameters.
    pub fn params(&self) -> Result<Vec<f32>> {
        self.batch.params.read(self.batch.gpu())
    }

    /// The final raw states after [`Rollout::forward`] (instance-major, `state_len` each:
    /// the world, the bodies, then the solver's warm-start impulses).
    pub fn final_state_raw(&self) -> Result<Vec<f32>> {
        self.batch.state.read(self.batch.gpu())
    }

    /// The final body states after [`Rollout::forward`], instance-major
    /// (`n_instances * bodies`), in model order.
    pub fn final_body_states(&self) -> Result<Vec<BodyState>> {
        Ok(self.bodies_from_raw(&self.final_state_raw()?))
    }

    /// The model's bodies of instance-major raw states.
    fn bodies_from_raw(&self, raw: &[f32]) -> Vec<BodyState> {
        let state_len = self.batch.compiled().header.state_len as usize;
        bodies_from_raw(&self.model, state_len, raw)
    }

    /// Bytes of one state of chunk `c` on the device, padding included: the checkpoints and
    /// the segment hold their states one after another, each laid out as the state buffer.
    fn state_bytes(&self, c: usize) -> u64 {
        u64::from(self.batch.compiled().header.state_len)
            * self.batch.state.padded_len(c) as u64
            * 4
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
        self.batch
            .dispatch(&mut pass, self.chunks.iter().map(group));
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
        for c in 0..self.batch.n_chunks() {
            let bytes = self.state_bytes(c);
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
        self.batch
            .gpu()
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
        self.run_forward(None, progress).map(|(loss, _, _)| loss)
    }

    /// Runs the rollout forward like [`Rollout::forward`] and returns the body states of every
    /// instance (instance-major, `n_instances * bodies`, model order) after every `every`
    /// steps, the initial state first. One submission per recorded step: meant for looking at a
    /// rollout, not for speed.
    pub fn forward_recording(&mut self, every: u32) -> Result<Vec<Vec<BodyState>>> {
        let frames = self.forward_recording_raw(every)?;
        Ok(frames.iter().map(|raw| self.bodies_from_raw(raw)).collect())
    }

    /// [`Rollout::forward_recording`] as the raw state arrays (instance-major, `state_len`
    /// floats per instance, as [`Rollout::set_initial_state`] takes them), for callers that
    /// restart from a recorded state.
    pub fn forward_recording_raw(&mut self, every: u32) -> Result<Vec<Vec<f32>>> {
        let (_, frames, _) = self.run_forward(Some(every.max(1)), &mut |_, _| {})?;
        Ok(frames)
    }

    /// [`Rollout::forward_recording_raw`] and, beside every recorded state, each instance's loss
    /// summed up to it (zeros beside the initial state): the GPU's own per-step loss, control
    /// costs included, by differences, and any prefix of the rollout's loss as the kernel sums
    /// it.
    pub fn forward_recording_losses(&mut self, every: u32) -> Result<(Recorded, Recorded)> {
        let (_, frames, losses) = self.run_forward(Some(every.max(1)), &mut |_, _| {})?;
        Ok((frames, losses))
    }

    fn run_forward(
        &mut self,
        record_every: Option<u32>,
        progress: &mut dyn FnMut(u32, u32),
    ) -> Result<(Vec<f32>, Recorded, Recorded)> {
        let horizon = self.options.horizon;
        let k = self.interval;
        let mut encoder = self.new_encoder();
        self.encode_state_copy(&mut encoder, &self.initial, 0, &self.batch.state, 0);
        self.encode_state_copy(&mut encoder, &self.batch.state, 0, &self.checkpoints, 0);
        for c in 0..self.chunks.len() {
            encoder.clear_buffer(self.loss.buffer(c), 0, None);
        }
        let mut frames = Vec::new();
        let mut losses = Vec::new();
        let mut pending = 0;
        if record_every.is_some() {
            self.batch.gpu().queue.submit([encoder.finish()]);
            frames.push(self.batch.state.read(self.batch.gpu())?);
            losses.push(vec![0.0; self.n_instances()]);
            encoder = self.new_encoder();
        }
        for t in 0..horizon {
            if let Some(hook) = &self.hook {
                self.encode_header(&mut encoder, t);
                hook.before_step(&mut encoder, t);
            }
            self.encode_forward_step(&mut encoder, t, self.solver_tape == SolverTape::Forward);
            self.encode_dispatch(&mut encoder, t, &self.loss_forward, |c| &c.loss_forward);
            let done = t + 1;
            // Checkpoint c holds the state after c * K steps; the last slot the final state.
            if done % k == 0 || done == horizon {
                self.encode_state_copy(
                    &mut encoder,
                    &self.batch.state,
                    0,
                    &self.checkpoints,
                    u64::from(done.div_ceil(k)),
                );
            }
            let record = record_every.is_some_and(|e| done % e == 0 || done == horizon);
            if done % k == 0 || done == horizon || record {
                self.batch.gpu().queue.submit([encoder.finish()]);
                pending += 1;
                // Waiting after every submission would leave the device idle while the next
                // one is encoded; wait only to read, to report progress now and then, and at
                // the end.
                if record || done == horizon || pending >= MAX_PENDING_SUBMISSIONS {
                    buffers::wait(self.batch.gpu())?;
                    pending = 0;
                    progress(done, horizon);
                }
                if record {
                    frames.push(self.batch.state.read(self.batch.gpu())?);
                    losses.push(self.loss.read(self.batch.gpu())?);
                }
                encoder = self.new_encoder();
            }
        }
        self.forward_done = true;
        Ok((self.loss.read(self.batch.gpu())?, frames, losses))
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
        self.seed_adjoint(final_state_seed)?;
        let horizon = self.options.horizon;
        let k = self.interval;
        let mut done = 0;
        let mut pending = 0;
        for seg in (0..horizon.div_ceil(k)).rev() {
            let t0 = seg * k;
            let t1 = (t0 + k).min(horizon);
            let mut encoder = self.new_encoder();
            self.encode_segment_recompute(&mut encoder, seg, t0, t1);
            for t in (t0..t1).rev() {
                self.encode_step_backward(&mut encoder, t, t0);
            }
            self.batch.gpu().queue.submit([encoder.finish()]);
            pending += 1;
            done += t1 - t0;
            if seg == 0 || pending >= MAX_PENDING_SUBMISSIONS {
                buffers::wait(self.batch.gpu())?;
                pending = 0;
                progress(done, horizon);
            }
        }
        self.read_gradients()
    }

    /// Zeroes the adjoint buffer and places `final_state_seed` (when given) in its state
    /// region.
    fn seed_adjoint(&self, final_state_seed: Option<&[f32]>) -> Result<()> {
        let h = &self.batch.compiled().header;
        let state_len = h.state_len as usize;
        let adj_len = h.adj_len as usize;
        let n = self.n_instances();
        let mut seed = vec![0.0f32; adj_len * n];
        if let Some(s) = final_state_seed {
            if s.len() != state_len * n {
                return Err(Error::InvalidInput(format!(
                    "final state seed: expected {} values, got {}",
                    state_len * n,
                    s.len()
                )));
            }
            for i in 0..n {
                seed[i * adj_len..i * adj_len + state_len]
                    .copy_from_slice(&s[i * state_len..(i + 1) * state_len]);
            }
        }
        self.adjoint
            .write(self.batch.gpu(), &seed, "final state seed")
    }

    /// Encodes step `t` forward, recording its solver tape when `taped`.
    fn encode_forward_step(&self, encoder: &mut wgpu::CommandEncoder, t: u32, taped: bool) {
        match (&self.step_forward_taped, taped) {
            (Some(pipeline), true) => self.encode_dispatch(encoder, t, pipeline, |c| {
                c.forward_taped
                    .as_ref()
                    .expect("a taped rollout has taped bind groups")
            }),
            _ => self.encode_dispatch(encoder, t, &self.step_forward, |c| &c.forward),
        }
    }

    /// Encodes the recomputation of segment `seg` (steps `t0..t1`) from its checkpoint: the
    /// segment buffer then holds the states after `0..=t1 - t0` of its steps; its last one is
    /// the next checkpoint. A rollout taping its segments also runs the segment's last step
    /// (whose result is that checkpoint) to record its tape.
    fn encode_segment_recompute(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        seg: u32,
        t0: u32,
        t1: u32,
    ) {
        let state = &self.batch.state;
        self.encode_state_copy(encoder, &self.checkpoints, u64::from(seg), state, 0);
        self.encode_state_copy(encoder, state, 0, &self.segment, 0);
        let taped = self.solver_tape == SolverTape::Segments;
        for t in t0..if taped { t1 } else { t1 - 1 } {
            self.encode_forward_step(encoder, t, taped);
            if t + 1 < t1 {
                self.encode_state_copy(encoder, state, 0, &self.segment, u64::from(t - t0 + 1));
            }
        }
        self.encode_state_copy(
            encoder,
            &self.checkpoints,
            u64::from(seg + 1),
            &self.segment,
            u64::from(t1 - t0),
        );
    }

    /// Encodes step `t`'s reverse (`t0`: the first step of its segment): the loss gradient of
    /// the state after the step, the step's adjoint, the hook, the truncation cut and the copy
    /// of the command gradient.
    fn encode_step_backward(&self, encoder: &mut wgpu::CommandEncoder, t: u32, t0: u32) {
        let state = &self.batch.state;
        self.encode_state_copy(encoder, &self.segment, u64::from(t - t0 + 1), state, 0);
        self.encode_dispatch(encoder, t, &self.loss_adjoint, |c| &c.loss_adjoint);
        self.encode_state_copy(encoder, &self.segment, u64::from(t - t0), state, 0);
        self.encode_dispatch(encoder, t, &self.step_adjoint, |c| &c.adjoint);
        if self.loss_has_command_terms {
            // The step adjoint starts the commands' adjoint afresh: a control cost's gradient
            // is added after it, before a policy reads it.
            self.encode_dispatch(encoder, t, &self.loss_command_adjoint, |c| {
                &c.loss_command_adjoint
            });
        }
        if let Some(hook) = &self.hook {
            hook.after_step_adjoint(encoder, t);
        }
        let h = &self.batch.compiled().header;
        if let Some(window) = self.options.truncation
            && t > 0
            && t.is_multiple_of(window)
        {
            // What flows on to step t - 1 is the state adjoint (bodies and warm-start
            // impulses): one range of each block of the instance-blocked adjoint buffer.
            for c in 0..self.batch.n_chunks() {
                for (at, bytes) in
                    self.adjoint
                        .block_ranges(c, h.adj_state as usize, h.state_len as usize)
                {
                    encoder.clear_buffer(self.adjoint.buffer(c), at, Some(bytes));
                }
            }
        }
        if self.options.command_gradients {
            let a = h.n_commands as usize;
            for c in 0..self.batch.n_chunks() {
                let from = self.adjoint.block_ranges(c, h.adj_commands as usize, a);
                let to = self.command_grads.block_ranges(c, t as usize * a, a);
                for ((src, bytes), (dst, _)) in from.zip(to) {
                    encoder.copy_buffer_to_buffer(
                        self.adjoint.buffer(c),
                        src,
                        self.command_grads.buffer(c),
                        dst,
                        bytes,
                    );
                }
            }
        }
    }

    /// Reads the gradients back after the reverse sweep; instances whose adjoint became
    /// non-finite are an error naming them.
    fn read_gradients(&self) -> Result<Gradients> {
        let gpu = self.batch.gpu();
        let adjoint = self.adjoint.read(gpu)?;
        let h = &self.batch.compiled().header;
        let state_len = h.state_len as usize;
        let adj_len = h.adj_len as usize;
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
            Some(self.command_grads.read(gpu)?)
        } else {
            None
        };
        Ok(Gradients {
            loss: self.loss.read(gpu)?,
            initial_state,
            params,
            commands,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tape_holds_the_horizon_or_a_segment_and_only_where_it_fits() {
        let model = crate::io::models::builtin("quadruped").unwrap();
        let c = Compiled::new(&model);
        let step_bytes = tape_step_floats(&c.header) * 4;
        assert_eq!(
            step_bytes,
            4 * u64::from(c.header.sweeps * c.header.n_rows + 6 * c.header.n_bodies)
        );
        let unlimited = (u64::MAX, None);
        let mut options = RolloutOptions::new(20);
        options.checkpoint_every = Some(1);
        assert_eq!(
            solver_tape(&c, &options, 3, unlimited, 0),
            (SolverTape::Forward, 20)
        );
        options.checkpoint_every = Some(6);
        assert_eq!(
            solver_tape(&c, &options, 3, unlimited, 0),
            (SolverTape::Segments, 6)
        );
        // Three instances of six steps: exactly at the budget fits, a byte less does not.
        options.tape_memory = Some(3 * 6 * step_bytes);
        assert_eq!(
            solver_tape(&c, &options, 3, unlimited, 0).0,
            SolverTape::Segments
        );
        options.tape_memory = Some(3 * 6 * step_bytes - 1);
        assert_eq!(
            solver_tape(&c, &options, 3, unlimited, 0).0,
            SolverTape::Recomputed
        );
        options.tape_memory = None;
        // One instance's tape must fit a storage binding.
        assert_eq!(
            solver_tape(&c, &options, 3, (6 * step_bytes - 1, None), 0).0,
            SolverTape::Recomputed
        );
        // The rest of the rollout and the tape must fit the memory limit and the device's budget.
        assert_eq!(
            solver_tape(
                &c,
                &options,
                3,
                (u64::MAX, Some(3 * 6 * step_bytes + 99)),
                100
            )
            .0,
            SolverTape::Recomputed
        );
        options.memory_limit = Some(3 * 6 * step_bytes + 100);
        assert_eq!(
            solver_tape(&c, &options, 3, unlimited, 100).0,
            SolverTape::Segments
        );
        assert_eq!(
            solver_tape(&c, &options, 3, unlimited, 101).0,
            SolverTape::Recomputed
        );
    }
}
