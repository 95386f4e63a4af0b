//! `backdrive reproduce`: the paper's experiments with every method side by side.

use std::path::PathBuf;

use anyhow::Context;
use backdrive::reproduce::{self, ExperimentResult, Options};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Experiment: ball-throw, arm-reach, arm-reach-random, quadruped, cartpole, ant, all, or
    /// table1 (the paper's Table 1 timings; `--json` and `--quick` apply, the methods' options
    /// do not).
    pub experiment: String,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the result tables as Markdown to this file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Most model evaluations (rollouts) per method (default: the experiment's).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub budget: Option<u64>,
    /// Stop each method after this many seconds of wall time.
    #[arg(long)]
    pub time_limit: Option<f64>,
    /// Seed of CMA-ES and of the policies' initial parameters.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// CI-sized variant: small budgets and shorter episodes.
    #[arg(long)]
    pub quick: bool,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    super::check_outputs(&[
        ("--json", args.json.as_deref()),
        ("--markdown", args.markdown.as_deref()),
    ])?;
    if args.experiment == "table1" {
        let gpu = super::open_gpu()?;
        println!("adapter: {}", gpu.describe());
        return super::table1::run(&gpu, args.quick, None, args.json.as_deref(), None);
    }
    let names: Vec<&str> = if args.experiment == "all" {
        reproduce::names()
    } else if reproduce::names().contains(&args.experiment.as_str()) {
        vec![args.experiment.as_str()]
    } else {
        anyhow::bail!(
            "unknown experiment '{}': expected one of {}, all or table1",
            args.experiment,
            reproduce::names().join(", ")
        );
    };
    let gpu = super::open_gpu()?;
    println!("adapter: {}", gpu.describe());
    let options = Options {
        budget: args.budget,
        seed: args.seed,
        quick: args.quick,
        progress: true,
        time_limit: args.time_limit,
    };
    let mut results: Vec<ExperimentResult> = Vec::new();
    for name in names {
        let r = reproduce::run(gpu.clone(), name, &options)
            .with_context(|| format!("running experiment '{name}'"))?;
        println!("\n{}", reproduce::text_table(&r));
        results.push(r);
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&results).context("serialising the results")?;
        backdrive::io::files::write_atomic(path, text.as_bytes())?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.markdown {
        backdrive::io::files::write_atomic(path, reproduce::markdown(&results).as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
