//! `backdrive train`: gradient descent on a policy through the simulation.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use backdrive::BodyState;
use backdrive::learn::algorithm::Algorithm;
use backdrive::learn::shac::ShacTrainer;
use backdrive::learn::tasks;
use backdrive::learn::train::{CheckpointInfo, IterationStats, TrainOptions, Trainer};

/// What `train` drives: backpropagation through episodes ([`Trainer`]) or the short-horizon
/// actor-critic ([`ShacTrainer`]), by the task's algorithm.
trait Learner {
    fn step(&mut self) -> backdrive::error::Result<IterationStats>;
    fn iteration(&self) -> u32;
    fn save(&self, dir: &Path) -> backdrive::error::Result<()>;
    fn load(&mut self, dir: &Path) -> backdrive::error::Result<()>;
    fn record(&mut self, every: u32) -> backdrive::error::Result<Vec<Vec<BodyState>>>;
    fn n_params(&self) -> usize;
    /// A line worth printing after the last step (an episode's result), if any.
    fn note(&self) -> Option<String>;
    /// What the trained policy achieves, measured after training, if the learner measures it.
    fn evaluation(&mut self) -> backdrive::error::Result<Option<String>>;
    /// Where the last iteration's wall time went, phase by phase, if the learner times it.
    fn phase_times(&self) -> Option<String> {
        None
    }
}

impl Learner for Trainer {
    fn step(&mut self) -> backdrive::error::Result<IterationStats> {
        Trainer::step(self)
    }
    fn iteration(&self) -> u32 {
        Trainer::iteration(self)
    }
    fn save(&self, dir: &Path) -> backdrive::error::Result<()> {
        Trainer::save(self, dir)
    }
    fn load(&mut self, dir: &Path) -> backdrive::error::Result<()> {
        Trainer::load(self, dir)
    }
    fn record(&mut self, every: u32) -> backdrive::error::Result<Vec<Vec<BodyState>>> {
        Trainer::record(self, every)
    }
    fn n_params(&self) -> usize {
        self.layout().n_params
    }
    fn note(&self) -> Option<String> {
        None
    }
    fn evaluation(&mut self) -> backdrive::error::Result<Option<String>> {
        Ok(None)
    }
}

impl Learner for ShacTrainer {
    fn step(&mut self) -> backdrive::error::Result<IterationStats> {
        ShacTrainer::step(self)
    }
    fn iteration(&self) -> u32 {
        ShacTrainer::iteration(self)
    }
    fn save(&self, dir: &Path) -> backdrive::error::Result<()> {
        ShacTrainer::save(self, dir)
    }
    fn load(&mut self, dir: &Path) -> backdrive::error::Result<()> {
        ShacTrainer::load(self, dir)
    }
    fn record(&mut self, every: u32) -> backdrive::error::Result<Vec<Vec<BodyState>>> {
        ShacTrainer::record(self, every)
    }
    fn phase_times(&self) -> Option<String> {
        Some(ShacTrainer::phase_times(self).line())
    }
    fn n_params(&self) -> usize {
        self.layout().n_params
    }
    fn note(&self) -> Option<String> {
        // Every window's diagnostics: whether the critic tracks the returns, the actor's
        // gradient scale, terminations and the observation normaliser.
        let r = self.last_report();
        let mut line = r.line(self.iteration());
        if let Some(e) = r.episode_mean_reward {
            line.push_str(&format!(
                "\nwindow {}: episode done, mean reward per step {e:.4} over it ({} robot-steps so far)",
                self.iteration(),
                self.robot_steps(),
            ));
        }
        Some(line)
    }
    fn evaluation(&mut self) -> backdrive::error::Result<Option<String>> {
        let started = std::time::Instant::now();
        let evaluation = self.evaluation(1)?;
        let reward = evaluation.mean_reward;
        let speed = evaluation
            .forward_speed
            .zip(evaluation.whole_episode_speed)
            .map(|(v, w)| {
                format!(
                    ", average forward speed {v:.4} m/s ({w:.4} m/s over the whole episode, terminated robots running on)"
                )
            })
            .unwrap_or_default();
        Ok(Some(format!(
            "the trained policy: mean reward per step {reward:.4}{speed} over one fresh {}-step episode of {} robots, \
             {:.1}% of its robot-steps before a termination (evaluated in {:.1} s); trained on {} robot-steps",
            self.task().horizon,
            self.instances(),
            100.0 * evaluation.running,
            started.elapsed().as_secs_f64(),
            self.robot_steps()
        )))
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Task to train: a task file (TASK.toml, see tasks/README.md) or a shipped task's name
    /// (quadruped, arm-reach, arm-reach-random, cartpole-balance, cartpole-swingup,
    /// quadruped-run, ant-run; `backdrive tasks` lists them). Not a model: a task file names
    /// its model, sensors, loss or reward, policy and optimiser.
    pub task: String,
    /// Robots per iteration (default: the checkpoint's when resuming, else the task's).
    #[arg(long, short = 'n')]
    pub instances: Option<usize>,
    /// Iterations to run in total, counting those of a resumed run (default: the task's).
    #[arg(long)]
    pub iters: Option<u32>,
    /// Seed of the initial policy and of the batch randomisation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output directory for the log, checkpoints, plot and viewer (default out/train-TASK).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run saved in this directory (writes there unless --out is given; an --out
    /// elsewhere that already holds a run is refused). The batch size is the checkpoint's.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Save a checkpoint every this many iterations (and at the end).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub save_every: u32,
    /// Truncated backpropagation through time: cut the gradient flowing back through the
    /// episode every this many steps (default: the task's, none for the shipped tasks). Keeps
    /// long contact-rich episodes from overflowing the adjoint, at the cost of an inexact
    /// gradient.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub truncation: Option<u32>,
}

const LOG_HEADER: &str = "iteration,loss,grad_norm,learning_rate,seconds";

/// The rows of a training log, in order, up to the first line that is not a whole row (a
/// crash can cut the last line short, and a file edited by hand can hold anything): the rows
/// and, when a line was dropped, a warning naming its file and line.
fn read_log(path: &Path) -> anyhow::Result<(Vec<IterationStats>, Option<String>)> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows: Vec<IterationStats> = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let row = record.as_ref().ok().and_then(log_row);
        match row {
            Some(row)
                if row.iteration == rows.last().map_or(row.iteration, |r| r.iteration + 1) =>
            {
                rows.push(row)
            }
            _ => {
                // A record the reader could not split has no position of its own: count
                // records after the header instead.
                let line = record
                    .as_ref()
                    .ok()
                    .and_then(|r| r.position())
                    .map_or(n + 2, |p| p.line() as usize);
                let shown = text.lines().nth(line - 1).unwrap_or_default();
                return Ok((
                    rows,
                    Some(format!(
                        "{}:{line}: not a log row: '{shown}'",
                        path.display()
                    )),
                ));
            }
        }
    }
    Ok((rows, None))
}

fn log_row(record: &csv::StringRecord) -> Option<IterationStats> {
    if record.len() != 5 {
        return None;
    }
    let number = |k: usize| record.get(k)?.parse::<f32>().ok();
    Some(IterationStats {
        iteration: record.get(0)?.parse().ok()?,
        loss: number(1)?,
        grad_norm: number(2)?,
        learning_rate: number(3)?,
        seconds: number(4)?,
    })
}

/// The log's rows up to the checkpoint's iteration, with a warning when the log does not
/// reach it whole. The checkpoint, not the log, decides where training resumes.
fn log_until(
    rows: Vec<IterationStats>,
    bad_line: Option<String>,
    iteration: u32,
) -> (Vec<IterationStats>, Option<String>) {
    let kept: Vec<IterationStats> = rows
        .into_iter()
        .filter(|r| r.iteration <= iteration)
        .collect();
    let reaches = kept.last().map_or(0, |r| r.iteration) == iteration;
    let warning = match (bad_line, reaches) {
        (Some(bad), true) => Some(format!(
            "{bad}; the log is cut there, and its rows up to the checkpoint's iteration \
             {iteration} are whole"
        )),
        (Some(bad), false) => Some(format!(
            "{bad}; the log is cut there, so it lacks the rows after iteration {} up to the \
             checkpoint's {iteration} (the training itself resumes intact)",
            kept.last().map_or(0, |r| r.iteration)
        )),
        (None, false) if iteration > 0 => Some(format!(
            "the log holds rows up to iteration {} of the checkpoint's {iteration} (the \
             training itself resumes intact)",
            kept.last().map_or(0, |r| r.iteration)
        )),
        (None, _) => None,
    };
    (kept, warning)
}

fn log_line(s: &IterationStats) -> String {
    format!(
        "{},{},{},{},{:.3}",
        s.iteration, s.loss, s.grad_norm, s.learning_rate, s.seconds
    )
}

/// The output directory: `--out`, else the resumed run's, else `out/train-TASK`; refuses one
/// that already holds another run.
fn output_dir(args: &Args, task_name: &str) -> anyhow::Result<PathBuf> {
    let out = args
        .out
        .clone()
        .or_else(|| args.resume.clone())
        .unwrap_or_else(|| PathBuf::from(format!("out/train-{}", task_name)));
    let same_dir = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    let resuming_in_place = args.resume.as_deref().is_some_and(|r| same_dir(r, &out));
    if !resuming_in_place && Trainer::has_checkpoint(&out) {
        bail!(
            "{} already holds a training run; continue it with --resume {} or choose another --out",
            out.display(),
            out.display()
        );
    }
    Ok(out)
}

/// Checks that every file the run writes into `out` can be written, before any work.
fn check_output_files(out: &Path) -> anyhow::Result<()> {
    let outputs: Vec<PathBuf> = [
        "log.csv",
        "checkpoint.bin",
        "loss.png",
        "grad_norm.png",
        "policy.html",
    ]
    .iter()
    .map(|name| out.join(name))
    .collect();
    let named: Vec<(&str, Option<&Path>)> = outputs
        .iter()
        .map(|p| ("--out", Some(p.as_path())))
        .collect();
    super::check_outputs(&named)?;
    Ok(())
}

/// Loads the checkpoint in `dir` into `trainer`; returns the log rows up to its iteration.
fn resume(trainer: &mut dyn Learner, dir: &Path) -> anyhow::Result<Vec<IterationStats>> {
    trainer
        .load(dir)
        .with_context(|| format!("resuming from {}", dir.display()))?;
    let (rows, bad_line) = read_log(&dir.join("log.csv"))?;
    let (kept, warning) = log_until(rows, bad_line, trainer.iteration());
    if let Some(warning) = warning {
        println!("warning: {warning}");
    }
    println!(
        "resumed at iteration {} from {}",
        trainer.iteration(),
        dir.display()
    );
    Ok(kept)
}

/// Writes the log with the rows kept so far (atomically) and opens it for appending; returns
/// its path and the open file.
fn open_log(out: &Path, history: &[IterationStats]) -> anyhow::Result<(PathBuf, std::fs::File)> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let log_path = out.join("log.csv");
    let mut text = String::from(LOG_HEADER);
    text.push('\n');
    for s in history {
        text.push_str(&log_line(s));
        text.push('\n');
    }
    backdrive::io::files::write_atomic(&log_path, text.as_bytes())?;
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    Ok((log_path, log))
}

/// Runs the iterations up to `total`, logging each and saving every `--save-every` and at the
/// end.
fn train_iterations(
    args: &Args,
    trainer: &mut dyn Learner,
    total: u32,
    out: &Path,
    log: &mut std::fs::File,
    history: &mut Vec<IterationStats>,
) -> anyhow::Result<()> {
    let done = trainer.iteration();
    let bar = backdrive::io::progress::bar(u64::from(total.max(done)), "it", "");
    bar.set_position(u64::from(done));
    let mut zero_gradients = 0u32;
    // Per-phase wall time of every iteration, for finding where the time goes.
    let profile = std::env::var_os("BACKDRIVE_PROFILE").is_some_and(|v| !v.is_empty());
    while trainer.iteration() < total {
        let stats = trainer.step().context("training iteration")?;
        writeln!(log, "{}", log_line(&stats)).context("writing the log")?;
        if stats.grad_norm == 0.0 {
            // Exact zeros mean the loss is flat in every parameter: a dead policy that
            // further iterations cannot revive, so say so at once rather than in the plot.
            if zero_gradients == 0 {
                bar.println(format!(
                    "warning: iteration {}: the gradient is exactly zero. The loss does not depend \
                     on the policy here: at every step every actuator is saturated (a servo's \
                     target speed or force at its clamp), so no command change moves anything. \
                     Try a smaller learning rate or resume from an earlier checkpoint.",
                    stats.iteration
                ));
            }
            zero_gradients += 1;
        }
        bar.set_message(format!(
            "loss {:.4}  |grad| {:.3}",
            stats.loss, stats.grad_norm
        ));
        bar.inc(1);
        if let Some(note) = trainer.note() {
            // Printed beside the bar, and also when it is hidden (output not a terminal).
            bar.suspend(|| println!("{note}"));
        }
        history.push(stats);
        let saving = std::time::Instant::now();
        if stats.iteration % args.save_every == 0 || stats.iteration == total {
            trainer.save(out).context("saving the checkpoint")?;
        }
        if profile && let Some(phases) = trainer.phase_times() {
            bar.suspend(|| {
                println!(
                    "iteration {} phases: {phases}; checkpoint {:.3} s",
                    stats.iteration,
                    saving.elapsed().as_secs_f64()
                )
            });
        }
    }
    bar.finish();
    if zero_gradients > 0 {
        println!(
            "{zero_gradients} of {} iterations had an exactly zero gradient",
            trainer.iteration() - done
        );
    }
    if trainer.iteration() == done && done > 0 {
        trainer.save(out)?;
    }
    Ok(())
}

/// Prints the first and last loss and plots the loss and the gradient norm.
fn write_plots(
    history: &[IterationStats],
    out: &Path,
    task_name: &str,
    log_path: &Path,
) -> anyhow::Result<()> {
    if let (Some(first), Some(last)) = (history.first(), history.last()) {
        println!(
            "loss {:.5} at iteration {} -> {:.5} at iteration {}",
            first.loss, first.iteration, last.loss, last.iteration
        );
        let points = |f: fn(&IterationStats) -> f32| {
            history
                .iter()
                .map(|s| (f64::from(s.iteration), f64::from(f(s))))
                .collect::<Vec<_>>()
        };
        let plot = out.join("loss.png");
        backdrive::io::plot::line_chart(
            &plot,
            &format!("backdrive train {}", task_name),
            "iteration",
            "mean loss",
            &[("loss", points(|s| s.loss))],
            false,
        )?;
        backdrive::io::plot::line_chart(
            out.join("grad_norm.png"),
            &format!("backdrive train {}: gradient norm", task_name),
            "iteration",
            "|gradient| before clipping",
            &[("gradient norm", points(|s| s.grad_norm))],
            true,
        )?;
        println!(
            "wrote {}, {} and grad_norm.png",
            log_path.display(),
            plot.display()
        );
    }
    Ok(())
}

/// Records an episode of the trained policy and writes it as a viewer page.
fn write_policy_viewer(
    trainer: &mut dyn Learner,
    task: &tasks::Task,
    instances: usize,
    out: &Path,
) -> anyhow::Result<()> {
    let frames = trainer.record(2).context("recording the trained policy")?;
    let model = &task.model;
    let mut trajectory = backdrive::io::viewer::Trajectory::for_model(model, instances);
    let dt = f64::from(model.settings.dt);
    for (k, bodies) in frames.iter().enumerate() {
        let step = (k as u32 * 2).min(task.horizon);
        trajectory.push(f64::from(step) * dt, bodies)?;
    }
    let html = out.join("policy.html");
    backdrive::io::viewer::write_html(&html, model, &trajectory, &Default::default())?;
    println!(
        "wrote {} (the trained policy, {} robots)",
        html.display(),
        instances.min(16)
    );
    Ok(())
}

/// `backdrive tasks`: the shipped tasks with their descriptions.
pub fn list_tasks() -> anyhow::Result<()> {
    println!("{:<18} {:>7} description", "name", "horizon");
    for name in tasks::names() {
        let task = tasks::builtin(name)?;
        println!("{:<18} {:>7} {}", name, task.horizon, task.description);
    }
    println!("(train also takes a task file, TASK.toml; see tasks/README.md)");
    Ok(())
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let mut task = tasks::load(&args.task)?;
    if args.truncation.is_some() {
        task.truncation = args.truncation;
    }
    let out = output_dir(args, &task.name)?;
    // What the checkpoint holds decides the batch of a resumed run (and refuses a damaged one
    // before anything else is done).
    let checkpoint = args
        .resume
        .as_deref()
        .map(|dir| {
            let info: backdrive::error::Result<CheckpointInfo> = match task.algorithm {
                Algorithm::Bptt => Trainer::checkpoint_info(dir),
                Algorithm::Shac(_) => ShacTrainer::checkpoint_info(dir),
            };
            info.with_context(|| format!("resuming from {}", dir.display()))
        })
        .transpose()?;
    let instances = match (&checkpoint, args.instances) {
        (Some(info), None) => info.instances,
        (_, Some(n)) => n,
        (None, None) => task.instances,
    };
    let total = args.iters.unwrap_or(task.iterations);
    check_output_files(&out)?;
    let gpu = super::open_gpu()?;
    println!("adapter: {}", gpu.describe());
    let options = TrainOptions {
        instances,
        seed: args.seed,
        max_chunk: None,
    };
    let setting_up = || format!("setting up task '{}'", task.name);
    let set_up_started = std::time::Instant::now();
    let mut trainer: Box<dyn Learner> = match &task.algorithm {
        Algorithm::Bptt => {
            Box::new(Trainer::new(gpu, task.clone(), options).with_context(setting_up)?)
        }
        Algorithm::Shac(_) => {
            Box::new(ShacTrainer::new(gpu, task.clone(), options).with_context(setting_up)?)
        }
    };
    let trainer = trainer.as_mut();
    if std::env::var_os("BACKDRIVE_PROFILE").is_some_and(|v| !v.is_empty()) {
        // Kernel compiles and buffer allocation happen here, once per run.
        println!(
            "set-up (kernels, buffers): {:.3} s",
            set_up_started.elapsed().as_secs_f64()
        );
    }
    let mut history = Vec::new();
    if let Some(dir) = &args.resume {
        history = resume(trainer, dir)?;
    }
    let unit = match &task.algorithm {
        Algorithm::Bptt => "iterations".to_string(),
        Algorithm::Shac(s) => format!(
            "windows of {} steps (short-horizon actor-critic: gamma {}, lambda {}, critic {:?})",
            s.window, s.gamma, s.lambda, s.critic_hidden
        ),
    };
    println!(
        "task '{}': {}; {} robots x {} steps, policy of {} parameters, {} {unit} to {}",
        task.name,
        task.description,
        instances,
        task.horizon,
        trainer.n_params(),
        total,
        out.display()
    );
    if let Some(window) = task.truncation {
        println!("gradient truncated every {window} steps (inexact by design)");
    }
    let (log_path, mut log) = open_log(&out, &history)?;

    train_iterations(args, trainer, total, &out, &mut log, &mut history)?;
    write_plots(&history, &out, &task.name, &log_path)?;
    if let Some(line) = trainer
        .evaluation()
        .context("evaluating the trained policy")?
    {
        println!("{line}");
    }
    write_policy_viewer(trainer, &task, instances, &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_read_back_and_a_cut_line_dropped() {
        let dir = std::env::temp_dir().join(format!("backdrive-read-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.csv");
        let stats = IterationStats {
            iteration: 3,
            loss: 0.25,
            grad_norm: 1.5e9,
            learning_rate: 1e-3,
            seconds: 2.0,
        };
        let text = format!("{LOG_HEADER}\n{}\n4,0.2,1", log_line(&stats));
        std::fs::write(&path, text).unwrap();
        let (rows, warning) = read_log(&path).unwrap();
        assert_eq!(rows.len(), 1);
        assert!(
            warning
                .unwrap()
                .contains("log.csv:3: not a log row: '4,0.2,1'")
        );
        assert_eq!(
            (rows[0].iteration, rows[0].loss, rows[0].grad_norm),
            (3, 0.25, 1.5e9)
        );
        std::fs::write(&path, format!("{LOG_HEADER}\n1,0.5,x,0.001,1.0\n")).unwrap();
        let (rows, warning) = read_log(&path).unwrap();
        assert!(rows.is_empty());
        let warning = warning.unwrap();
        assert!(warning.contains("log.csv:2: not a log row"), "{warning}");
        assert!(read_log(&dir.join("missing.csv")).unwrap().0.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
