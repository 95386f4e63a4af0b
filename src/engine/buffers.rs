//! Per-instance GPU arrays split into chunks, with instance-major reads and writes.
//!
//! On the device every per-instance array is **instance-blocked** (AoSoA): the instances of a
//! chunk are taken in blocks of [`INSTANCE_BLOCK`], and within a block the array is slot-major
//! with the instance innermost, so slot `s` of instance `i` of an array `width` floats wide is at
//! [`device_index`] `((i / B) * width + s) * B + i % B`. Neighbouring invocations of a
//! workgroup still touch neighbouring addresses (coalesced on a GPU, one cache line per slot on
//! a CPU driver), and one instance's slots stay within `width * B` floats whatever the batch
//! size, where the slot-major layout's stride grew with the batch. A chunk of `B` or more
//! instances is allocated rounded up to whole blocks (the padding lanes are never dispatched);
//! a smaller chunk is one block of its own length. The host sees instance-major data
//! (`data[i * width + slot]`). Chunks keep every binding under the device's storage-binding
//! limit.

use wgpu::util::DeviceExt;

use crate::engine::gpu::Gpu;
use crate::engine::shaders::ModelBinding;
use crate::error::{Error, Result};

/// Instances per block of the device layout: a workgroup's invocations
/// ([`crate::engine::batch::WORKGROUP`]); emitted into the WGSL prelude as `INSTANCE_BLOCK`.
pub const INSTANCE_BLOCK: usize = 64;

/// Instances allocated for a chunk of `len`: whole blocks from [`INSTANCE_BLOCK`] instances on,
/// `len` itself below (one short block).
pub fn padded_len(len: usize) -> usize {
    if len >= INSTANCE_BLOCK {
        len.div_ceil(INSTANCE_BLOCK) * INSTANCE_BLOCK
    } else {
        len
    }
}

/// Where slot `slot` of instance `i` of a chunk of `len` instances lies in an array `width`
/// floats wide (the kernels' accessors in `shaders/common.wgsl` compute the same).
pub fn device_index(len: usize, width: usize, slot: usize, i: usize) -> usize {
    // A chunk shorter than a block is one block of its own length.
    let lanes = len.min(INSTANCE_BLOCK);
    ((i / INSTANCE_BLOCK) * width + slot) * lanes + i % INSTANCE_BLOCK
}

/// The byte ranges `(offset, bytes)` of slots `first..first + count` of every instance of a
/// chunk of `len` instances, in an array `width` floats wide: one range per block.
pub fn block_byte_ranges(
    len: usize,
    width: usize,
    first: usize,
    count: usize,
) -> impl Iterator<Item = (u64, u64)> + use<> {
    let lanes = len.min(INSTANCE_BLOCK);
    let blocks = padded_len(len).checked_div(lanes).unwrap_or(0);
    (0..blocks).map(move |b| {
        let at = device_index(len, width, first, b * INSTANCE_BLOCK);
        (at as u64 * 4, (count * lanes) as u64 * 4)
    })
}

/// How a batch of instances is split into chunks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunking {
    /// Instances in each chunk.
    pub lens: Vec<usize>,
}

impl Chunking {
    /// Splits `n` instances into chunks of at most `max` (at least 1).
    pub fn new(n: usize, max: usize) -> Chunking {
        let max = max.max(1);
        let mut lens = Vec::new();
        let mut left = n;
        while left > 0 {
            lens.push(left.min(max));
            left -= left.min(max);
        }
        Chunking { lens }
    }

    /// Total instances.
    pub fn total(&self) -> usize {
        self.lens.iter().sum()
    }

    /// (first instance, length) of every chunk.
    pub fn ranges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.lens.iter().scan(0, |start, &len| {
            let s = *start;
            *start += len;
            Some((s, len))
        })
    }

    /// The largest chunk that keeps `floats_per_instance` (for each buffer) under the limits.
    pub fn max_instances(limits: &wgpu::Limits, floats_per_instance: &[u64]) -> usize {
        let binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let by_memory = floats_per_instance
            .iter()
            .map(|f| binding / (f.max(&1) * 4))
            .min()
            .unwrap_or(u64::MAX);
        // A chunk of a block or more is allocated in whole blocks, which must fit too.
        let block = INSTANCE_BLOCK as u64;
        let by_memory = if by_memory >= block {
            by_memory / block * block
        } else {
            by_memory
        };
        let by_dispatch = u64::from(limits.max_compute_workgroups_per_dimension) * 64;
        by_memory.min(by_dispatch) as usize
    }
}

/// A per-instance array of `width` floats per instance, one buffer per chunk, in the
/// instance-blocked layout of [`device_index`].
pub struct PerInstance {
    /// Floats per instance.
    pub width: usize,
    buffers: Vec<wgpu::Buffer>,
    lens: Vec<usize>,
}

impl PerInstance {
    /// Allocates the array, every instance starting as `one` (or zeros).
    pub fn new(
        gpu: &Gpu,
        chunking: &Chunking,
        width: usize,
        label: &str,
        one: Option<&[f32]>,
    ) -> PerInstance {
        let usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC;
        let buffers = chunking
            .lens
            .iter()
            .map(|&len| {
                let mut data = vec![0.0f32; width.max(1) * padded_len(len)];
                if let Some(one) = one {
                    for i in 0..len {
                        for (s, &v) in one.iter().enumerate() {
                            data[device_index(len, width, s, i)] = v;
                        }
                    }
                }
                gpu.device
                    .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some(label),
                        contents: bytemuck::cast_slice(&data),
                        usage,
                    })
            })
            .collect();
        PerInstance {
            width,
            buffers,
            lens: chunking.lens.clone(),
        }
    }

    /// The buffer of chunk `c`.
    pub fn buffer(&self, c: usize) -> &wgpu::Buffer {
        &self.buffers[c]
    }

    /// Instances allocated for chunk `c` ([`padded_len`] of its length).
    pub fn padded_len(&self, c: usize) -> usize {
        padded_len(self.lens[c])
    }

    /// The byte ranges `(offset, bytes)` in chunk `c`'s buffer of slots `first..first + count`
    /// of every instance: one range per block, each holding those slots of the block's
    /// instances (padding lanes included), for copies and clears of a region of every instance.
    pub fn block_ranges(
        &self,
        c: usize,
        first: usize,
        count: usize,
    ) -> impl Iterator<Item = (u64, u64)> + use<> {
        block_byte_ranges(self.lens[c], self.width, first, count)
    }

    /// Bytes held on the device.
    pub fn bytes(&self) -> u64 {
        self.buffers.iter().map(|b| b.size()).sum()
    }

    /// Reads every instance, instance-major.
    pub fn read(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        let total: usize = self.lens.iter().sum();
        let mut out = vec![0.0; self.width * total];
        let mut start = 0;
        for (buffer, &len) in self.buffers.iter().zip(&self.lens) {
            // Transposed straight out of the mapped staging buffer: one host copy per read.
            read_buffer_with(gpu, buffer, |raw| {
                for i in 0..len {
                    for s in 0..self.width {
                        out[(start + i) * self.width + s] =
                            raw[device_index(len, self.width, s, i)];
                    }
                }
            })?;
            start += len;
        }
        Ok(out)
    }

    /// Writes every instance from instance-major data, rejecting wrong sizes and non-finite
    /// values with a message naming `what`.
    pub fn write(&self, gpu: &Gpu, data: &[f32], what: &str) -> Result<()> {
        let total: usize = self.lens.iter().sum();
        let width = self.width;
        if data.len() != width * total {
            return Err(Error::InvalidInput(format!(
                "{what}: expected {} values ({total} instances x {width}), got {}",
                width * total,
                data.len()
            )));
        }
        if let Some(bad) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "{what}: value {} of instance {} is not finite",
                bad % width.max(1),
                bad / width.max(1)
            )));
        }
        if width == 0 {
            return Ok(());
        }
        let mut start = 0;
        for (buffer, &len) in self.buffers.iter().zip(&self.lens) {
            let mut raw = vec![0.0f32; width * padded_len(len)];
            for i in 0..len {
                for s in 0..width {
                    raw[device_index(len, width, s, i)] = data[(start + i) * width + s];
                }
            }
            gpu.queue
                .write_buffer(buffer, 0, bytemuck::cast_slice(&raw));
            start += len;
        }
        Ok(())
    }
}

/// Waits until the device has finished all submitted work.
pub fn wait(gpu: &Gpu) -> Result<()> {
    gpu.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map(|_| ())
        .map_err(|e| Error::Gpu(format!("waiting for the GPU failed: {e}")))
}

/// Copies a buffer back to the host.
pub fn read_buffer(gpu: &Gpu, buffer: &wgpu::Buffer) -> Result<Vec<f32>> {
    read_buffer_with(gpu, buffer, <[f32]>::to_vec)
}

/// Copies `buffer` to a mapped staging buffer and calls `read` on the mapped floats, so that
/// callers can copy them where they need them without an intermediate vector.
pub fn read_buffer_with<R>(
    gpu: &Gpu,
    buffer: &wgpu::Buffer,
    read: impl FnOnce(&[f32]) -> R,
) -> Result<R> {
    let size = buffer.size();
    let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = gpu
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
    encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
    gpu.queue.submit([encoder.finish()]);
    let (tx, rx) = std::sync::mpsc::channel();
    staging.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    wait(gpu)?;
    rx.recv()
        .map_err(|_| Error::Gpu("buffer mapping was dropped".into()))?
        .map_err(|e| Error::Gpu(format!("buffer mapping failed: {e}")))?;
    let view = staging
        .get_mapped_range(..)
        .map_err(|e| Error::Gpu(format!("buffer mapping failed: {e}")))?;
    let result = read(bytemuck::cast_slice::<u8, f32>(&view));
    drop(view);
    staging.unmap();
    Ok(result)
}

/// One pipeline of [`crate::engine::shaders::PIPELINES`], compiled on first use (after validation by
/// naga) and cached on the device.
pub fn pipeline(
    gpu: &Gpu,
    entry: crate::engine::shaders::Source,
    entry_point: &str,
) -> Result<wgpu::ComputePipeline> {
    pipeline_with(gpu, entry, entry_point, ModelBinding::Storage)
}

/// [`pipeline`] for kernels that bind the model table with `binding` (the one
/// [`crate::engine::batch::Batch::model_binding`] chose for the table they will bind).
pub fn pipeline_with(
    gpu: &Gpu,
    entry: crate::engine::shaders::Source,
    entry_point: &str,
    binding: ModelBinding,
) -> Result<wgpu::ComputePipeline> {
    let key = format!("{}:{entry_point}:{binding:?}", entry.name);
    if let Some(p) = gpu.pipelines.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Ok(p);
    }
    let compiled = compile_pipeline(gpu, entry, entry_point, binding)?;
    if let Ok(mut m) = gpu.pipelines.lock() {
        m.insert(key, compiled.clone());
    }
    Ok(compiled)
}

fn compile_pipeline(
    gpu: &Gpu,
    entry: crate::engine::shaders::Source,
    entry_point: &str,
    binding: ModelBinding,
) -> Result<wgpu::ComputePipeline> {
    let assembled = crate::engine::shaders::assemble_with(entry, binding);
    crate::engine::shaders::validate(&assembled)?;
    let module = gpu
        .device
        .create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(entry.name),
            source: wgpu::ShaderSource::Wgsl(assembled.text.into()),
        });
    Ok(gpu
        .device
        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry_point),
            layout: None,
            module: &module,
            entry_point: Some(entry_point),
            compilation_options: Default::default(),
            cache: None,
        }))
}

/// A bind group for `pipeline` from `(binding, buffer)` pairs.
pub fn bind_group(
    gpu: &Gpu,
    pipeline: &wgpu::ComputePipeline,
    entries: &[(u32, &wgpu::Buffer)],
) -> wgpu::BindGroup {
    let layout = pipeline.get_bind_group_layout(0);
    let entries: Vec<wgpu::BindGroupEntry> = entries
        .iter()
        .map(|(binding, buffer)| wgpu::BindGroupEntry {
            binding: *binding,
            resource: buffer.as_entire_binding(),
        })
        .collect();
    gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &layout,
        entries: &entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slot_of_every_instance_has_its_own_place_inside_the_allocation() {
        for len in [1, 5, 63, 64, 65, 130, 256] {
            for width in [1, 3, 13] {
                let size = width * padded_len(len);
                let mut seen = vec![false; size];
                for i in 0..len {
                    for s in 0..width {
                        let k = device_index(len, width, s, i);
                        assert!(k < size, "len {len} width {width}: {k} >= {size}");
                        assert!(!seen[k], "len {len} width {width}: {k} twice");
                        seen[k] = true;
                    }
                }
            }
        }
    }

    #[test]
    fn blocks_hold_one_workgroup_of_instances_slot_major() {
        let b = INSTANCE_BLOCK;
        assert_eq!(padded_len(b + 1), 2 * b);
        assert_eq!(padded_len(b - 1), b - 1);
        // Second block, slot 2 of a 5-wide array: after the first block's 5 slots.
        assert_eq!(device_index(3 * b, 5, 2, b + 7), (5 + 2) * b + 7);
        // A chunk shorter than a block is slot-major over its own instances.
        assert_eq!(device_index(10, 5, 2, 7), 2 * 10 + 7);
    }

    #[test]
    fn block_ranges_cover_exactly_the_region_of_every_instance() {
        for len in [1, 5, 64, 100, 200] {
            let (width, first, count) = (9, 3, 4);
            let mut covered = vec![false; width * padded_len(len)];
            for (at, bytes) in block_byte_ranges(len, width, first, count) {
                for k in at / 4..(at + bytes) / 4 {
                    assert!(!covered[k as usize], "len {len}: {k} twice");
                    covered[k as usize] = true;
                }
            }
            for i in 0..len {
                for s in 0..width {
                    let inside = (first..first + count).contains(&s);
                    assert_eq!(
                        covered[device_index(len, width, s, i)],
                        inside,
                        "len {len} slot {s}"
                    );
                }
            }
            // Whatever else a range covers is padding.
            let in_region = covered.iter().filter(|&&c| c).count();
            assert_eq!(in_region, count * padded_len(len), "len {len}");
        }
    }

    #[test]
    fn chunks_of_whole_blocks_fit_the_binding_limit() {
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: 1000 * 4 * 100,
            ..wgpu::Limits::default()
        };
        // 1000 instances of 100 floats fit; allocated in whole blocks, 960 do.
        let max = Chunking::max_instances(&limits, &[100]);
        assert_eq!(max, 960);
        assert!(padded_len(max) * 100 * 4 <= 1000 * 4 * 100);
        // Fewer than a block fit: the chunk is one short block.
        assert_eq!(Chunking::max_instances(&limits, &[100 * 1000 / 10]), 10);
    }
}
