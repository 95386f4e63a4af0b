//! Optimisers on the GPU (`shaders/optimizer.wgsl`): Adam or SGD with momentum, a learning-rate
//! schedule, global-norm clipping. The parameters, gradients and moments never leave the device
//! during training.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Serialize};
use wgpu::util::DeviceExt;

use crate::engine::buffers;
use crate::engine::gpu::Gpu;
use crate::engine::shaders;
use crate::error::Result;

/// Which update rule.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Method {
    /// Adam with the given moment decays.
    Adam {
        beta1: f32,
        beta2: f32,
        epsilon: f32,
    },
    /// Gradient descent with momentum.
    Sgd { momentum: f32 },
}

/// Learning rate over iterations.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Schedule {
    /// Constant.
    Constant,
    /// Cosine decay from the base rate to `final_fraction` of it at `iterations`.
    Cosine {
        iterations: u32,
        final_fraction: f32,
    },
}

/// An optimiser's settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    /// Update rule.
    pub method: Method,
    /// Base learning rate.
    pub learning_rate: f32,
    /// Schedule of the rate.
    pub schedule: Schedule,
    /// Clip the global gradient norm to this (the paper clipped to 1); `None` to not clip.
    pub max_norm: Option<f32>,
}

impl OptimizerConfig {
    /// Adam with the usual decays at `learning_rate`, clipping at 1.
    pub fn adam(learning_rate: f32) -> Self {
        OptimizerConfig {
            method: Method::Adam {
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
            },
            learning_rate,
            schedule: Schedule::Constant,
            max_norm: Some(1.0),
        }
    }

    /// The rate at (1-based) update `step`.
    pub fn rate_at(&self, step: u32) -> f32 {
        match self.schedule {
            Schedule::Constant => self.learning_rate,
            Schedule::Cosine {
                iterations,
                final_fraction,
            } => {
                let progress = (step.saturating_sub(1) as f32 / iterations.max(1) as f32).min(1.0);
                let cosine = 0.5 * (1.0 + (std::f32::consts::PI * progress).cos());
                self.learning_rate * (final_fraction + (1.0 - final_fraction) * cosine)
            }
        }
    }
}

/// Field order matches `struct Optimizer` in `shaders/optimizer.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct OptimizerUniform {
    n_params: u32,
    kind: u32,
    step: u32,
    pad0: u32,
    learning_rate: f32,
    beta1: f32,
    beta2: f32,
    epsilon: f32,
    grad_scale: f32,
    max_norm: f32,
    momentum: f32,
    pad1: f32,
}

/// Moments and kernels of one optimiser over one parameter buffer.
pub struct GpuOptimizer {
    gpu: Arc<Gpu>,
    config: OptimizerConfig,
    n_params: usize,
    uniform: wgpu::Buffer,
    first: wgpu::Buffer,
    second: wgpu::Buffer,
    norm: wgpu::Buffer,
    norm_pipeline: wgpu::ComputePipeline,
    update_pipeline: wgpu::ComputePipeline,
    norm_group: wgpu::BindGroup,
    update_group: wgpu::BindGroup,
    /// Updates applied so far.
    pub step: u32,
}

impl GpuOptimizer {
    /// An optimiser for `params` with gradients in `grads` (both `n_params` floats).
    pub fn new(
        gpu: Arc<Gpu>,
        config: OptimizerConfig,
        params: &wgpu::Buffer,
        grads: &wgpu::Buffer,
        n_params: usize,
    ) -> Result<Self> {
        let norm_pipeline = buffers::pipeline(&gpu, shaders::OPTIMIZER, "gradient_norm")?;
        let update_pipeline = buffers::pipeline(&gpu, shaders::OPTIMIZER, "apply_update")?;
        let storage = |label: &str, n: usize| {
            gpu.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: bytemuck::cast_slice(&vec![0.0f32; n.max(1)]),
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_DST
                        | wgpu::BufferUsages::COPY_SRC,
                })
        };
        let first = storage("first moment", n_params);
        let second = storage("second moment", n_params);
        let norm = storage("gradient norm", 1);
        let uniform = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("optimizer"),
            size: std::mem::size_of::<OptimizerUniform>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let norm_group = buffers::bind_group(
            &gpu,
            &norm_pipeline,
            &[(0, &uniform), (2, grads), (5, &norm)],
        );
        let update_group = buffers::bind_group(
            &gpu,
            &update_pipeline,
            &[
                (0, &uniform),
                (1, params),
                (2, grads),
                (3, &first),
                (4, &second),
                (5, &norm),
            ],
        );
        Ok(GpuOptimizer {
            gpu,
            config,
            n_params,
            uniform,
            first,
            second,
            norm,
            norm_pipeline,
            update_pipeline,
            norm_group,
            update_group,
            step: 0,
        })
    }

    /// The settings.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Applies one update with the gradient scaled by `grad_scale` (1 / batch for a mean), and
    /// zeroes the gradient. Returns the scaled gradient's global norm before clipping.
    pub fn update(&mut self, grad_scale: f32) -> Result<f32> {
        self.apply(grad_scale);
        Ok(buffers::read_buffer(&self.gpu, &self.norm)?[0])
    }

    /// [`GpuOptimizer::update`] without reading the norm back: the update is only queued, so a
    /// caller that does not need the norm (the critic's many minibatch steps) does not wait
    /// for the GPU.
    pub fn apply(&mut self, grad_scale: f32) {
        self.step += 1;
        let (kind, beta1, beta2, epsilon, momentum) = match self.config.method {
            Method::Adam {
                beta1,
                beta2,
                epsilon,
            } => (0, beta1, beta2, epsilon, 0.0),
            Method::Sgd { momentum } => (1, 0.0, 0.0, 0.0, momentum),
        };
        let u = OptimizerUniform {
            n_params: self.n_params as u32,
            kind,
            step: self.step,
            pad0: 0,
            learning_rate: self.config.rate_at(self.step),
            beta1,
            beta2,
            epsilon,
            grad_scale,
            max_norm: self.config.max_norm.unwrap_or(0.0),
            momentum,
            pad1: 0.0,
        };
        self.gpu
            .queue
            .write_buffer(&self.uniform, 0, bytemuck::bytes_of(&u));
        let mut encoder = self
            .gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("optimizer"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            pass.set_pipeline(&self.norm_pipeline);
            pass.set_bind_group(0, &self.norm_group, &[]);
            pass.dispatch_workgroups(1, 1, 1);
            pass.set_pipeline(&self.update_pipeline);
            pass.set_bind_group(0, &self.update_group, &[]);
            pass.dispatch_workgroups((self.n_params as u32).div_ceil(64), 1, 1);
        }
        self.gpu.queue.submit([encoder.finish()]);
    }

    /// The two moment buffers' contents (for checkpoints).
    pub fn moments(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        let mut m = buffers::read_buffer(&self.gpu, &self.first)?;
        let mut v = buffers::read_buffer(&self.gpu, &self.second)?;
        m.truncate(self.n_params);
        v.truncate(self.n_params);
        Ok((m, v))
    }

    /// Restores moments and the update count (from a checkpoint).
    pub fn restore(&mut self, first: &[f32], second: &[f32], step: u32) {
        self.gpu
            .queue
            .write_buffer(&self.first, 0, bytemuck::cast_slice(first));
        self.gpu
            .queue
            .write_buffer(&self.second, 0, bytemuck::cast_slice(second));
        self.step = step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_schedule_ends_at_its_fraction() {
        let mut c = OptimizerConfig::adam(0.1);
        c.schedule = Schedule::Cosine {
            iterations: 100,
            final_fraction: 0.1,
        };
        assert!((c.rate_at(1) - 0.1).abs() < 1e-7);
        assert!((c.rate_at(101) - 0.01).abs() < 1e-7);
        assert!(c.rate_at(50) < 0.1 && c.rate_at(50) > 0.01);
    }
}
