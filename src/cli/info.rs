//! `backdrive info` and `backdrive models`.

use backdrive::io::models;

/// Prints every adapter found, then the chosen one with its key limits.
pub fn run() -> anyhow::Result<()> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::all(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    println!("adapters found: {}", adapters.len());
    for adapter in &adapters {
        let info = adapter.get_info();
        let compute = adapter
            .get_downlevel_capabilities()
            .flags
            .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS);
        println!(
            "  - {} ({:?}, {:?}, driver {} {}){}",
            info.name,
            info.backend,
            info.device_type,
            info.driver,
            info.driver_info,
            if compute { "" } else { " [no compute shaders]" }
        );
    }
    for var in ["BACKDRIVE_BACKEND", "BACKDRIVE_ADAPTER"] {
        if let Ok(v) = std::env::var(var) {
            println!("{var}={v}");
        }
    }

    let gpu = super::open_gpu()?;
    let info = &gpu.info;
    let l = &gpu.limits;
    println!();
    println!("chosen adapter: {}", info.name);
    println!("  backend:      {:?}", info.backend);
    println!("  device type:  {:?}", info.device_type);
    println!("  driver:       {} {}", info.driver, info.driver_info);
    println!(
        "  vendor/device id: {:#06x}/{:#06x}",
        info.vendor, info.device
    );
    println!("limits:");
    let rows: [(&str, String); 7] = [
        (
            "max_storage_buffer_binding_size",
            format!(
                "{} ({})",
                l.max_storage_buffer_binding_size,
                super::mib(l.max_storage_buffer_binding_size)
            ),
        ),
        (
            "max_buffer_size",
            format!("{} ({})", l.max_buffer_size, super::mib(l.max_buffer_size)),
        ),
        (
            "max_compute_workgroups_per_dimension",
            l.max_compute_workgroups_per_dimension.to_string(),
        ),
        (
            "max_compute_invocations_per_workgroup",
            l.max_compute_invocations_per_workgroup.to_string(),
        ),
        (
            "max_storage_buffers_per_shader_stage",
            l.max_storage_buffers_per_shader_stage.to_string(),
        ),
        (
            "max_compute_workgroup_size_x",
            l.max_compute_workgroup_size_x.to_string(),
        ),
        (
            "max_compute_workgroup_storage_size",
            l.max_compute_workgroup_storage_size.to_string(),
        ),
    ];
    for (name, value) in rows {
        println!("  {name:<40} {value}");
    }

    // What the binding limit means in practice: instances per chunk for each shipped model.
    println!("instances per chunk (storage binding limit):");
    for name in models::names() {
        match models::builtin(name) {
            Ok(model) => {
                let compiled = backdrive::engine::layout::Compiled::new(&model);
                let n = backdrive::engine::sim::max_chunk_instances(&compiled, l);
                println!("  {name:<16} {}", super::thousands(n as f64));
            }
            Err(e) => println!("  {name:<16} (does not load: {e})"),
        }
    }
    Ok(())
}

/// Lists the shipped models with their sizes.
pub fn models() -> anyhow::Result<()> {
    println!(
        "{:<16} {:>6} {:>6} {:>9} {:>8}",
        "name", "bodies", "joints", "actuators", "dt"
    );
    for name in models::names() {
        let model = super::load_model(name)?;
        println!(
            "{:<16} {:>6} {:>6} {:>9} {:>8}",
            name,
            model.bodies.len(),
            model.joints.len(),
            model.actuators.len(),
            model.settings.dt
        );
    }
    println!("(a model argument may also be the path of a TOML file; see models/README.md)");
    Ok(())
}
