//! The paper's Table 1, for `backdrive bench --table1` and `backdrive reproduce table1`:
//! runs [`backdrive::reproduce::table1`], prints the Markdown table, writes the JSON and the plot.

use std::sync::Arc;

use backdrive::engine::gpu::Gpu;
use serde::Serialize;

/// The adapter as the JSON reports record it.
#[derive(Debug, Serialize)]
pub(super) struct AdapterJson {
    name: String,
    backend: String,
    device_type: String,
    driver: String,
    driver_info: String,
    description: String,
}

pub(super) fn adapter_json(gpu: &Gpu) -> AdapterJson {
    AdapterJson {
        name: gpu.info.name.clone(),
        backend: format!("{:?}", gpu.info.backend),
        device_type: format!("{:?}", gpu.info.device_type),
        driver: gpu.info.driver.clone(),
        driver_info: gpu.info.driver_info.clone(),
        description: gpu.describe(),
    }
}

/// The paper's Table 1 (`bench --table1` and `reproduce table1`): prints the Markdown table and
/// writes the JSON and the plot when asked.
/// `steps` overrides the measured horizon (the seconds are extrapolated to 1000 steps).
pub(super) fn run(
    gpu: &Arc<Gpu>,
    quick: bool,
    steps: Option<u32>,
    json: Option<&std::path::Path>,
    plot: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let steps = steps.unwrap_or(if quick {
        backdrive::reproduce::table1::QUICK_STEPS
    } else {
        backdrive::reproduce::table1::PAPER_STEPS
    });
    let report = backdrive::reproduce::table1::run_with_steps(gpu.clone(), steps, &mut |line| {
        eprintln!("table 1: {line}");
    })?;
    println!();
    print!("{}", report.markdown());
    if let Some(path) = json {
        #[derive(Serialize)]
        struct Table1Json<'a> {
            backdrive_version: &'static str,
            adapter: AdapterJson,
            table1: &'a backdrive::reproduce::table1::Table1Report,
        }
        let json = Table1Json {
            backdrive_version: env!("CARGO_PKG_VERSION"),
            adapter: adapter_json(gpu),
            table1: &report,
        };
        let text = serde_json::to_string_pretty(&json)?;
        backdrive::io::files::write_atomic(path, text.as_bytes())?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = plot {
        let series: Vec<(String, Vec<(f64, f64)>)> = [true, false]
            .iter()
            .flat_map(|&g| {
                report
                    .controllers
                    .iter()
                    .map(move |c| (g, c.params))
                    .collect::<Vec<_>>()
            })
            .map(|(g, p)| {
                let points = report
                    .cells
                    .iter()
                    .filter(|c| c.gradient == g && c.params == p)
                    .map(|c| (c.robots as f64, c.seconds))
                    .collect();
                (
                    format!("{p} params, {}", if g { "grad" } else { "no grad" }),
                    points,
                )
            })
            .collect();
        backdrive::io::plot::line_chart_with(
            path,
            "Table 1: seconds for 1000 quadruped steps",
            "robots",
            "seconds",
            &series,
            &backdrive::io::plot::ChartOptions {
                log_x: true,
                log_y: true,
                ..Default::default()
            },
        )?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
