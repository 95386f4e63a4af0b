//! Per-instance GPU arrays split into chunks, with instance-major reads and writes.
//!
//! On the device every per-instance array is slot-major with the instance innermost
//! (`array[slot * chunk_len + i]`); the host sees instance-major data (`data[i * width + slot]`).
//! Chunks keep every binding under the device's storage-binding limit.

use wgpu::util::DeviceExt;

use crate::engine::gpu::Gpu;
use crate::error::{Error, Result};

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
        let by_dispatch = u64::from(limits.max_compute_workgroups_per_dimension) * 64;
        by_memory.min(by_dispatch) as usize
    }
}

/// A per-instance array of `width` floats per instance, one buffer per chunk.
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
                let mut data = vec![0.0f32; width.max(1) * len];
                if let Some(one) = one {
                    for (s, &v) in one.iter().enumerate() {
                        data[s * len..(s + 1) * len].fill(v);
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
                        out[(start + i) * self.width + s] = raw[s * len + i];
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
            let mut raw = vec![0.0f32; width * len];
            for i in 0..len {
                for s in 0..width {
                    raw[s * len + i] = data[(start + i) * width + s];
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
    let key = format!("{}:{entry_point}", entry.name);
    if let Some(p) = gpu.pipelines.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Ok(p);
    }
    let compiled = compile_pipeline(gpu, entry, entry_point)?;
    if let Ok(mut m) = gpu.pipelines.lock() {
        m.insert(key, compiled.clone());
    }
    Ok(compiled)
}

fn compile_pipeline(
    gpu: &Gpu,
    entry: crate::engine::shaders::Source,
    entry_point: &str,
) -> Result<wgpu::ComputePipeline> {
    let assembled = crate::engine::shaders::assemble(entry);
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
