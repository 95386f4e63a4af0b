//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use backdrive::engine::gpu::Gpu;

/// One device for the whole test binary. Tests need an adapter: `.ci/run` installs lavapipe
/// when no Vulkan device is present, so a missing adapter is a real failure.
pub fn gpu() -> Arc<Gpu> {
    static GPU: OnceLock<Arc<Gpu>> = OnceLock::new();
    GPU.get_or_init(|| Arc::new(Gpu::from_env().unwrap_or_else(|e| panic!("{e}"))))
        .clone()
}

/// A storage buffer holding `data` that tests can also write to and read back.
pub fn storage_buffer(gpu: &Gpu, data: &[f32]) -> wgpu::Buffer {
    use wgpu::util::DeviceExt;
    gpu.device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(data),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
        })
}
pub mod large_models;
pub mod one_step;
pub mod world_shapes;
