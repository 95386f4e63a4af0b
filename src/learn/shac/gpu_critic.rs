//! The critic on the GPU (`shaders/critic.wgsl`): values of batches of critic inputs, their
//! input gradients dV/dx (the actor's final-state seed), the weight gradient of the
//! squared-error regression on TD(lambda) targets, Adam on the GPU ([`GpuOptimizer`]) and the
//! target network's Polyak averaging. The host f64 [`Mlp`] is its CPU reference: the same
//! parameters give the same values and gradients to f32 rounding.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use super::critic::Mlp;
use crate::engine::buffers;
use crate::engine::gpu::Gpu;
use crate::engine::layout::{LOOP_ITERATION_BUDGET, LOOP_ITERATION_CAP};
use crate::engine::shaders;
use crate::error::{Error, Result};
use crate::learn::optim::{GpuOptimizer, Method, OptimizerConfig, Schedule};

/// Field order matches `struct Critic` in `shaders/critic.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct CriticUniform {
    rows: u32,
    mode: u32,
    n_layers: u32,
    n_units: u32,
    n_params: u32,
    n_inputs: u32,
    error_scale: f32,
    alpha: f32,
}

/// Field order matches `struct CriticLayer` in `shaders/critic.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct CriticLayer {
    in_size: u32,
    out_size: u32,
    w_offset: u32,
    b_offset: u32,
    x_unit: u32,
    y_unit: u32,
    pad0: u32,
    pad1: u32,
}

const MODE_VALUE: u32 = 0;
const MODE_GRADIENT: u32 = 1;
const MODE_REGRESSION: u32 = 2;

/// Which of the two networks a pass reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// The critic being regressed.
    Critic,
    /// The target critic (its Polyak average), which values the bootstrap and the targets.
    Target,
}

/// Per-row buffers for up to `rows` rows at a time, and the bind groups over them.
struct Scratch {
    rows: usize,
    inputs: wgpu::Buffer,
    targets: wgpu::Buffer,
    /// Held for the bind groups that read it; the host never reads it.
    _units: wgpu::Buffer,
    deltas: wgpu::Buffer,
    values: wgpu::Buffer,
    errors: wgpu::Buffer,
    forward_critic: wgpu::BindGroup,
    forward_target: wgpu::BindGroup,
    weight_gradient: wgpu::BindGroup,
}

/// The critic MLP (tanh hidden layers, one linear output), its target copy and its Adam, on the
/// GPU.
pub struct GpuCritic {
    gpu: Arc<Gpu>,
    widths: Vec<usize>,
    n_params: usize,
    n_units: usize,
    uniform: wgpu::Buffer,
    layers: wgpu::Buffer,
    params: wgpu::Buffer,
    target: wgpu::Buffer,
    grads: wgpu::Buffer,
    optimizer: GpuOptimizer,
    forward_pipeline: wgpu::ComputePipeline,
    gradient_pipeline: wgpu::ComputePipeline,
    average_group: wgpu::BindGroup,
    average_pipeline: wgpu::ComputePipeline,
    scratch: Option<Scratch>,
}

fn storage(gpu: &Gpu, label: &str, data: &[f32]) -> wgpu::Buffer {
    let one = [0.0f32];
    let contents: &[f32] = if data.is_empty() { &one } else { data };
    gpu.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(contents),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
        })
}

impl GpuCritic {
    /// A critic with `inputs` inputs and hidden layers `hidden`, initialised as
    /// [`Mlp::new`]`(inputs, hidden, seed)` (rounded to f32), its target a copy, trained by Adam
    /// (beta1 0.9, beta2 0.999, epsilon 1e-8, no clipping) at `learning_rate`.
    pub fn new(
        gpu: Arc<Gpu>,
        inputs: usize,
        hidden: &[usize],
        seed: u64,
        learning_rate: f32,
    ) -> Result<GpuCritic> {
        if inputs == 0 || hidden.contains(&0) {
            return Err(Error::InvalidInput(
                "the critic needs at least one input and positive layer widths".into(),
            ));
        }
        let mut widths = vec![inputs];
        widths.extend(hidden);
        widths.push(1);
        let per_row = loop_iterations_per_row(&widths);
        if per_row > u64::from(LOOP_ITERATION_BUDGET) {
            return Err(Error::InvalidInput(format!(
                "a critic of {inputs} inputs and hidden layers {hidden:?} runs {per_row} loop \
                 iterations per row in one GPU invocation; lavapipe silently leaves a compute \
                 invocation's loops after {LOOP_ITERATION_CAP} and backdrive keeps every kernel \
                 within {LOOP_ITERATION_BUDGET}: use narrower hidden layers \
                 (algorithm.critic_hidden)"
            )));
        }
        let init = Mlp::new(inputs, hidden, seed);
        let theta: Vec<f32> = init.params.iter().map(|&p| p as f32).collect();
        let widths = init.widths.clone();
        let mut table = Vec::new();
        let (mut offset, mut unit) = (0usize, 0usize);
        for l in 0..widths.len() - 1 {
            let (i, o) = (widths[l], widths[l + 1]);
            table.push(CriticLayer {
                in_size: i as u32,
                out_size: o as u32,
                w_offset: offset as u32,
                b_offset: (offset + i * o) as u32,
                x_unit: unit as u32,
                y_unit: (unit + i) as u32,
                pad0: 0,
                pad1: 0,
            });
            offset += i * o + o;
            unit += i;
        }
        let n_units = unit + 1;
        let n_params = theta.len();
        let params = storage(&gpu, "critic parameters", &theta);
        let target = storage(&gpu, "target critic parameters", &theta);
        let grads = storage(&gpu, "critic gradient", &vec![0.0; n_params]);
        let layers = gpu
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("critic layers"),
                contents: bytemuck::cast_slice(&table),
                usage: wgpu::BufferUsages::STORAGE,
            });
        let uniform = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("critic"),
            size: std::mem::size_of::<CriticUniform>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let config = OptimizerConfig {
            method: Method::Adam {
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
            },
            learning_rate,
            schedule: Schedule::Constant,
            max_norm: None,
        };
        let optimizer = GpuOptimizer::new(gpu.clone(), config, &params, &grads, n_params)?;
        let forward_pipeline = buffers::pipeline(&gpu, shaders::CRITIC, "critic_forward_backward")?;
        let gradient_pipeline = buffers::pipeline(&gpu, shaders::CRITIC, "critic_weight_gradient")?;
        let average_pipeline = buffers::pipeline(&gpu, shaders::CRITIC, "critic_target_average")?;
        let average_group = buffers::bind_group(
            &gpu,
            &average_pipeline,
            &[(0, &uniform), (2, &target), (10, &params)],
        );
        Ok(GpuCritic {
            gpu,
            widths,
            n_params,
            n_units,
            uniform,
            layers,
            params,
            target,
            grads,
            optimizer,
            forward_pipeline,
            gradient_pipeline,
            average_group,
            average_pipeline,
            scratch: None,
        })
    }

    /// Inputs per row.
    pub fn n_inputs(&self) -> usize {
        self.widths[0]
    }

    /// Parameters of one network.
    pub fn n_params(&self) -> usize {
        self.n_params
    }

    /// Layer widths, input first, output (1) last.
    pub fn widths(&self) -> &[usize] {
        &self.widths
    }

    /// Rows one dispatch can take: the per-row buffers must fit one storage binding, and
    /// `critic_weight_gradient` loops over the rows (after its loop over the layers) within
    /// one invocation, so they must fit the loop budget too.
    fn max_rows(&self) -> usize {
        let per_row = 4 * self.n_units.max(self.n_inputs()) as u64;
        let loop_rows = (LOOP_ITERATION_BUDGET as usize).saturating_sub(self.widths.len());
        ((self.gpu.max_binding_bytes() / per_row) as usize).clamp(1, loop_rows.max(1))
    }

    /// Per-row buffers for at least `rows` rows (fewer when a binding cannot hold them: the
    /// passes then run in chunks).
    fn ensure_scratch(&mut self, rows: usize) -> Result<()> {
        let rows = rows.clamp(1, self.max_rows());
        if self.scratch.as_ref().is_some_and(|s| s.rows >= rows) {
            return Ok(());
        }
        let gpu = self.gpu.clone();
        let (n_units, n_inputs) = (self.n_units, self.n_inputs());
        let scratch = gpu.allocation_scope("the critic's per-row buffers", || {
            let zeros = |n: usize| vec![0.0f32; n];
            let inputs = storage(&gpu, "critic inputs", &zeros(rows * n_inputs));
            let targets = storage(&gpu, "critic targets", &zeros(rows));
            let units = storage(&gpu, "critic units", &zeros(rows * n_units));
            let deltas = storage(&gpu, "critic deltas", &zeros(rows * n_units));
            let values = storage(&gpu, "critic values", &zeros(rows));
            let errors = storage(&gpu, "critic squared errors", &zeros(rows));
            let forward = |params: &wgpu::Buffer| {
                buffers::bind_group(
                    &gpu,
                    &self.forward_pipeline,
                    &[
                        (0, &self.uniform),
                        (1, &self.layers),
                        (2, params),
                        (4, &inputs),
                        (5, &targets),
                        (6, &units),
                        (7, &deltas),
                        (8, &values),
                        (9, &errors),
                    ],
                )
            };
            let forward_critic = forward(&self.params);
            let forward_target = forward(&self.target);
            let weight_gradient = buffers::bind_group(
                &gpu,
                &self.gradient_pipeline,
                &[
                    (0, &self.uniform),
                    (1, &self.layers),
                    (3, &self.grads),
                    (6, &units),
                    (7, &deltas),
                ],
            );
            Scratch {
                rows,
                inputs,
                targets,
                _units: units,
                deltas,
                values,
                errors,
                forward_critic,
                forward_target,
                weight_gradient,
            }
        })?;
        self.scratch = Some(scratch);
        Ok(())
    }

    fn write_uniform(&self, rows: usize, mode: u32, error_scale: f32, alpha: f32) {
        let u = CriticUniform {
            rows: rows as u32,
            mode,
            n_layers: (self.widths.len() - 1) as u32,
            n_units: self.n_units as u32,
            n_params: self.n_params as u32,
            n_inputs: self.n_inputs() as u32,
            error_scale,
            alpha,
        };
        self.gpu
            .queue
            .write_buffer(&self.uniform, 0, bytemuck::bytes_of(&u));
    }

    fn check_rows(&self, inputs: &[f32]) -> Result<usize> {
        if !inputs.len().is_multiple_of(self.n_inputs()) {
            return Err(Error::InvalidInput(format!(
                "{} critic inputs are not whole rows of {}",
                inputs.len(),
                self.n_inputs()
            )));
        }
        Ok(inputs.len() / self.n_inputs())
    }

    /// Runs `critic_forward_backward` over `inputs` in chunks; `per_chunk` reads each chunk's
    /// results (the scratch, the chunk's first row and its row count) before the next one.
    fn forward_chunks(
        &mut self,
        network: Network,
        mode: u32,
        inputs: &[f32],
        targets: Option<&[f32]>,
        error_scale: f32,
        mut per_chunk: impl FnMut(&GpuCritic, usize, usize) -> Result<()>,
    ) -> Result<()> {
        let rows = self.check_rows(inputs)?;
        self.ensure_scratch(rows)?;
        let chunk = self.scratch.as_ref().map_or(1, |s| s.rows);
        let w = self.n_inputs();
        let mut first = 0;
        while first < rows {
            let count = chunk.min(rows - first);
            let scratch = self.scratch.as_ref().expect("scratch allocated above");
            self.gpu.queue.write_buffer(
                &scratch.inputs,
                0,
                bytemuck::cast_slice(&inputs[first * w..(first + count) * w]),
            );
            if let Some(t) = targets {
                self.gpu.queue.write_buffer(
                    &scratch.targets,
                    0,
                    bytemuck::cast_slice(&t[first..first + count]),
                );
            }
            self.write_uniform(count, mode, error_scale, 0.0);
            let mut encoder =
                self.gpu
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("critic"),
                    });
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
                pass.set_pipeline(&self.forward_pipeline);
                let group = match network {
                    Network::Critic => &scratch.forward_critic,
                    Network::Target => &scratch.forward_target,
                };
                pass.set_bind_group(0, group, &[]);
                pass.dispatch_workgroups((count as u32).div_ceil(64), 1, 1);
                if mode == MODE_REGRESSION {
                    pass.set_pipeline(&self.gradient_pipeline);
                    pass.set_bind_group(0, &scratch.weight_gradient, &[]);
                    pass.dispatch_workgroups((self.n_params as u32).div_ceil(64), 1, 1);
                }
            }
            self.gpu.queue.submit([encoder.finish()]);
            per_chunk(self, first, count)?;
            first += count;
        }
        Ok(())
    }

    fn scratch(&self) -> &Scratch {
        self.scratch.as_ref().expect("a pass allocated the scratch")
    }

    /// The values of `network` for rows of inputs (row-major, [`GpuCritic::n_inputs`] each).
    pub fn values(&mut self, network: Network, inputs: &[f32]) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(inputs.len() / self.n_inputs().max(1));
        self.forward_chunks(network, MODE_VALUE, inputs, None, 0.0, |c, _, count| {
            buffers::read_buffer_with(&c.gpu, &c.scratch().values, |v| {
                out.extend_from_slice(&v[..count])
            })
        })?;
        Ok(out)
    }

    /// The values of `network` for rows of inputs and their input gradients dV/dx (row-major,
    /// [`GpuCritic::n_inputs`] each).
    pub fn value_gradients(
        &mut self,
        network: Network,
        inputs: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let w = self.n_inputs();
        let mut values = Vec::with_capacity(inputs.len() / w.max(1));
        let mut gradients = Vec::with_capacity(inputs.len());
        self.forward_chunks(network, MODE_GRADIENT, inputs, None, 0.0, |c, _, count| {
            buffers::read_buffer_with(&c.gpu, &c.scratch().values, |v| {
                values.extend_from_slice(&v[..count])
            })?;
            // Unit-major: input k of row r at k * count + r.
            buffers::read_buffer_with(&c.gpu, &c.scratch().deltas, |d| {
                for r in 0..count {
                    gradients.extend((0..w).map(|k| d[k * count + r]));
                }
            })
        })?;
        Ok((values, gradients))
    }

    /// Adds `error_scale` times the gradient of the critic's summed squared error
    /// `sum_r (V(x_r) - target_r)^2` over the rows to the gradient buffer (summed in row order),
    /// and returns that summed squared error (in f64, in row order).
    pub fn add_regression_gradient(
        &mut self,
        inputs: &[f32],
        targets: &[f32],
        error_scale: f32,
    ) -> Result<f64> {
        let rows = self.check_rows(inputs)?;
        if targets.len() != rows {
            return Err(Error::InvalidInput(format!(
                "{rows} critic input rows but {} targets",
                targets.len()
            )));
        }
        let mut total = 0.0;
        self.forward_chunks(
            Network::Critic,
            MODE_REGRESSION,
            inputs,
            Some(targets),
            error_scale,
            |c, _, count| {
                buffers::read_buffer_with(&c.gpu, &c.scratch().errors, |e| {
                    total += e[..count].iter().map(|&x| f64::from(x)).sum::<f64>()
                })
            },
        )?;
        Ok(total)
    }

    /// The gradient buffer's contents.
    pub fn gradient(&self) -> Result<Vec<f32>> {
        let mut g = buffers::read_buffer(&self.gpu, &self.grads)?;
        g.truncate(self.n_params);
        Ok(g)
    }

    /// One Adam update of the critic with the gradient buffer, which it leaves zero (queued:
    /// nothing is read back).
    pub fn update(&mut self) -> Result<()> {
        self.optimizer.apply(1.0);
        Ok(())
    }

    /// Moves the target network towards the critic: `target = alpha target + (1 - alpha) critic`.
    pub fn average_target(&mut self, alpha: f32) {
        self.write_uniform(0, MODE_VALUE, 0.0, alpha);
        let mut encoder = self
            .gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("target critic"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            pass.set_pipeline(&self.average_pipeline);
            pass.set_bind_group(0, &self.average_group, &[]);
            pass.dispatch_workgroups((self.n_params as u32).div_ceil(64), 1, 1);
        }
        self.gpu.queue.submit([encoder.finish()]);
    }

    fn read(&self, buffer: &wgpu::Buffer) -> Result<Vec<f32>> {
        let mut v = buffers::read_buffer(&self.gpu, buffer)?;
        v.truncate(self.n_params);
        Ok(v)
    }

    /// The critic's parameters (the layout of [`Mlp::params`]).
    pub fn params(&self) -> Result<Vec<f32>> {
        self.read(&self.params)
    }

    /// The target critic's parameters.
    pub fn target_params(&self) -> Result<Vec<f32>> {
        self.read(&self.target)
    }

    /// Adam's first and second moments.
    pub fn moments(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        self.optimizer.moments()
    }

    /// Adam updates done.
    pub fn updates(&self) -> u32 {
        self.optimizer.step
    }

    /// Replaces both networks' parameters, Adam's moments and its update count (from a
    /// checkpoint, or a test's chosen weights).
    pub fn restore(
        &mut self,
        params: &[f32],
        target: &[f32],
        moments: (&[f32], &[f32]),
        updates: u32,
    ) -> Result<()> {
        let n = self.n_params;
        if [params.len(), target.len(), moments.0.len(), moments.1.len()] != [n; 4] {
            return Err(Error::InvalidInput(format!(
                "the critic has {n} parameters; restored arrays hold {}, {}, {} and {}",
                params.len(),
                target.len(),
                moments.0.len(),
                moments.1.len()
            )));
        }
        let q = &self.gpu.queue;
        q.write_buffer(&self.params, 0, bytemuck::cast_slice(params));
        q.write_buffer(&self.target, 0, bytemuck::cast_slice(target));
        self.optimizer.restore(moments.0, moments.1, updates);
        Ok(())
    }

    /// The critic as a host f64 network (its CPU reference), with the parameters it holds now.
    pub fn to_host(&self) -> Result<Mlp> {
        Ok(Mlp {
            widths: self.widths.clone(),
            params: self.params()?.iter().map(|&p| f64::from(p)).collect(),
        })
    }
}

/// Loop iterations one invocation of `critic_forward_backward` (shaders/critic.wgsl) runs for
/// one row of a critic of layer `widths` (input first, output last), every loop counted in the
/// mode that runs the most: the input copy, then per layer forward the input cache, the outputs
/// and their dot products, and backward the delta cache, the inputs and their dot products.
fn loop_iterations_per_row(widths: &[usize]) -> u64 {
    let inputs = widths.first().copied().unwrap_or(0) as u64;
    inputs
        + widths
            .windows(2)
            .map(|pair| {
                let (i, o) = (pair[0] as u64, pair[1] as u64);
                2 * (1 + i + o + i * o)
            })
            .sum::<u64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_iterations_count_every_loop_of_a_row() {
        // 3 inputs, one hidden layer of 2, one output: 3 + 2 (1 + 3 + 2 + 6) + 2 (1 + 2 + 1 + 2).
        assert_eq!(loop_iterations_per_row(&[3, 2, 1]), 3 + 24 + 12);
        // The shipped default on the ant's 30-odd inputs stays far inside the budget; a
        // 300 -> 260 layer alone is past lavapipe's cap.
        assert!(loop_iterations_per_row(&[99, 64, 64, 1]) < u64::from(LOOP_ITERATION_BUDGET));
        assert!(loop_iterations_per_row(&[300, 260, 3, 1]) > u64::from(LOOP_ITERATION_CAP));
    }
}
