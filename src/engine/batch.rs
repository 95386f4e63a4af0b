//! The GPU host core: one batch of instances of a compiled model on the device.
//!
//! [`Batch`] owns what every user of the step kernel needs: the compiled layout (shared, built
//! once per run), the packed model buffer, the split of the instances into chunks under the
//! device's storage-binding limit, and the four per-instance arrays the step kernel binds
//! (state, physical parameters, commands, constraint rows). [`crate::Simulator`] and
//! [`crate::Rollout`] are both built on it; a rollout adds its own per-instance buffers
//! (checkpoints, adjoints, losses) on the same chunking.
//!
//! Each chunk is an independent sub-batch with its own bind groups; since every instance only
//! ever touches its own slots, instance `i` computes the same bits whatever the batch size and
//! chunking.

use std::sync::Arc;

use wgpu::util::DeviceExt;

use crate::engine::buffers::{Chunking, PerInstance};
use crate::engine::gpu::Gpu;
use crate::engine::layout::{Compiled, Header, ROW_LEN};
use crate::engine::shaders::ModelBinding;
use crate::error::{Error, Result};
use crate::model::Model;

/// Invocations per workgroup of every per-instance kernel (one invocation per instance).
pub const WORKGROUP: u32 = 64;

/// The step kernel's bindings of one chunk, in binding order: header, model, state, params,
/// commands, rows.
pub type StepBindings<'a> = [(u32, &'a wgpu::Buffer); 6];

/// A batch of instances of one compiled model on the device: the model buffer, the chunking
/// and the step kernel's per-instance arrays.
pub struct Batch {
    gpu: Arc<Gpu>,
    compiled: Arc<Compiled>,
    chunking: Chunking,
    model_buf: wgpu::Buffer,
    model_binding: ModelBinding,
    /// Every instance's raw state (bodies, then the solver's warm-start impulses).
    pub state: PerInstance,
    /// Every instance's physical parameters ([`Compiled::param_slots`]).
    pub params: PerInstance,
    /// Every instance's commands: one step's or a whole sequence's, as the owner chose.
    pub commands: PerInstance,
    /// The constraint rows' scratch.
    pub rows: PerInstance,
}

/// Checks that `compiled` is the layout of `model` as far as the header tells (bodies,
/// commands, state length), so that a layout compiled from another model is refused instead of
/// reading out of bounds.
pub fn check_compiled(model: &Model, compiled: &Compiled) -> Result<()> {
    let h = &compiled.header;
    let bodies_match = h.n_bodies as usize == model.bodies.len() + 1;
    let commands_match = h.n_commands as usize == model.actuators.len();
    let state_match = compiled.initial_state.len() == h.state_len as usize;
    if bodies_match && commands_match && state_match {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "the compiled layout ({} body slots, {} commands) is not that of model '{}' ({} \
             bodies, {} actuators)",
            h.n_bodies,
            h.n_commands,
            model.name,
            model.bodies.len(),
            model.actuators.len()
        )))
    }
}

impl Batch {
    /// Floats per instance of the step kernel's arrays, in the order state, params, commands,
    /// rows, for `command_floats` command values per instance (an empty array still takes one
    /// float per instance, see [`PerInstance::new`]).
    pub fn step_floats(compiled: &Compiled, command_floats: u64) -> [u64; 4] {
        let h = &compiled.header;
        [
            u64::from(h.state_len),
            u64::from(h.param_len),
            command_floats.max(1),
            (compiled.n_rows().max(1) * ROW_LEN) as u64,
        ]
    }

    /// Splits `n_instances` into chunks of at most `max_chunk` (`None`: no limit of its own) so
    /// that every per-instance buffer (`floats` per instance each) fits the device's binding
    /// limit; [`Error::TooLarge`] naming `model_name` when not even one instance fits.
    pub fn plan_chunks(
        gpu: &Gpu,
        model_name: &str,
        floats: &[u64],
        n_instances: usize,
        max_chunk: Option<usize>,
    ) -> Result<Chunking> {
        let chunk_max = Chunking::max_instances(&gpu.limits, floats)
            .min(max_chunk.unwrap_or(usize::MAX).max(1));
        if chunk_max == 0 {
            return Err(Error::TooLarge(format!(
                "one instance of '{model_name}' needs {} bytes in its largest per-instance \
                 buffer, more than the device's storage binding limit of {} bytes",
                floats.iter().max().unwrap_or(&0) * 4,
                gpu.max_binding_bytes()
            )));
        }
        Ok(Chunking::new(n_instances, chunk_max))
    }

    /// Floats per instance of the rows array of a batch that also runs the adjoint kernel:
    /// the rows' records, then their adjoints in the same record layout (rows `adj_rows`
    /// onwards, see [`Header::adj_rows`]).
    pub fn adjoint_row_floats(compiled: &Compiled) -> u64 {
        2 * Self::step_floats(compiled, 0)[3]
    }

    /// Allocates the model buffer and the step kernel's arrays: every instance at the initial
    /// state with default parameters, zero commands (`command_floats` per instance) and zero
    /// rows. Call it inside [`Gpu::allocation_scope`].
    pub fn allocate(
        gpu: Arc<Gpu>,
        compiled: Arc<Compiled>,
        chunking: Chunking,
        command_floats: u64,
    ) -> Batch {
        let row_floats = Self::step_floats(&compiled, 0)[3];
        Self::allocate_rows(gpu, compiled, chunking, command_floats, row_floats)
    }

    /// [`Batch::allocate`] with room in the rows array for the row adjoints that the adjoint
    /// kernel accumulates ([`Batch::adjoint_row_floats`]).
    pub fn allocate_for_adjoint(
        gpu: Arc<Gpu>,
        compiled: Arc<Compiled>,
        chunking: Chunking,
        command_floats: u64,
    ) -> Batch {
        let row_floats = Self::adjoint_row_floats(&compiled);
        Self::allocate_rows(gpu, compiled, chunking, command_floats, row_floats)
    }

    fn allocate_rows(
        gpu: Arc<Gpu>,
        compiled: Arc<Compiled>,
        chunking: Chunking,
        command_floats: u64,
        row_floats: u64,
    ) -> Batch {
        let model_binding = Self::model_binding_for(&gpu, &compiled);
        let (usage, words) = model_binding.buffer_contents(&compiled.packed);
        let model_buf = gpu
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("model"),
                contents: bytemuck::cast_slice(&words),
                usage,
            });
        let [state_floats, param_floats, _, _] = Self::step_floats(&compiled, 0);
        let alloc = |width: u64, label: &str, one: Option<&[f32]>| {
            PerInstance::new(&gpu, &chunking, width as usize, label, one)
        };
        let state = alloc(state_floats, "state", Some(&compiled.initial_state));
        let params = alloc(param_floats, "params", Some(&compiled.default_params));
        let commands = alloc(command_floats, "commands", None);
        let rows = alloc(row_floats, "rows", None);
        Batch {
            gpu,
            compiled,
            chunking,
            model_buf,
            model_binding,
            state,
            params,
            commands,
            rows,
        }
    }

    /// The device.
    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    /// The compiled layout.
    pub fn compiled(&self) -> &Arc<Compiled> {
        &self.compiled
    }

    /// How the instances are split into chunks.
    pub fn chunking(&self) -> &Chunking {
        &self.chunking
    }

    /// Instances in each chunk.
    pub fn lens(&self) -> &[usize] {
        &self.chunking.lens
    }

    /// Number of instances.
    pub fn n_instances(&self) -> usize {
        self.chunking.total()
    }

    /// Number of chunks.
    pub fn n_chunks(&self) -> usize {
        self.chunking.lens.len()
    }

    /// How the kernels bind `compiled`'s model table on `gpu`: what [`Batch::allocate`]
    /// chooses, for building the pipelines before the batch.
    pub fn model_binding_for(gpu: &Gpu, compiled: &Compiled) -> ModelBinding {
        ModelBinding::for_table(compiled.packed.len(), &gpu.limits)
    }

    /// How the model buffer is bound: every pipeline that binds it must be built for this
    /// ([`crate::engine::buffers::pipeline_with`]).
    pub fn model_binding(&self) -> ModelBinding {
        self.model_binding
    }

    /// The packed model buffer every chunk shares.
    pub fn model_buffer(&self) -> &wgpu::Buffer {
        &self.model_buf
    }

    /// The compiled header for chunk `c`: its instance count, its first instance's index in the
    /// batch, and the widths of the commands
    /// and rows arrays set (`steps` as compiled; rows with or without the row adjoints).
    pub fn chunk_header(&self, c: usize) -> Header {
        let mut header = self.compiled.header;
        header.n_instances = self.chunking.lens[c] as u32;
        header.first_instance = self.chunking.lens[..c].iter().sum::<usize>() as u32;
        header.command_width = self.commands.width as u32;
        header.row_width = (self.rows.width / 4) as u32;
        header
    }

    /// A uniform buffer holding `header`, rewritable by copies and queue writes.
    pub fn header_buffer(&self, header: &Header) -> wgpu::Buffer {
        self.gpu
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("header"),
                contents: bytemuck::bytes_of(header),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            })
    }

    /// The step kernel's bindings of chunk `c` under the uniform `header`.
    pub fn step_bindings<'a>(&'a self, c: usize, header: &'a wgpu::Buffer) -> StepBindings<'a> {
        [
            (0, header),
            (1, &self.model_buf),
            (2, self.state.buffer(c)),
            (3, self.params.buffer(c)),
            (4, self.commands.buffer(c)),
            (5, self.rows.buffer(c)),
        ]
    }

    /// Dispatches the pass's pipeline once per chunk with that chunk's bind group, one
    /// invocation per instance (the padding of the last block is never dispatched: the kernels
    /// return for instances past `n_instances`).
    pub fn dispatch<'g>(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        groups: impl IntoIterator<Item = &'g wgpu::BindGroup>,
    ) {
        for (group, &len) in groups.into_iter().zip(&self.chunking.lens) {
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups((len as u32).div_ceil(WORKGROUP), 1, 1);
        }
    }

    /// Bytes of device memory held by the model buffer and the step kernel's arrays.
    pub fn device_bytes(&self) -> u64 {
        self.state.bytes()
            + self.params.bytes()
            + self.commands.bytes()
            + self.rows.bytes()
            + self.model_buf.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::layout::BODY_STATE_LEN;

    #[test]
    fn a_layout_of_another_model_is_refused() {
        let quadruped = crate::io::models::builtin("quadruped").unwrap();
        let ball = crate::io::models::builtin("ball").unwrap();
        let compiled = Compiled::new(&quadruped);
        assert!(check_compiled(&quadruped, &compiled).is_ok());
        let err = check_compiled(&ball, &compiled).unwrap_err().to_string();
        assert!(err.contains("'ball'"), "{err}");
    }

    #[test]
    fn step_floats_count_every_array_of_the_step() {
        let model = crate::io::models::builtin("quadruped").unwrap();
        let c = Compiled::new(&model);
        let f = Batch::step_floats(&c, 0);
        assert_eq!(f[0], u64::from(c.header.state_len));
        assert!(f[0] >= ((model.bodies.len() + 1) * BODY_STATE_LEN) as u64);
        assert_eq!(f[1], c.default_params.len() as u64);
        assert_eq!(f[2], 1, "an empty command array still takes a float");
        assert_eq!(f[3], (c.n_rows() * ROW_LEN) as u64);
    }
}
