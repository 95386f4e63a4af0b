//! `backdrive rollout`: simulate a batch and write body trajectories as CSV and/or as a
//! self-contained HTML viewer.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use backdrive::io::viewer::{self, Trajectory, ViewerOptions};
use backdrive::model::ActuatorKind;
use backdrive::{BodyState, Model, Simulator};
use clap::{ValueEnum, value_parser};
use indicatif::ProgressBar;

use super::{mib, thousands};
use backdrive::io::files::AtomicFile;

/// CSV header of a rollout file.
pub const CSV_HEADER: &str = "step,time,instance,body,x,y,z,qx,qy,qz,qw,vx,vy,vz,wx,wy,wz";

/// Rollouts with at least this many robot-steps show a progress bar (on a terminal).
const PROGRESS_THRESHOLD: u64 = 20_000;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A model file (TOML, see models/README.md) or a shipped model's name (see `backdrive models`).
    pub model: String,
    /// Number of steps to simulate.
    #[arg(long, default_value_t = 500, value_parser = value_parser!(u32).range(1..))]
    pub steps: u32,
    /// Number of robot instances simulated in parallel.
    #[arg(long, short = 'n', default_value_t = 1, value_parser = value_parser!(u64).range(1..))]
    pub instances: u64,
    /// Write body trajectories to this CSV file (parent directories are created; the file is
    /// written as a hidden temporary file beside it and renamed when complete; a symbolic link
    /// is followed, directories and special files are refused). Without it only timings are
    /// printed.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write a self-contained HTML page that plays the rollout in 3D in a browser (no network
    /// needed; written atomically like the CSV). It holds the first 16 instances and at most
    /// 3000 of the recorded steps (see --every), evenly subsampled.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Record every K-th step (step 0 and the last step are always recorded).
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = value_parser!(u32).range(1..))]
    pub every: u32,
    /// Actuator commands: `sine` drives every actuator with a 1.5 Hz sine (phase shifted per
    /// actuator and per instance); `zero` holds every command at zero.
    #[arg(long, value_enum, default_value_t = Commands::Sine)]
    pub commands: Commands,
    /// Keep going when an instance's state becomes NaN or infinite (checked on the device
    /// after every step): finish the rollout and list those instances in a warning. Without
    /// it, such a state is an error naming the first instance, step, body and quantity, and
    /// no output is written.
    #[arg(long)]
    pub allow_non_finite: bool,
}

/// Steps per dispatch, and so between two non-finite checks, when commands are constant.
const CHECK_EVERY: u32 = 10;

/// Describes the non-finite instances: how many, and the first ones by step.
fn non_finite_summary(
    model: &Model,
    n: usize,
    found: &mut [backdrive::engine::finite_check::NonFinite],
    resolution: u32,
) -> String {
    found.sort_by_key(|f| (f.step, f.instance));
    let shown: Vec<String> = found
        .iter()
        .take(5)
        .map(|f| {
            let body = model.bodies.get(f.body).map_or("?", |b| b.name.as_str());
            let at = if resolution > 1 {
                format!("by step {} (checked every {resolution} steps)", f.step)
            } else {
                format!("at step {}", f.step)
            };
            format!(
                "instance {} {at}, body '{body}', {}",
                f.instance,
                f.quantity()
            )
        })
        .collect();
    format!(
        "{} of {n} instance(s) have a NaN or infinite state; first: {}{}",
        found.len(),
        shown.join("; "),
        if found.len() > shown.len() {
            format!("; and {} more", found.len() - shown.len())
        } else {
            String::new()
        }
    )
}

/// Actuator command patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Commands {
    /// A 1.5 Hz sine per actuator.
    Sine,
    /// All commands zero.
    Zero,
}

/// Frequency of the sine commands (the paper's gait clock).
const SINE_HZ: f32 = 1.5;

/// Sine commands at time `t` for `n` instances, instance-major. Amplitudes follow the actuator
/// kind: +-0.4 rad (or 40% of the joint's limit range, around its centre) for position servos,
/// half of min(max_velocity, 4) for velocity servos, half of max_force for force actuators.
pub fn sine_commands(model: &Model, n: usize, t: f32, out: &mut Vec<f32>) {
    use std::f32::consts::{FRAC_PI_2, TAU};
    out.clear();
    // Joint limits by name: a scan of the joints per actuator is quadratic in the model.
    let limits_of: std::collections::HashMap<&str, Option<[f32; 2]>> = model
        .joints
        .iter()
        .map(|j| (j.name.as_str(), j.limits))
        .collect();
    for i in 0..n {
        let instance_phase = TAU * i as f32 / n as f32;
        for (a, act) in model.actuators.iter().enumerate() {
            let (centre, amplitude) = match act.kind {
                ActuatorKind::PositionServo => {
                    let limits = limits_of.get(act.joint.as_str()).copied().flatten();
                    match limits {
                        Some([lo, hi]) => (0.5 * (lo + hi), 0.4 * 0.5 * (hi - lo)),
                        None => (0.0, 0.4),
                    }
                }
                ActuatorKind::VelocityServo => (0.0, 0.5 * act.max_velocity.min(4.0)),
                ActuatorKind::Force => (0.0, 0.5 * act.max_force),
                ActuatorKind::Affine => match &act.affine {
                    Some(law) if law.ctrl_range[1] - law.ctrl_range[0] < 1e6 => (
                        0.5 * (law.ctrl_range[0] + law.ctrl_range[1]),
                        0.4 * 0.5 * (law.ctrl_range[1] - law.ctrl_range[0]),
                    ),
                    _ => (0.0, 0.4),
                },
            };
            let phase = TAU * SINE_HZ * t + FRAC_PI_2 * a as f32 + instance_phase;
            out.push(centre + amplitude * phase.sin());
        }
    }
}

/// Model time after `step` steps, rounded to 1 ns so that `7 * 0.01` prints as `0.07`.
fn time_at(step: u32, dt: f64) -> f64 {
    (f64::from(step) * dt * 1e9).round() / 1e9
}

/// Appends one CSV row per body and instance.
fn write_rows(
    w: &mut impl Write,
    step: u32,
    time: f64,
    n_instances: usize,
    body_names: &[String],
    states: &[BodyState],
) -> std::io::Result<()> {
    let n_bodies = body_names.len();
    for i in 0..n_instances {
        for (b, name) in body_names.iter().enumerate() {
            let s = &states[i * n_bodies + b];
            let [x, y, z] = s.position;
            let [qx, qy, qz, qw] = s.orientation;
            let [vx, vy, vz] = s.linear_velocity;
            let [wx, wy, wz] = s.angular_velocity;
            writeln!(
                w,
                "{step},{time},{i},{name},{x},{y},{z},{qx},{qy},{qz},{qw},{vx},{vy},{vz},{wx},{wy},{wz}"
            )?;
        }
    }
    Ok(())
}

/// A body name as a CSV field (quoted when it holds a comma, quote or line break).
fn csv_field(name: &str) -> String {
    if name.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", name.replace('"', "\"\""))
    } else {
        name.to_string()
    }
}

/// Opens the device, prints the adapter and the model, creates the batch and warms it up, then
/// turns on the device's non-finite state check.
fn open_simulator(model: &Model, n: usize) -> anyhow::Result<Simulator> {
    let gpu = super::open_gpu()?;
    println!("adapter: {}", gpu.describe());
    println!(
        "model '{}': {} bodies, {} joints, {} actuators, dt {} s",
        model.name,
        model.bodies.len(),
        model.joints.len(),
        model.actuators.len(),
        model.settings.dt
    );
    if !model.world_shapes.is_empty() {
        println!(
            "static geometry: {} world shape(s), {} candidate contact(s) with the bodies' \
             contact points (3 rows each), ground plane z = 0 {}",
            model.world_shapes.len(),
            model.world_contact_count(),
            if model.settings.ground { "on" } else { "off" }
        );
    }
    let mut sim = Simulator::new(gpu, model, n)
        .with_context(|| format!("creating {n} instances of '{}'", model.name))?;
    println!(
        "device memory: {} for {} instances in {} chunk(s)",
        mib(sim.device_bytes()),
        thousands(n as f64),
        sim.n_chunks()
    );

    // Warm-up: the first dispatch includes the driver's shader compilation (seconds on
    // lavapipe with a cold cache). Run one step and restore the state so that the timings
    // below measure simulation only.
    let t0 = Instant::now();
    let initial = sim.read_state_raw().context("reading the initial state")?;
    sim.step(1).context("warm-up step")?;
    sim.write_state_raw(&initial)
        .context("restoring the initial state")?;
    // From here on, states are checked on the device after every dispatch; steps count from
    // 1. Sine commands step one step per call, so the step found is exact; constant commands
    // keep 10 steps per dispatch, since a dispatch per step would halve the throughput of
    // cheap models (examples/finite_check_cost.rs).
    sim.enable_finite_check()
        .context("creating the non-finite state check")?;
    sim.set_steps_per_dispatch(CHECK_EVERY);
    println!(
        "warm-up (pipeline compile and first dispatch): {:.3} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(sim)
}

/// What recording a step needs: which steps go to the viewer, how rows are labelled, and how
/// a non-finite state is reported.
struct Recording<'a> {
    args: &'a Args,
    model: &'a Model,
    n: usize,
    body_names: Vec<String>,
    dt: f64,
    html_stride: u32,
    /// Steps between two non-finite checks.
    resolution: u32,
}

impl Recording<'_> {
    /// Fails on a non-finite state unless `--allow-non-finite` was given.
    fn diverged(&self, sim: &Simulator) -> anyhow::Result<()> {
        if self.args.allow_non_finite {
            return Ok(());
        }
        let mut found = sim.non_finite().context("reading the non-finite check")?;
        if found.is_empty() {
            return Ok(());
        }
        anyhow::bail!(
            "{} (the simulation diverged; try a smaller dt or more solver iterations, or \
             --allow-non-finite to finish the rollout anyway); nothing was written",
            non_finite_summary(self.model, self.n, &mut found, self.resolution)
        )
    }

    /// Records `step` into the CSV and the viewer's trajectory; returns the CSV rows written.
    fn record(
        &self,
        sim: &Simulator,
        csv: &mut Option<AtomicFile>,
        trajectory: &mut Option<Trajectory>,
        step: u32,
    ) -> anyhow::Result<u64> {
        let args = self.args;
        let html_frame = trajectory.is_some()
            && (step == args.steps || (step / args.every).is_multiple_of(self.html_stride));
        if csv.is_none() && !html_frame {
            return Ok(0);
        }
        let states = sim.body_states().context("reading body states back")?;
        self.diverged(sim)?;
        if html_frame && let Some(trajectory) = trajectory.as_mut() {
            trajectory.push(time_at(step, self.dt), &states)?;
        }
        let Some(file) = csv.as_mut() else {
            return Ok(0);
        };
        let what = file.describe();
        write_rows(
            file.writer(),
            step,
            time_at(step, self.dt),
            self.n,
            &self.body_names,
            &states,
        )
        .context(what)?;
        Ok(states.len() as u64)
    }
}

/// Steps the whole rollout in calls of `block` steps (one with sine commands), recording
/// every `--every`-th step; returns the CSV rows written and the time spent stepping.
fn step_and_record(
    rec: &Recording<'_>,
    sim: &mut Simulator,
    sine: bool,
    block: u32,
    progress: &ProgressBar,
    csv: &mut Option<AtomicFile>,
    trajectory: &mut Option<Trajectory>,
) -> anyhow::Result<(u64, Duration)> {
    let args = rec.args;
    let mut commands = Vec::new();
    let mut stepping = Duration::ZERO;
    let mut rows: u64 = 0;
    let mut k: u32 = 0;
    while k < args.steps {
        // Sine commands change every step; constant commands let one call run a whole block.
        let seg = if sine {
            1
        } else {
            (block - k % block).min(args.steps - k)
        };
        let t0 = Instant::now();
        if sine {
            sine_commands(
                rec.model,
                rec.n,
                (f64::from(k) * rec.dt) as f32,
                &mut commands,
            );
            sim.set_commands(&commands)?;
        }
        sim.step(seg)
            .with_context(|| format!("stepping from step {k}"))?;
        stepping += t0.elapsed();
        k += seg;
        if k.is_multiple_of(args.every) || k == args.steps {
            rows += rec.record(sim, csv, trajectory, k)?;
        }
        progress.set_position(u64::from(k));
    }
    Ok((rows, stepping))
}

/// Renders the viewer page and writes it atomically.
fn write_viewer(
    args: &Args,
    model: &Model,
    n: usize,
    mut file: AtomicFile,
    trajectory: &Trajectory,
) -> anyhow::Result<()> {
    let options = ViewerOptions {
        title: Some(format!(
            "{}: {} steps x {} instance(s), {} commands",
            model.name,
            args.steps,
            n,
            match args.commands {
                Commands::Sine => "sine",
                Commands::Zero => "zero",
            }
        )),
        ..ViewerOptions::default()
    };
    let page =
        viewer::render_html(model, trajectory, &options).context("building the HTML viewer")?;
    let what = file.describe();
    file.writer().write_all(page.as_bytes()).context(what)?;
    let path = file.commit()?;
    println!(
        "wrote a viewer of {} frames x {} instance(s) ({} KiB) to {}",
        viewer::embedded_frames(trajectory, &options),
        viewer::embedded_instances(trajectory, &options),
        page.len().div_ceil(1024),
        path.display()
    );
    Ok(())
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    super::check_outputs(&[
        ("--csv", args.csv.as_deref()),
        ("--html", args.html.as_deref()),
    ])?;
    let model = super::load_model(&args.model)?;
    let n = usize::try_from(args.instances).context("--instances is too large")?;
    // Open the output before the (possibly long) simulation so that a bad path fails fast.
    let mut csv = args.csv.as_deref().map(AtomicFile::create).transpose()?;
    let mut html = args.html.as_deref().map(AtomicFile::create).transpose()?;

    let mut sim = open_simulator(&model, n)?;

    let body_names: Vec<String> = model.bodies.iter().map(|b| csv_field(&b.name)).collect();
    // The time step as written (0.01, not 0.009999999776...), so that times print cleanly.
    let dt: f64 = model.settings.dt.to_string().parse().unwrap_or(0.0);
    let sine = args.commands == Commands::Sine && !model.actuators.is_empty();

    let total = u64::from(args.steps);
    let progress = if total * args.instances >= PROGRESS_THRESHOLD {
        backdrive::io::progress::bar(total, "steps", "")
    } else {
        ProgressBar::hidden()
    };

    // The viewer keeps every `html_stride`-th record (and the last), at most
    // DEFAULT_MAX_FRAMES of them.
    let n_records = args.steps / args.every + 1 + u32::from(!args.steps.is_multiple_of(args.every));
    let html_stride = n_records.div_ceil(viewer::DEFAULT_MAX_FRAMES as u32).max(1);
    let mut trajectory = html.as_ref().map(|_| Trajectory::for_model(&model, n));

    let start = Instant::now();
    let mut rows: u64 = 0;
    // Without an output, step in blocks for the progress bar; with one, stop at every record
    // (the viewer alone needs only every `html_stride`-th one).
    let block = if csv.is_some() {
        args.every
    } else if html.is_some() {
        args.every.saturating_mul(html_stride)
    } else {
        100
    };
    // Steps between two checks: each call of `step` ends with one.
    let resolution = if sine { 1 } else { block.min(CHECK_EVERY) };
    let rec = Recording {
        args,
        model: &model,
        n,
        body_names,
        dt,
        html_stride,
        resolution,
    };

    if let Some(file) = csv.as_mut() {
        let what = file.describe();
        writeln!(file.writer(), "{CSV_HEADER}").context(what)?;
    }
    rows += rec.record(&sim, &mut csv, &mut trajectory, 0)?;

    let (stepped_rows, stepping) = step_and_record(
        &rec,
        &mut sim,
        sine,
        block,
        &progress,
        &mut csv,
        &mut trajectory,
    )?;
    rows += stepped_rows;
    progress.finish_and_clear();
    rec.diverged(&sim)?;
    let mut non_finite = sim.non_finite().context("reading the non-finite check")?;
    let written = csv.take().map(AtomicFile::commit).transpose()?;
    let wall = start.elapsed();

    let robot_steps = total as f64 * n as f64;
    println!(
        "simulated {} steps x {} instances ({:.2} s of model time) in {:.3} s of stepping: \
         {} robot-steps/s",
        args.steps,
        thousands(n as f64),
        total as f64 * dt,
        stepping.as_secs_f64(),
        thousands(robot_steps / stepping.as_secs_f64().max(1e-9))
    );
    println!(
        "rollout wall time {:.3} s (stepping, commands, readback, CSV): {} robot-steps/s",
        wall.as_secs_f64(),
        thousands(robot_steps / wall.as_secs_f64().max(1e-9))
    );
    if let Some(path) = written {
        println!(
            "wrote {} rows ({} bodies x {} instances x {} records) to {}",
            thousands(rows as f64),
            model.bodies.len(),
            thousands(n as f64),
            rows / (model.bodies.len() * n).max(1) as u64,
            path.display()
        );
    }
    if let (Some(file), Some(trajectory)) = (html.take(), trajectory) {
        write_viewer(args, &model, n, file, &trajectory)?;
    }
    if !non_finite.is_empty() {
        eprintln!(
            "warning: {} (the simulation diverged; try a smaller dt or more solver iterations); \
             their rows hold NaN or infinite values",
            non_finite_summary(&model, n, &mut non_finite, resolution)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_commands_have_one_value_per_actuator_and_instance() {
        for name in backdrive::io::models::names() {
            let model = backdrive::io::models::builtin(name).unwrap();
            let mut out = Vec::new();
            sine_commands(&model, 3, 0.25, &mut out);
            assert_eq!(out.len(), 3 * model.actuators.len(), "{name}");
            assert!(out.iter().all(|v| v.is_finite()), "{name}");
        }
    }

    #[test]
    fn times_print_cleanly() {
        assert_eq!(time_at(7, 0.01).to_string(), "0.07");
        assert_eq!(time_at(1000, 0.001).to_string(), "1");
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("torso"), "torso");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
    }
}
