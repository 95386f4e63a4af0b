//! Command-line front end (binary only; not part of the library API).

mod bench;
mod gradcheck;
mod info;
mod reproduce;
mod rollout;
mod table1;
mod train;

use std::sync::Arc;

use anyhow::Context;
use backdrive::engine::gpu::Gpu;
use clap::{Parser, Subcommand};

/// Differentiable, GPU-batched rigid-body robot simulation.
///
/// The GPU adapter is chosen automatically (discrete, then integrated, virtual, CPU); set
/// BACKDRIVE_BACKEND (vulkan, metal, dx12, gl) and/or BACKDRIVE_ADAPTER (a substring of the
/// adapter name, e.g. llvmpipe) to override the choice.
#[derive(Debug, Parser)]
#[command(name = "backdrive", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the chosen GPU adapter, its key limits, and every adapter found.
    Info,
    /// List the shipped models.
    Models,
    /// Simulate a batch of robots; write body trajectories as CSV and/or a 3D viewer (HTML).
    Rollout(rollout::Args),
    /// Measure forward throughput (robot-steps per second) at several batch sizes.
    Bench(bench::Args),
    /// Compare the adjoint gradient with central finite differences, per parameter group.
    Gradcheck(gradcheck::Args),
    /// List the shipped tasks (name and description).
    Tasks,
    /// Train a policy by gradient descent through the simulation.
    Train(train::Args),
    /// Run the paper's experiments with gradients, CMA-ES and finite differences side by side.
    Reproduce(reproduce::Args),
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Info => info::run(),
        Command::Models => info::models(),
        Command::Rollout(args) => rollout::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Gradcheck(args) => gradcheck::run(&args),
        Command::Tasks => train::list_tasks(),
        Command::Train(args) => train::run(&args),
        Command::Reproduce(args) => reproduce::run(&args),
    }
}

/// Checks every named output path before the work (see `backdrive::io::files::prepare_outputs`):
/// writable, no directory or special file, no two naming the same file.
fn check_outputs(outputs: &[(&str, Option<&std::path::Path>)]) -> anyhow::Result<()> {
    let given: Vec<(&str, &std::path::Path)> = outputs
        .iter()
        .filter_map(|(option, path)| path.map(|p| (*option, p)))
        .collect();
    backdrive::io::files::prepare_outputs(&given).context("checking the output paths")?;
    Ok(())
}

/// Opens the adapter chosen by the environment, with a hint on how to choose another.
fn open_gpu() -> anyhow::Result<Arc<Gpu>> {
    let options = backdrive::engine::gpu::GpuOptions::from_env();
    let gpu = Gpu::with_options(&options).context(
        "opening a GPU adapter (see `backdrive info`; BACKDRIVE_BACKEND and BACKDRIVE_ADAPTER \
         choose one)",
    )?;
    Ok(Arc::new(gpu))
}

/// Loads a model file or shipped model, with the argument named in errors; prints the MJCF
/// importer's warnings. `BACKDRIVE_MJCF_IGNORE_UNSUPPORTED=1` turns its errors about features
/// backdrive cannot simulate into warnings.
fn load_model(spec: &str) -> anyhow::Result<backdrive::Model> {
    let ignore_unsupported =
        std::env::var("BACKDRIVE_MJCF_IGNORE_UNSUPPORTED").is_ok_and(|v| v == "1");
    let loaded = backdrive::io::models::load_with_warnings(spec, ignore_unsupported)
        .with_context(|| format!("loading model '{spec}'"))?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(loaded.model)
}

/// `1234567` -> `1,234,567`.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes as MiB with two decimals.
fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.0), "1,234,567");
    }

    #[test]
    fn command_line_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "backdrive",
            "rollout",
            "ball",
            "--steps",
            "20",
            "--csv",
            "x.csv",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Rollout(_)));
        assert!(Cli::try_parse_from(["backdrive", "rollout", "ball", "--steps", "0"]).is_err());
    }
}
