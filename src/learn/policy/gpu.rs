//! The policy's kernels around each rollout step: forward before the step (the commands of
//! step `t`), and after step `t`'s adjoint the recomputed forward, the backward through the
//! layers with the weight gradients summed over instances, and the observation adjoint.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use super::PolicyLayout;
use crate::engine::buffers::{self, Chunking, PerInstance};
use crate::engine::gpu::Gpu;
use crate::engine::shaders::{self, ModelBinding};
use crate::error::{Error, Result};
use crate::grad::rollout::{ChunkView, Rollout, StepHook};

const NONE: u32 = u32::MAX;
const WORKGROUP: u32 = 64;
/// Outputs and instances per invocation side in the `_narrow` dense kernels (`BLOCK` in WGSL).
const BLOCK: u32 = 4;
/// Instances per workgroup (32 lanes, four per lane) and outputs per workgroup of the `_wide`
/// kernels.
const WIDE_INSTANCES: u32 = 128;
const WIDE_OUTPUTS: u32 = 8;
/// Outputs per workgroup of the weight-gradient kernel (one input per lane).
const WEIGHT_OUTPUTS: u32 = 16;
/// Chunks of at least this many instances run the `_wide` dense kernels (instances across a
/// workgroup's lanes); smaller ones run the `_narrow` kernels (output blocks across the
/// lanes), which keep the lanes busy for a single robot.
pub const WIDE_MIN_INSTANCES: u32 = 32;

/// Field order matches `struct Layer` in `shaders/policy.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(crate) struct LayerUniform {
    in_size: u32,
    out_size: u32,
    w_offset: u32,
    b_offset: u32,
    x_offset: u32,
    y_offset: u32,
    activation: u32,
    in_activation: u32,
    skip_offset: u32,
    skip_out_offset: u32,
    skip_out_size: u32,
    is_last: u32,
    has_bias: u32,
    n_sensors: u32,
    skip_in_size: u32,
    /// Floats per instance of the activations and deltas (their blocked layout's width).
    activation_width: u32,
    /// The last layer: where the action noise's [std, window key] lie in the parameter
    /// buffer ([`NOISE_LEN`] floats after the parameters); [`NONE`] for the others.
    noise_offset: u32,
    /// Pads the struct to whole 16-byte rows, as a uniform struct is laid out.
    pad_a: u32,
    /// See `pad_a`.
    pad_b: u32,
    /// See `pad_a`.
    pad_c: u32,
}

/// Floats after the policy's parameters in its parameter buffer: the exploration noise's
/// standard deviation (command units) and the window's key (an integer below 2^24), written by
/// [`write_action_noise`]. Zero: commands without noise.
pub const NOISE_LEN: usize = 2;

/// Sets the exploration noise of the commands the policy in `params` (a
/// [`PolicyKernels::params_buffer`] of a policy with `n_params` parameters) writes: each
/// command is the policy's output plus `std` times a standard normal drawn from `key` (below
/// 2^24, exact in f32), the instance, the step and the output
/// ([`crate::engine::twin::policy::action_noise_twin`]). `std` 0: no noise.
pub fn write_action_noise(
    gpu: &Gpu,
    params: &wgpu::Buffer,
    n_params: usize,
    std: f32,
    key: u32,
) -> Result<()> {
    if !(std.is_finite() && std >= 0.0) || key >= 1 << 24 {
        return Err(Error::InvalidInput(format!(
            "action noise: std {std} must be a number >= 0 and the key {key} below 2^24"
        )));
    }
    gpu.queue.write_buffer(
        params,
        (n_params * 4) as u64,
        bytemuck::cast_slice(&[std, key as f32]),
    );
    Ok(())
}

struct ChunkGroups {
    len: u32,
    /// Whether this chunk runs the `_wide` dense kernels.
    wide: bool,
    fused_forward: Option<wgpu::BindGroup>,
    fused_backward: Option<wgpu::BindGroup>,
    observe: wgpu::BindGroup,
    forward: Vec<wgpu::BindGroup>,
    gather: wgpu::BindGroup,
    backward: Vec<wgpu::BindGroup>,
    weights: Vec<wgpu::BindGroup>,
    skip_weights: Option<wgpu::BindGroup>,
    observe_adjoint: wgpu::BindGroup,
}

/// A blocked dense kernel in its two lane arrangements; only those some chunk uses are built.
struct Blocked {
    wide: Option<wgpu::ComputePipeline>,
    narrow: Option<wgpu::ComputePipeline>,
}

impl Blocked {
    fn new(gpu: &Gpu, binding: ModelBinding, name: &str, wide: bool, narrow: bool) -> Result<Self> {
        let build = |on: bool, suffix: &str| -> Result<Option<wgpu::ComputePipeline>> {
            if on {
                Ok(Some(buffers::pipeline_with(
                    gpu,
                    shaders::POLICY,
                    &format!("{name}_{suffix}"),
                    binding,
                )?))
            } else {
                Ok(None)
            }
        };
        Ok(Blocked {
            wide: build(wide, "wide")?,
            narrow: build(narrow, "narrow")?,
        })
    }

    fn get(&self, wide: bool) -> &wgpu::ComputePipeline {
        let p = if wide { &self.wide } else { &self.narrow };
        p.as_ref()
            .expect("built for every chunk arrangement in use")
    }

    /// Dispatches `out_size` outputs (or inputs) for `len` instances.
    fn dispatch(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        wide: bool,
        group: &wgpu::BindGroup,
        len: u32,
        out_size: u32,
    ) {
        pass.set_pipeline(self.get(wide));
        pass.set_bind_group(0, group, &[]);
        if wide {
            pass.dispatch_workgroups(
                len.div_ceil(WIDE_INSTANCES),
                out_size.div_ceil(WIDE_OUTPUTS),
                1,
            );
        } else {
            pass.dispatch_workgroups(
                out_size.div_ceil(BLOCK).div_ceil(WORKGROUP),
                len.div_ceil(BLOCK),
                1,
            );
        }
    }
}

/// Dispatches the weight-gradient kernel over `inputs` (+ bias) x `outputs` weights: one
/// input per lane, `WEIGHT_OUTPUTS` outputs per workgroup.
fn dispatch_weights(
    pass: &mut wgpu::ComputePass<'_>,
    pipeline: &wgpu::ComputePipeline,
    group: &wgpu::BindGroup,
    inputs_and_bias: u32,
    outputs: u32,
) {
    dispatch(
        pass,
        pipeline,
        group,
        inputs_and_bias,
        outputs.div_ceil(WEIGHT_OUTPUTS),
    );
}

struct Pipelines {
    observe: wgpu::ComputePipeline,
    forward: Blocked,
    gather: wgpu::ComputePipeline,
    backward: Blocked,
    weights: wgpu::ComputePipeline,
    observe_adjoint: wgpu::ComputePipeline,
    fused: Option<(wgpu::ComputePipeline, wgpu::ComputePipeline)>,
}

/// Widest layer for which the whole network runs in one invocation per instance.
pub const FUSED_MAX_WIDTH: usize = 256;

/// Whether a layout runs fused on this device: narrow layers, and room for the nine storage
/// bindings of the fused backward kernel.
pub fn runs_fused(layout: &PolicyLayout, limits: &wgpu::Limits) -> bool {
    layout
        .layers
        .iter()
        .all(|l| l.inputs.max(l.outputs) <= FUSED_MAX_WIDTH)
        && limits.max_storage_buffers_per_shader_stage >= 9
}

/// A policy attached to a rollout: its parameters and gradients live on the GPU.
pub struct PolicyKernels {
    layout: PolicyLayout,
    params: wgpu::Buffer,
    grads: wgpu::Buffer,
    pipelines: Pipelines,
    chunks: Vec<ChunkGroups>,
}

fn dispatch(
    pass: &mut wgpu::ComputePass<'_>,
    pipeline: &wgpu::ComputePipeline,
    group: &wgpu::BindGroup,
    x: u32,
    y: u32,
) {
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, group, &[]);
    pass.dispatch_workgroups(x.div_ceil(WORKGROUP), y, 1);
}

/// Builds the policy's pipelines: the fused pair when the layout runs fused, else the blocked
/// dense kernels in the lane arrangements some chunk uses.
/// `binding` is the rollout's model binding.
fn create_pipelines(
    gpu: &Gpu,
    binding: ModelBinding,
    fused: bool,
    any_wide: bool,
    any_narrow: bool,
) -> Result<Pipelines> {
    let pipeline = |name| buffers::pipeline_with(gpu, shaders::POLICY, name, binding);
    Ok(Pipelines {
        observe: pipeline("policy_observe_forward")?,
        forward: Blocked::new(gpu, binding, "dense_forward", any_wide, any_narrow)?,
        gather: pipeline("policy_gather_command_adjoint")?,
        backward: Blocked::new(gpu, binding, "dense_backward", any_wide, any_narrow)?,
        weights: pipeline("dense_weight_gradient")?,
        observe_adjoint: pipeline("policy_observe_adjoint")?,
        fused: if fused {
            Some((
                pipeline("policy_forward_fused")?,
                pipeline("policy_backward_fused")?,
            ))
        } else {
            None
        },
    })
}

/// One uniform per layer: its sizes and offsets, its input's activation, and the skip
/// connection's offsets on the first and last layers.
fn layer_uniform_values(layout: &PolicyLayout) -> Vec<LayerUniform> {
    let last = layout.layers.len() - 1;
    let last_layer = layout.layers[last];
    layout
        .layers
        .iter()
        .enumerate()
        .map(|(l, info)| {
            let skip_here = layout.skip_offset.is_some() && (l == 0 || l == last);
            LayerUniform {
                in_size: info.inputs as u32,
                out_size: info.outputs as u32,
                w_offset: info.w_offset as u32,
                b_offset: info.b_offset as u32,
                x_offset: info.x_offset as u32,
                y_offset: info.y_offset as u32,
                activation: info.activation,
                in_activation: if l == 0 {
                    0
                } else {
                    layout.layers[l - 1].activation
                },
                skip_offset: if skip_here {
                    layout.skip_offset.unwrap_or(0) as u32
                } else {
                    NONE
                },
                skip_out_offset: last_layer.y_offset as u32,
                skip_out_size: layout.n_out as u32,
                is_last: u32::from(l == last),
                has_bias: 1,
                n_sensors: layout.spec.sensors.len() as u32,
                skip_in_size: layout.n_obs as u32,
                activation_width: layout.n_activations as u32,
                noise_offset: if l == last {
                    layout.n_params as u32
                } else {
                    NONE
                },
                pad_a: 0,
                pad_b: 0,
                pad_c: 0,
            }
        })
        .collect()
}

/// What every chunk's bind groups share: the pipelines, the model and the policy's buffers.
struct SharedBindings<'a> {
    gpu: &'a Gpu,
    pipelines: &'a Pipelines,
    model: &'a wgpu::Buffer,
    params: &'a wgpu::Buffer,
    grads: &'a wgpu::Buffer,
    sensors: &'a wgpu::Buffer,
    layer_uniforms: &'a [wgpu::Buffer],
    layer_table: &'a wgpu::Buffer,
    skip_uniform: Option<&'a wgpu::Buffer>,
    last: usize,
    fused: bool,
}

impl SharedBindings<'_> {
    fn bg(&self, p: &wgpu::ComputePipeline, e: &[(u32, &wgpu::Buffer)]) -> wgpu::BindGroup {
        buffers::bind_group(self.gpu, p, e)
    }

    /// The bind groups of one chunk of the rollout, over its activations and deltas.
    fn chunk_groups(
        &self,
        v: &ChunkView<'_>,
        acts: &wgpu::Buffer,
        dels: &wgpu::Buffer,
        wide: bool,
    ) -> ChunkGroups {
        let observe = self.bg(
            &self.pipelines.observe,
            &[
                (0, v.header),
                (1, self.model),
                (2, v.state),
                (3, v.params),
                (11, acts),
                (13, self.sensors),
                (14, &self.layer_uniforms[0]),
            ],
        );
        let observe_adjoint = self.bg(
            &self.pipelines.observe_adjoint,
            &[
                (0, v.header),
                (1, self.model),
                (2, v.state),
                (3, v.params),
                (6, v.adjoint),
                (12, dels),
                (13, self.sensors),
                (14, &self.layer_uniforms[0]),
            ],
        );
        // The fused kernels replace the per-layer forward and backward dispatches.
        let per_layer = |blocked: &Blocked, extra: &[(u32, &wgpu::Buffer)]| {
            if self.fused {
                return Vec::new();
            }
            self.layer_uniforms
                .iter()
                .map(|u| {
                    let mut entries = vec![(0, v.header), (9, self.params), (11, acts)];
                    entries.extend_from_slice(extra);
                    entries.push((14, u));
                    self.bg(blocked.get(wide), &entries)
                })
                .collect::<Vec<_>>()
        };
        let forward = per_layer(&self.pipelines.forward, &[(4, v.commands)]);
        let backward = per_layer(&self.pipelines.backward, &[(12, dels)]);
        let weights = self
            .layer_uniforms
            .iter()
            .map(|u| {
                self.bg(
                    &self.pipelines.weights,
                    &[
                        (0, v.header),
                        (10, self.grads),
                        (11, acts),
                        (12, dels),
                        (14, u),
                    ],
                )
            })
            .collect();
        let skip_weights = self.skip_uniform.map(|u| {
            self.bg(
                &self.pipelines.weights,
                &[
                    (0, v.header),
                    (10, self.grads),
                    (11, acts),
                    (12, dels),
                    (14, u),
                ],
            )
        });
        let gather = self.bg(
            &self.pipelines.gather,
            &[
                (0, v.header),
                (6, v.adjoint),
                (12, dels),
                (14, &self.layer_uniforms[self.last]),
            ],
        );
        let (fused_forward, fused_backward) = self.fused_groups(v, acts, dels);
        ChunkGroups {
            len: v.len as u32,
            wide,
            fused_forward,
            fused_backward,
            observe,
            forward,
            gather,
            backward,
            weights,
            skip_weights,
            observe_adjoint,
        }
    }

    /// The fused forward and backward bind groups of one chunk, when the policy runs fused.
    fn fused_groups(
        &self,
        v: &ChunkView<'_>,
        acts: &wgpu::Buffer,
        dels: &wgpu::Buffer,
    ) -> (Option<wgpu::BindGroup>, Option<wgpu::BindGroup>) {
        let fused_forward = self.pipelines.fused.as_ref().map(|(f, _)| {
            self.bg(
                f,
                &[
                    (0, v.header),
                    (1, self.model),
                    (2, v.state),
                    (3, v.params),
                    (4, v.commands),
                    (9, self.params),
                    (11, acts),
                    (13, self.sensors),
                    (14, &self.layer_uniforms[0]),
                    (15, self.layer_table),
                ],
            )
        });
        let fused_backward = self.pipelines.fused.as_ref().map(|(_, b)| {
            self.bg(
                b,
                &[
                    (0, v.header),
                    (1, self.model),
                    (2, v.state),
                    (3, v.params),
                    (6, v.adjoint),
                    (9, self.params),
                    (11, acts),
                    (12, dels),
                    (13, self.sensors),
                    (14, &self.layer_uniforms[0]),
                    (15, self.layer_table),
                ],
            )
        });
        (fused_forward, fused_backward)
    }
}

impl PolicyKernels {
    /// Creates the policy's buffers and bind groups over `rollout`'s buffers.
    pub fn new(
        gpu: &Arc<Gpu>,
        layout: &PolicyLayout,
        rollout: &Rollout,
        params: &[f32],
    ) -> Result<Self> {
        if params.len() != layout.n_params {
            return Err(Error::InvalidInput(format!(
                "policy parameters: expected {}, got {}",
                layout.n_params,
                params.len()
            )));
        }
        let views = rollout.chunk_views();
        let fused = runs_fused(layout, &gpu.limits);
        let is_wide = |len: usize| len as u32 >= WIDE_MIN_INSTANCES;
        let any_wide = !fused && views.iter().any(|v| is_wide(v.len));
        let any_narrow = !fused && views.iter().any(|v| !is_wide(v.len));
        let pipelines =
            create_pipelines(gpu, rollout.model_binding(), fused, any_wide, any_narrow)?;
        let storage = |label: &str, data: &[u8]| {
            gpu.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: data,
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_DST
                        | wgpu::BufferUsages::COPY_SRC,
                })
        };
        // The parameters, then the action noise's settings (none).
        let mut with_noise = params.to_vec();
        with_noise.extend([0.0; NOISE_LEN]);
        let params_buf = storage("policy params", bytemuck::cast_slice(&with_noise));
        let grads_buf = storage(
            "policy grads",
            bytemuck::cast_slice(&vec![0.0f32; layout.n_params]),
        );
        let sensors_buf = storage("sensors", bytemuck::cast_slice(&layout.sensors_packed));
        let last = layout.layers.len() - 1;
        let last_layer = layout.layers[last];
        let uniform = |u: LayerUniform| {
            gpu.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("layer"),
                    contents: bytemuck::bytes_of(&u),
                    usage: wgpu::BufferUsages::UNIFORM,
                })
        };
        let layer_values = layer_uniform_values(layout);
        let layer_uniforms: Vec<wgpu::Buffer> = layer_values.iter().map(|u| uniform(*u)).collect();
        let layer_table = storage("layer table", bytemuck::cast_slice(&layer_values));
        let skip_uniform = layout.skip_offset.map(|s| {
            uniform(LayerUniform {
                in_size: layout.n_obs as u32,
                out_size: layout.n_out as u32,
                w_offset: s as u32,
                b_offset: 0,
                x_offset: 0,
                y_offset: last_layer.y_offset as u32,
                skip_offset: NONE,
                has_bias: 0,
                activation_width: layout.n_activations as u32,
                noise_offset: NONE,
                ..Default::default()
            })
        });
        let chunking = Chunking {
            lens: views.iter().map(|v| v.len).collect(),
        };
        let activations =
            PerInstance::new(gpu, &chunking, layout.n_activations, "activations", None);
        let deltas = PerInstance::new(gpu, &chunking, layout.n_activations, "deltas", None);
        let shared = SharedBindings {
            gpu,
            pipelines: &pipelines,
            model: rollout.model_buffer(),
            params: &params_buf,
            grads: &grads_buf,
            sensors: &sensors_buf,
            layer_uniforms: &layer_uniforms,
            layer_table: &layer_table,
            skip_uniform: skip_uniform.as_ref(),
            last,
            fused,
        };
        let mut chunks = Vec::new();
        for (c, v) in views.iter().enumerate() {
            let acts = activations.buffer(c);
            let dels = deltas.buffer(c);
            chunks.push(shared.chunk_groups(v, acts, dels, is_wide(v.len)));
        }
        Ok(PolicyKernels {
            layout: layout.clone(),
            params: params_buf,
            grads: grads_buf,
            pipelines,
            chunks,
        })
    }

    /// The parameter buffer (updated in place by the optimiser): the policy's parameters, then
    /// [`NOISE_LEN`] floats of action noise settings.
    pub fn params_buffer(&self) -> &wgpu::Buffer {
        &self.params
    }

    /// The gradient buffer: summed over instances and steps by the backward pass.
    pub fn grads_buffer(&self) -> &wgpu::Buffer {
        &self.grads
    }

    /// The layout.
    pub fn layout(&self) -> &PolicyLayout {
        &self.layout
    }

    /// Whether the whole network runs in one invocation per instance.
    pub fn fused(&self) -> bool {
        self.pipelines.fused.is_some()
    }

    fn encode_forward(&self, pass: &mut wgpu::ComputePass<'_>, chunk: &ChunkGroups) {
        if let (Some((pipeline, _)), Some(group)) = (&self.pipelines.fused, &chunk.fused_forward) {
            dispatch(pass, pipeline, group, chunk.len, 1);
            return;
        }
        dispatch(pass, &self.pipelines.observe, &chunk.observe, chunk.len, 1);
        for (l, info) in self.layout.layers.iter().enumerate() {
            self.pipelines.forward.dispatch(
                pass,
                chunk.wide,
                &chunk.forward[l],
                chunk.len,
                info.outputs as u32,
            );
        }
    }
}

impl StepHook for PolicyKernels {
    fn before_step(&self, encoder: &mut wgpu::CommandEncoder, _t: u32) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
        for chunk in &self.chunks {
            self.encode_forward(&mut pass, chunk);
        }
    }

    fn after_step_adjoint(&self, encoder: &mut wgpu::CommandEncoder, _t: u32) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
        let layers = &self.layout.layers;
        // Weight gradients accumulate chunk after chunk, each over its instances in order.
        for chunk in &self.chunks {
            self.encode_forward(&mut pass, chunk);
            if let (Some((_, pipeline)), Some(group)) =
                (&self.pipelines.fused, &chunk.fused_backward)
            {
                dispatch(&mut pass, pipeline, group, chunk.len, 1);
                if let Some(g) = &chunk.skip_weights {
                    dispatch_weights(
                        &mut pass,
                        &self.pipelines.weights,
                        g,
                        self.layout.n_obs as u32,
                        self.layout.n_out as u32,
                    );
                }
                for (l, info) in layers.iter().enumerate() {
                    dispatch_weights(
                        &mut pass,
                        &self.pipelines.weights,
                        &chunk.weights[l],
                        info.inputs as u32 + 1,
                        info.outputs as u32,
                    );
                }
                continue;
            }
            dispatch(
                &mut pass,
                &self.pipelines.gather,
                &chunk.gather,
                chunk.len,
                self.layout.n_out as u32,
            );
            if let Some(g) = &chunk.skip_weights {
                dispatch_weights(
                    &mut pass,
                    &self.pipelines.weights,
                    g,
                    self.layout.n_obs as u32,
                    self.layout.n_out as u32,
                );
            }
            for l in (0..layers.len()).rev() {
                let info = layers[l];
                dispatch_weights(
                    &mut pass,
                    &self.pipelines.weights,
                    &chunk.weights[l],
                    info.inputs as u32 + 1,
                    info.outputs as u32,
                );
                self.pipelines.backward.dispatch(
                    &mut pass,
                    chunk.wide,
                    &chunk.backward[l],
                    chunk.len,
                    info.inputs as u32,
                );
            }
            dispatch(
                &mut pass,
                &self.pipelines.observe_adjoint,
                &chunk.observe_adjoint,
                chunk.len,
                1,
            );
        }
    }
}
