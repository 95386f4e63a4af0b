//! Training a policy by gradient descent through the simulation: every iteration runs a batch
//! of (randomised) robots forward with the policy in the loop, back through time with the
//! adjoint, and applies one optimiser update on the GPU.
//!
//! Checkpoints hold the policy parameters, the optimiser moments and the iteration count; the
//! batch's randomisation is keyed by (seed, instance, iteration), so a resumed run continues
//! bit-for-bit like an uninterrupted one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::engine::buffers;
use crate::engine::gpu::Gpu;
use crate::engine::layout::{BODY_STATE_LEN, Compiled, ParamSlot};
use crate::engine::sim::BodyState;
use crate::error::{Error, Result};
use crate::grad::rollout::{Rollout, RolloutOptions};
use crate::learn::optim::GpuOptimizer;
use crate::learn::policy::PolicyLayout;
use crate::learn::policy::gpu::PolicyKernels;
use crate::learn::tasks::Task;

/// What one iteration measured.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct IterationStats {
    /// 1-based iteration number.
    pub iteration: u32,
    /// Mean loss over the batch (before this iteration's update).
    pub loss: f32,
    /// Global norm of the mean gradient, before clipping.
    pub grad_norm: f32,
    /// Learning rate used.
    pub learning_rate: f32,
    /// Wall time of the iteration.
    pub seconds: f32,
}

/// Training options beyond the task's defaults.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Batch size (robots per iteration).
    pub instances: usize,
    /// Seed of the initial parameters and of the randomisation.
    pub seed: u64,
    /// Most instances per GPU chunk (`None`: as many as the device's binding limit allows).
    pub max_chunk: Option<usize>,
}

/// A policy being trained on a task.
pub struct Trainer {
    gpu: Arc<Gpu>,
    task: Task,
    layout: PolicyLayout,
    compiled: Arc<Compiled>,
    rollout: Rollout,
    params: wgpu::Buffer,
    grads: wgpu::Buffer,
    optimizer: GpuOptimizer,
    options: TrainOptions,
    iteration: u32,
    keep_final_state: bool,
    final_body_states: Vec<BodyState>,
}

/// The metadata of a checkpoint, stored in `checkpoint.bin` before the numbers.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct CheckpointMeta {
    task: String,
    iteration: u32,
    seed: u64,
    instances: usize,
    n_params: usize,
    optimizer_step: u32,
    /// FNV-1a hash of the numbers, to detect a torn or foreign file.
    checksum: u64,
}

/// The first bytes of a checkpoint file.
pub const CHECKPOINT_MAGIC: &[u8; 8] = b"BDCKPT01";

/// The metadata file of the earlier two-file layout, still read by [`Trainer::load`].
const LEGACY_CHECKPOINT_JSON: &str = "checkpoint.json";

/// What a checkpoint holds, as [`Trainer::checkpoint_info`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// The task trained.
    pub task: String,
    /// Iterations done.
    pub iteration: u32,
    /// The run's seed.
    pub seed: u64,
    /// Robots per iteration.
    pub instances: usize,
}

/// Reads and verifies the checkpoint of `dir`: its metadata and its numbers (parameters, then
/// the optimiser's two moments).
fn read_checkpoint(dir: &Path) -> Result<(CheckpointMeta, Vec<f32>)> {
    let bin_path = Trainer::checkpoint_path(dir);
    let json_path = dir.join(LEGACY_CHECKPOINT_JSON);
    let parse_legacy = || -> Result<CheckpointMeta> {
        let text = std::fs::read_to_string(&json_path).map_err(|e| io_err(&json_path, e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::InvalidInput(format!(
                "{}: not a backdrive checkpoint: {e}",
                json_path.display()
            ))
        })
    };
    let bytes = match std::fs::read(&bin_path) {
        Ok(bytes) => bytes,
        // An earlier layout's metadata without its numbers: report what is wrong with it first.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && json_path.exists() => {
            parse_legacy()?;
            return Err(io_err(&bin_path, e));
        }
        Err(e) => return Err(io_err(&bin_path, e)),
    };
    let damaged = |why: &str| {
        Error::InvalidInput(format!(
            "{}: damaged or not a backdrive checkpoint ({why})",
            bin_path.display()
        ))
    };
    let (meta, numbers, meta_path) = if let Some(rest) = bytes.strip_prefix(CHECKPOINT_MAGIC) {
        if rest.len() < 4 {
            return Err(damaged("cut short"));
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let Some(json) = rest.get(4..4 + len) else {
            return Err(damaged("cut short"));
        };
        let meta: CheckpointMeta =
            serde_json::from_slice(json).map_err(|e| damaged(&format!("metadata: {e}")))?;
        (meta, &rest[4 + len..], bin_path.clone())
    } else {
        (parse_legacy()?, &bytes[..], json_path.clone())
    };
    if numbers.len() != 12 * meta.n_params || fnv1a(numbers) != meta.checksum {
        return Err(Error::InvalidInput(format!(
            "{}: damaged or does not belong to {}",
            bin_path.display(),
            meta_path.display()
        )));
    }
    let floats = numbers
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((meta, floats))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Trainer {
    /// A fresh policy (initialised from `options.seed`) for `task`.
    pub fn new(gpu: Arc<Gpu>, task: Task, options: TrainOptions) -> Result<Trainer> {
        if options.instances == 0 {
            return Err(Error::InvalidInput(
                "the number of instances must be at least 1".into(),
            ));
        }
        let layout = PolicyLayout::new(&task.policy, &task.model)?;
        // Compiled once for the whole run: the rollout and the randomisation share it.
        let compiled = Arc::new(Compiled::new(&task.model));
        let mut rollout_options = RolloutOptions::new(task.horizon);
        rollout_options.gradient_decay = task.gradient_decay;
        rollout_options.truncation = task.truncation;
        rollout_options.command_gradients = false;
        rollout_options.param_gradients = false;
        rollout_options.max_chunk = options.max_chunk;
        let mut rollout = Rollout::with_compiled(
            gpu.clone(),
            &task.model,
            compiled.clone(),
            options.instances,
            &task.loss,
            rollout_options,
        )?;
        let kernels =
            PolicyKernels::new(&gpu, &layout, &rollout, &layout.init_params(options.seed))?;
        let params = kernels.params_buffer().clone();
        let grads = kernels.grads_buffer().clone();
        rollout.set_hook(Box::new(kernels));
        let optimizer = GpuOptimizer::new(
            gpu.clone(),
            task.optimizer,
            &params,
            &grads,
            layout.n_params,
        )?;
        Ok(Trainer {
            gpu,
            task,
            layout,
            compiled,
            rollout,
            params,
            grads,
            optimizer,
            options,
            iteration: 0,
            keep_final_state: false,
            final_body_states: Vec::new(),
        })
    }

    /// The task.
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// Whether [`Trainer::step`] reads back the batch's final states (see
    /// [`Trainer::final_body_states`]); off by default.
    pub fn keep_final_state(&mut self, keep: bool) {
        self.keep_final_state = keep;
    }

    /// The final body states of the batch (instance-major, `instances * bodies`, model order)
    /// of the last [`Trainer::step`], i.e. of the policy before that step's update; empty
    /// unless [`Trainer::keep_final_state`].
    pub fn final_body_states(&self) -> &[BodyState] {
        &self.final_body_states
    }

    /// The compiled layout of the task's model, built once for the run.
    pub fn compiled(&self) -> &Arc<Compiled> {
        &self.compiled
    }

    /// Robots per iteration.
    pub fn instances(&self) -> usize {
        self.options.instances
    }

    /// The policy layout.
    pub fn layout(&self) -> &PolicyLayout {
        &self.layout
    }

    /// Iterations done.
    pub fn iteration(&self) -> u32 {
        self.iteration
    }

    /// The current policy parameters.
    pub fn params(&self) -> Result<Vec<f32>> {
        let mut p = buffers::read_buffer(&self.gpu, &self.params)?;
        p.truncate(self.layout.n_params);
        Ok(p)
    }

    /// Replaces the policy parameters (for search methods that propose parameter vectors; the
    /// optimiser's moments and the iteration count are left alone).
    pub fn set_params(&mut self, theta: &[f32]) -> Result<()> {
        if theta.len() != self.layout.n_params {
            return Err(Error::InvalidInput(format!(
                "{} policy parameters given, the policy has {}",
                theta.len(),
                self.layout.n_params
            )));
        }
        self.gpu
            .queue
            .write_buffer(&self.params, 0, bytemuck::cast_slice(theta));
        Ok(())
    }

    /// The mean loss and mean gradient of the policy parameters on this iteration's batch,
    /// without updating anything (the gradient is cleared again).
    pub fn gradient(&mut self) -> Result<(f32, Vec<f32>)> {
        self.randomize()?;
        let losses = self.rollout.forward()?;
        self.rollout.backward()?;
        let n = self.options.instances as f32;
        let mut g = buffers::read_buffer(&self.gpu, &self.grads)?;
        g.truncate(self.layout.n_params);
        g.iter_mut().for_each(|v| *v /= n);
        self.gpu.queue.write_buffer(
            &self.grads,
            0,
            bytemuck::cast_slice(&vec![0.0f32; self.layout.n_params]),
        );
        let loss = losses.iter().map(|l| f64::from(*l)).sum::<f64>() / f64::from(n);
        Ok((loss as f32, g))
    }

    /// Physical parameters of instance `i` at the current iteration (with the anchors of the
    /// joints to the world moved by [`Trainer::instance_displacement`]).
    pub fn instance_params(&self, i: usize) -> Vec<f32> {
        let mut p = self.task.randomization.apply(
            &self.compiled,
            self.options.seed,
            i as u64,
            u64::from(self.iteration),
        );
        if self.task.randomization.shift.is_some() {
            let d = self.instance_displacement(i);
            for (k, slot) in self.compiled.param_slots.iter().enumerate() {
                if let ParamSlot::AnchorParent(j, c) = *slot
                    && self.task.model.joints[j].parent.is_none()
                {
                    p[k] += d[c];
                }
            }
        }
        p
    }

    /// How far instance `i`'s robot is moved at the current iteration (zero unless the task's
    /// randomisation has a [`crate::learn::tasks::Randomization::shift`]).
    pub fn instance_displacement(&self, i: usize) -> [f32; 3] {
        self.task
            .randomization
            .displacement(self.options.seed, i as u64, u64::from(self.iteration))
    }

    fn randomize(&mut self) -> Result<()> {
        let n = self.options.instances;
        let mut params = Vec::with_capacity(n * self.compiled.default_params.len());
        for i in 0..n {
            params.extend(self.instance_params(i));
        }
        self.rollout.set_params(&params)?;
        if self.task.randomization.shift.is_some() {
            let one = &self.compiled.initial_state;
            let mut states = Vec::with_capacity(n * one.len());
            for i in 0..n {
                let d = self.instance_displacement(i);
                let mut s = one.clone();
                // Slot 0 is the world, bodies follow (position first in each record), then
                // the warm-start impulses, which stay as they are.
                for b in 1..=self.task.model.bodies.len() {
                    for (c, dc) in d.iter().enumerate() {
                        s[b * BODY_STATE_LEN + c] += dc;
                    }
                }
                states.extend(s);
            }
            self.rollout.set_initial_state(&states)?;
        }
        Ok(())
    }

    /// Runs one iteration: randomise the batch, roll out, back-propagate, update.
    pub fn step(&mut self) -> Result<IterationStats> {
        let started = Instant::now();
        let n = self.options.instances;
        self.randomize()?;
        let losses = self.rollout.forward()?;
        if self.keep_final_state {
            self.final_body_states = self.rollout.final_body_states()?;
        }
        self.rollout.backward()?;
        let learning_rate = self.optimizer.config().rate_at(self.optimizer.step + 1);
        let grad_norm = self.optimizer.update(1.0 / n as f32)?;
        if !grad_norm.is_finite() {
            return Err(Error::NonFiniteGradient(vec![]));
        }
        self.iteration += 1;
        let loss = losses.iter().map(|l| f64::from(*l)).sum::<f64>() / n as f64;
        Ok(IterationStats {
            iteration: self.iteration,
            loss: loss as f32,
            grad_norm,
            learning_rate,
            seconds: started.elapsed().as_secs_f32(),
        })
    }

    /// Body states of the batch after every `every` steps of an episode with the current
    /// policy (per frame instance-major, `instances * bodies`, model order; the initial state
    /// first).
    pub fn record(&mut self, every: u32) -> Result<Vec<Vec<BodyState>>> {
        self.randomize()?;
        self.rollout.forward_recording(every)
    }

    /// Mean loss of the current policy over the batch of the current iteration, without
    /// updating anything.
    pub fn evaluate(&mut self) -> Result<f32> {
        self.randomize()?;
        let losses = self.rollout.forward()?;
        Ok((losses.iter().map(|l| f64::from(*l)).sum::<f64>() / losses.len() as f64) as f32)
    }

    /// Saves parameters, optimiser moments and the iteration count into `dir` (created if
    /// needed) as one file, `checkpoint.bin`, written atomically: a crash at any point of the
    /// save leaves either the previous checkpoint or the new one, whole. The file is
    /// [`CHECKPOINT_MAGIC`], the length of the JSON metadata (u32, little-endian), the metadata
    /// (task, iteration, seed, batch, a checksum of the numbers) and the numbers (f32,
    /// little-endian). A `checkpoint.json` of the earlier two-file layout is removed once the
    /// new file is in place.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let theta = self.params()?;
        let (m, v) = self.optimizer.moments()?;
        let mut numbers = Vec::with_capacity(12 * theta.len());
        for x in theta.iter().chain(&m).chain(&v) {
            numbers.extend_from_slice(&x.to_le_bytes());
        }
        let meta = CheckpointMeta {
            task: self.task.name.clone(),
            iteration: self.iteration,
            seed: self.options.seed,
            instances: self.options.instances,
            n_params: self.layout.n_params,
            optimizer_step: self.optimizer.step,
            checksum: fnv1a(&numbers),
        };
        let json =
            serde_json::to_string_pretty(&meta).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let mut file = Vec::with_capacity(12 + json.len() + numbers.len());
        file.extend_from_slice(CHECKPOINT_MAGIC);
        file.extend_from_slice(&(json.len() as u32).to_le_bytes());
        file.extend_from_slice(json.as_bytes());
        file.extend_from_slice(&numbers);
        crate::io::files::write_atomic(&Self::checkpoint_path(dir), &file)?;
        let legacy = dir.join(LEGACY_CHECKPOINT_JSON);
        match std::fs::remove_file(&legacy) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&legacy, e)),
            _ => Ok(()),
        }
    }

    /// What the checkpoint in `dir` holds, without restoring it: the task, the iteration, the
    /// seed and the batch size. Fails with the path when there is none or it is damaged.
    pub fn checkpoint_info(dir: &Path) -> Result<CheckpointInfo> {
        let (meta, _) = read_checkpoint(dir)?;
        Ok(CheckpointInfo {
            task: meta.task,
            iteration: meta.iteration,
            seed: meta.seed,
            instances: meta.instances,
        })
    }

    /// Whether `dir` holds a checkpoint (in either layout), whole or not.
    pub fn has_checkpoint(dir: &Path) -> bool {
        Self::checkpoint_path(dir).exists() || dir.join(LEGACY_CHECKPOINT_JSON).exists()
    }

    /// Restores a checkpoint saved by [`Trainer::save`] (or by the earlier two-file layout) for
    /// the same task; the trainer's seed becomes the checkpoint's.
    pub fn load(&mut self, dir: &Path) -> Result<()> {
        let (meta, floats) = read_checkpoint(dir)?;
        let path = Self::checkpoint_path(dir);
        if meta.task != self.task.name || meta.n_params != self.layout.n_params {
            return Err(Error::InvalidInput(format!(
                "{}: checkpoint of task '{}' with {} parameters, but this is task '{}' with {}",
                path.display(),
                meta.task,
                meta.n_params,
                self.task.name,
                self.layout.n_params
            )));
        }
        if meta.instances != self.options.instances {
            return Err(Error::InvalidInput(format!(
                "{}: checkpoint trained {} instances, this run has {} (a resumed run must keep its batch)",
                path.display(),
                meta.instances,
                self.options.instances
            )));
        }
        let n = meta.n_params;
        self.gpu
            .queue
            .write_buffer(&self.params, 0, bytemuck::cast_slice(&floats[..n]));
        self.optimizer
            .restore(&floats[n..2 * n], &floats[2 * n..], meta.optimizer_step);
        self.iteration = meta.iteration;
        self.options.seed = meta.seed;
        Ok(())
    }

    /// The directory's checkpoint file.
    pub fn checkpoint_path(dir: &Path) -> PathBuf {
        dir.join("checkpoint.bin")
    }
}
