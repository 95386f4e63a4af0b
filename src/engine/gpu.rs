//! Adapter and device selection.
//!
//! By default the best adapter wins (discrete, then integrated, virtual, CPU). Two environment
//! variables override the choice: `BACKDRIVE_BACKEND` (`vulkan`, `metal`, `dx12`, `gl`, or a
//! comma-separated list) and `BACKDRIVE_ADAPTER` (a case-insensitive substring of the adapter
//! name, e.g. `llvmpipe`). Only [`GpuOptions::from_env`] and [`Gpu::from_env`] read them (the
//! command line, the tests and the examples call those); [`Gpu::new`] does not.

use crate::error::{Error, Result};

/// How to choose an adapter.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Backends to consider (`vulkan`, `metal`, `dx12`, `gl`); all when `None`.
    pub backend: Option<String>,
    /// Substring the adapter name must contain.
    pub adapter_name: Option<String>,
}

impl GpuOptions {
    /// Options from `BACKDRIVE_BACKEND` and `BACKDRIVE_ADAPTER`.
    pub fn from_env() -> Self {
        GpuOptions {
            backend: std::env::var("BACKDRIVE_BACKEND")
                .ok()
                .filter(|s| !s.is_empty()),
            adapter_name: std::env::var("BACKDRIVE_ADAPTER")
                .ok()
                .filter(|s| !s.is_empty()),
        }
    }
}

/// A device and queue on the chosen adapter, with its limits.
pub struct Gpu {
    /// The adapter.
    pub adapter: wgpu::Adapter,
    /// The logical device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// Adapter name, backend, driver.
    pub info: wgpu::AdapterInfo,
    /// The limits the device was created with (the adapter's own).
    pub limits: wgpu::Limits,
    /// Compiled pipelines by entry point: kernels read the model from buffers, so one pipeline
    /// serves every model and compiling it (slow on CPU drivers) happens once per device.
    pub(crate) pipelines:
        std::sync::Mutex<std::collections::HashMap<String, wgpu::ComputePipeline>>,
}

fn parse_backends(spec: &str) -> Result<wgpu::Backends> {
    let mut backends = wgpu::Backends::empty();
    for part in spec.split(',').map(|s| s.trim().to_ascii_lowercase()) {
        backends |= match part.as_str() {
            "vulkan" | "vk" => wgpu::Backends::VULKAN,
            "metal" | "mtl" => wgpu::Backends::METAL,
            "dx12" | "d3d12" => wgpu::Backends::DX12,
            "gl" | "gles" | "opengl" => wgpu::Backends::GL,
            other => {
                return Err(Error::InvalidInput(format!(
                    "unknown backend '{other}' in BACKDRIVE_BACKEND (expected vulkan, metal, dx12 or gl)"
                )));
            }
        };
    }
    Ok(backends)
}

fn rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

impl Gpu {
    /// Opens the best adapter (discrete, then integrated, virtual, CPU), whatever the
    /// environment says: the library reads no environment variable unless asked to by
    /// [`Gpu::from_env`] or [`GpuOptions::from_env`].
    pub fn new() -> Result<Gpu> {
        Gpu::with_options(&GpuOptions::default())
    }

    /// Opens the adapter chosen by `BACKDRIVE_BACKEND` and `BACKDRIVE_ADAPTER` (see the module
    /// docs), as the command line, the tests and the examples do.
    pub fn from_env() -> Result<Gpu> {
        Gpu::with_options(&GpuOptions::from_env())
    }

    /// Opens an adapter chosen by `options`.
    pub fn with_options(options: &GpuOptions) -> Result<Gpu> {
        let backends = match &options.backend {
            Some(spec) => parse_backends(spec)?,
            None => wgpu::Backends::all(),
        };
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let adapters = pollster::block_on(instance.enumerate_adapters(backends));
        let mut seen = Vec::new();
        let mut candidates = Vec::new();
        for adapter in adapters {
            let info = adapter.get_info();
            seen.push(format!("{} ({:?})", info.name, info.backend));
            let name_ok = options
                .adapter_name
                .as_ref()
                .is_none_or(|n| info.name.to_lowercase().contains(&n.to_lowercase()));
            let compute_ok = adapter
                .get_downlevel_capabilities()
                .flags
                .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS);
            if name_ok && compute_ok {
                candidates.push(adapter);
            }
        }
        candidates.sort_by_key(|a| {
            let info = a.get_info();
            // Prefer Vulkan/Metal/DX12 over GL when the device type ties.
            (
                rank(info.device_type),
                u32::from(info.backend == wgpu::Backend::Gl),
            )
        });
        let Some(adapter) = candidates.into_iter().next() else {
            let hint = if seen.is_empty() {
                "no adapters at all; on Linux install a Vulkan driver (apt-get install mesa-vulkan-drivers) or try BACKDRIVE_BACKEND=gl".to_string()
            } else {
                format!(
                    "adapters present but none matched (backend {:?}, name {:?}) or supported compute: {}",
                    options.backend,
                    options.adapter_name,
                    seen.join(", ")
                )
            };
            return Err(Error::NoAdapter(hint));
        };
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("backdrive"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| Error::Gpu(format!("could not open {}: {e}", info.name)))?;
        // wgpu's default handler panics on any error no scope caught. Allocations run inside
        // error scopes ([`Gpu::allocation_scope`]) that turn failures into errors; anything
        // else is reported here rather than aborting the process.
        device.on_uncaptured_error(std::sync::Arc::new(|e: wgpu::Error| {
            eprintln!("error: GPU: {e}");
        }));
        Ok(Gpu {
            adapter,
            device,
            queue,
            info,
            limits,
            pipelines: Default::default(),
        })
    }

    /// One line naming the adapter, backend and driver.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?}, driver {} {})",
            self.info.name,
            self.info.backend,
            self.info.device_type,
            self.info.driver,
            self.info.driver_info
        )
    }

    /// Device memory that may be allocated, in bytes, when it is known: a CPU adapter
    /// (lavapipe) allocates from host memory, so its budget is the host's available memory
    /// (`MemAvailable` in /proc/meminfo). wgpu cannot query a discrete GPU's memory: `None`,
    /// and allocation failures are caught as they happen ([`Gpu::allocation_scope`]).
    pub fn memory_budget(&self) -> Option<u64> {
        if self.info.device_type != wgpu::DeviceType::Cpu {
            return None;
        }
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// Refuses an allocation of `bytes` (described by `what`) that exceeds
    /// [`Gpu::memory_budget`], naming the estimate and the device's limits.
    pub fn check_budget(&self, bytes: u64, what: &str) -> Result<()> {
        match self.memory_budget() {
            Some(budget) if bytes > budget => Err(Error::TooLarge(format!(
                "{what}: an estimated {} of device memory is needed, more than the {} available to {} \
                 (a CPU device: host memory; largest buffer {}, largest storage binding {}); \
                 use fewer instances",
                mib(bytes),
                mib(budget),
                self.info.name,
                mib(self.limits.max_buffer_size),
                mib(self.max_binding_bytes()),
            ))),
            _ => Ok(()),
        }
    }

    /// Runs `allocate` inside out-of-memory and validation error scopes: a buffer the device
    /// cannot create becomes [`Error::TooLarge`] naming `what`, instead of a panic in wgpu's
    /// uncaptured-error handler.
    pub fn allocation_scope<T>(&self, what: &str, allocate: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let invalid = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = allocate();
        let invalid = pollster::block_on(invalid.pop());
        let oom = pollster::block_on(oom.pop());
        match oom.or(invalid) {
            Some(e) => Err(Error::TooLarge(format!(
                "allocating {what} on {} failed: {e}",
                self.info.name
            ))),
            None => Ok(value),
        }
    }

    /// The largest storage buffer binding, in bytes.
    pub fn max_binding_bytes(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }
}

/// Bytes as MiB, or GiB when large.
fn mib(bytes: u64) -> String {
    let m = bytes as f64 / (1024.0 * 1024.0);
    if m >= 10240.0 {
        format!("{:.1} GiB", m / 1024.0)
    } else {
        format!("{m:.1} MiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_parse() {
        assert_eq!(parse_backends("vulkan").unwrap(), wgpu::Backends::VULKAN);
        assert_eq!(
            parse_backends("gl, vulkan").unwrap(),
            wgpu::Backends::GL | wgpu::Backends::VULKAN
        );
        assert!(parse_backends("glide").is_err());
    }
}
