//! SHAC checkpoints: every number the next window depends on, saved and restored atomically.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{RunningStats, ShacTrainer};
use crate::error::{Error, Result};

/// The metadata of a SHAC checkpoint, stored in `checkpoint.bin` before the numbers.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ShacCheckpointMeta {
    algorithm: String,
    task: String,
    iteration: u32,
    seed: u64,
    instances: usize,
    episode: u64,
    episode_step: u32,
    optimizer_step: u32,
    critic_step: u32,
    obs_count: f64,
    feature_count: f64,
    /// Length of every array of numbers, in order.
    lengths: Vec<usize>,
    /// FNV-1a hash of the numbers.
    checksum: u64,
}

/// The first bytes of a SHAC checkpoint file (format 2: the critic, its target and its Adam
/// moments are the GPU critic's f32 numbers).
pub const SHAC_CHECKPOINT_MAGIC: &[u8; 8] = b"BDSHAC02";

/// The first bytes of format 1, whose critic ran on the host in f64: refused with a clear
/// error, as its critic's numbers cannot continue bit for bit on the GPU critic.
const SHAC_CHECKPOINT_MAGIC_V1: &[u8; 8] = b"BDSHAC01";

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl ShacTrainer {
    fn numbers(&self) -> Result<Vec<Vec<f64>>> {
        let (m, v) = self.optimizer.moments()?;
        let f = |x: &[f32]| x.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();
        let (critic_m, critic_v) = self.critic.moments()?;
        Ok(vec![
            f(&self.theta),
            f(&m),
            f(&v),
            f(&self.critic.params()?),
            f(&critic_m),
            f(&critic_v),
            f(&self.critic.target_params()?),
            self.obs_stats.mean.clone(),
            self.obs_stats.var.clone(),
            self.feature_stats.mean.clone(),
            self.feature_stats.var.clone(),
            f(&self.states),
            self.episode_reward.clone(),
            self.resets.iter().map(|&r| f64::from(r)).collect(),
        ])
    }

    /// Saves everything the next window depends on into `dir/checkpoint.bin`, atomically:
    /// [`SHAC_CHECKPOINT_MAGIC`], the length of the JSON metadata (u32, little-endian), the
    /// metadata and the numbers (f64, little-endian; every f32 is exact in f64).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let arrays = self.numbers()?;
        let mut numbers = Vec::new();
        for x in arrays.iter().flatten() {
            numbers.extend_from_slice(&x.to_le_bytes());
        }
        let meta = ShacCheckpointMeta {
            algorithm: "shac".into(),
            task: self.task.name.clone(),
            iteration: self.iteration,
            seed: self.options.seed,
            instances: self.options.instances,
            episode: self.episode,
            episode_step: self.episode_step,
            optimizer_step: self.optimizer.step,
            critic_step: self.critic.updates(),
            obs_count: self.obs_stats.count,
            feature_count: self.feature_stats.count,
            lengths: arrays.iter().map(Vec::len).collect(),
            checksum: fnv1a(&numbers),
        };
        let json =
            serde_json::to_string_pretty(&meta).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let mut file = Vec::with_capacity(12 + json.len() + numbers.len());
        file.extend_from_slice(SHAC_CHECKPOINT_MAGIC);
        file.extend_from_slice(&(json.len() as u32).to_le_bytes());
        file.extend_from_slice(json.as_bytes());
        file.extend_from_slice(&numbers);
        crate::io::files::write_atomic(&Self::checkpoint_path(dir), &file)
    }

    fn read_checkpoint(dir: &Path) -> Result<(ShacCheckpointMeta, Vec<Vec<f64>>)> {
        let path = Self::checkpoint_path(dir);
        let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
        let damaged = |why: &str| {
            Error::InvalidInput(format!(
                "{}: damaged or not a backdrive actor-critic checkpoint ({why})",
                path.display()
            ))
        };
        if bytes.starts_with(SHAC_CHECKPOINT_MAGIC_V1) {
            return Err(Error::InvalidInput(format!(
                "{}: an actor-critic checkpoint of format 1 (critic on the host in f64), which this \
                 version cannot resume: its critic runs on the GPU (format 2); start a new run",
                path.display()
            )));
        }
        let rest = bytes
            .strip_prefix(SHAC_CHECKPOINT_MAGIC)
            .ok_or_else(|| damaged("no actor-critic header; is it a backpropagation run's?"))?;
        if rest.len() < 4 {
            return Err(damaged("cut short"));
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let json = rest.get(4..4 + len).ok_or_else(|| damaged("cut short"))?;
        let meta: ShacCheckpointMeta =
            serde_json::from_slice(json).map_err(|e| damaged(&format!("metadata: {e}")))?;
        let numbers = &rest[4 + len..];
        let expected: usize = meta.lengths.iter().sum::<usize>() * 8;
        if numbers.len() != expected || fnv1a(numbers) != meta.checksum {
            return Err(damaged("its numbers do not match its metadata"));
        }
        let mut floats = numbers
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")));
        let arrays = meta
            .lengths
            .iter()
            .map(|&l| floats.by_ref().take(l).collect())
            .collect();
        Ok((meta, arrays))
    }

    /// The task, iteration, seed and batch of the checkpoint in `dir`, without restoring it.
    pub fn checkpoint_info(dir: &Path) -> Result<crate::learn::train::CheckpointInfo> {
        let (meta, _) = Self::read_checkpoint(dir)?;
        Ok(crate::learn::train::CheckpointInfo {
            task: meta.task,
            iteration: meta.iteration,
            seed: meta.seed,
            instances: meta.instances,
        })
    }

    /// Restores a checkpoint saved by [`ShacTrainer::save`] for the same task and batch; the
    /// trainer's seed becomes the checkpoint's.
    pub fn load(&mut self, dir: &Path) -> Result<()> {
        let path = Self::checkpoint_path(dir);
        let (meta, arrays) = Self::read_checkpoint(dir)?;
        let current = self.numbers()?;
        let lengths: Vec<usize> = current.iter().map(Vec::len).collect();
        if meta.task != self.task.name
            || meta.instances != self.options.instances
            || meta.lengths.len() != lengths.len()
        {
            return Err(Error::InvalidInput(format!(
                "{}: checkpoint of task '{}' with {} robots, but this is task '{}' with {} (a resumed run keeps its batch)",
                path.display(),
                meta.task,
                meta.instances,
                self.task.name,
                self.options.instances
            )));
        }
        // The batch's states are empty before the first window: every other array must match.
        for (k, (&saved, &here)) in meta.lengths.iter().zip(&lengths).enumerate() {
            if k != 11 && saved != here {
                return Err(Error::InvalidInput(format!(
                    "{}: array {k} holds {saved} numbers, this task needs {here}",
                    path.display()
                )));
            }
        }
        let f = |x: &[f64]| x.iter().map(|&v| v as f32).collect::<Vec<f32>>();
        self.theta = f(&arrays[0]);
        self.gpu
            .queue
            .write_buffer(&self.params, 0, bytemuck::cast_slice(&self.theta));
        self.optimizer
            .restore(&f(&arrays[1]), &f(&arrays[2]), meta.optimizer_step);
        self.critic.restore(
            &f(&arrays[3]),
            &f(&arrays[6]),
            (&f(&arrays[4]), &f(&arrays[5])),
            meta.critic_step,
        )?;
        self.obs_stats = RunningStats {
            count: meta.obs_count,
            mean: arrays[7].clone(),
            var: arrays[8].clone(),
            // The floor is the task's setting, not the run's state.
            min_std: self.obs_stats.min_std,
        };
        self.feature_stats = RunningStats {
            count: meta.feature_count,
            mean: arrays[9].clone(),
            var: arrays[10].clone(),
            min_std: self.feature_stats.min_std,
        };
        self.states = f(&arrays[11]);
        self.episode_reward = arrays[12].clone();
        self.resets = arrays[13].iter().map(|&v| v as u32).collect();
        self.episode = meta.episode;
        self.episode_step = meta.episode_step;
        self.iteration = meta.iteration;
        self.options.seed = meta.seed;
        Ok(())
    }

    /// The directory's checkpoint file.
    pub fn checkpoint_path(dir: &Path) -> PathBuf {
        dir.join("checkpoint.bin")
    }
}
