//! The paper's experiments (`backdrive reproduce`): every method learns on a small budget, and
//! the CLI writes its JSON and Markdown tables. The full runs are commands in the README.

mod common;

use std::process::Command;

use backdrive::reproduce::{self, MethodResult, Options, ball};

fn options(budget: u64) -> Options {
    Options {
        budget: Some(budget),
        seed: 1,
        quick: true,
        progress: false,
        time_limit: None,
    }
}

fn best_loss(r: &MethodResult) -> f64 {
    r.history.iter().map(|h| h.1).fold(f64::INFINITY, f64::min)
}

fn report(r: &MethodResult) {
    println!(
        "{}: {} iterations, {} evaluations, {:.1} s, loss {:?} -> best {:.4}, reached after {:?} iterations; {}",
        r.method,
        r.iterations,
        r.evaluations,
        r.wall_seconds.unwrap_or(0.0),
        r.loss_first,
        best_loss(r),
        r.iterations_to_threshold,
        r.note
    );
}

/// Analytic gradients: from zero velocities (loss 100) the loss falls at least 5x within 30
/// Adam iterations with the paper's settings.
#[test]
fn ball_throw_gradient_descent_learns() {
    let r = ball::gradient_descent(common::gpu(), &options(30), 30, ball::HORIZON).unwrap();
    report(&r);
    assert_eq!(r.evaluations, 30);
    let first = r.loss_first.unwrap();
    assert!((first - 100.0).abs() < 1e-2, "{first}");
    assert!(best_loss(&r) < first / 5.0, "{:?}", r.history);
}

/// CMA-ES: the best loss of a generation falls at least 3x within 300 evaluations.
#[test]
fn ball_throw_cma_es_learns() {
    let r = ball::cma_es(common::gpu(), &options(300), 300, ball::HORIZON).unwrap();
    report(&r);
    assert!(
        r.evaluations <= 300 && r.evaluations >= 290,
        "{}",
        r.evaluations
    );
    assert!(
        best_loss(&r) < r.loss_first.unwrap() / 3.0,
        "{:?}",
        r.history
    );
}

/// Finite differences: 13 rollouts per iteration; the loss falls at least 5x in 30 iterations.
#[test]
fn ball_throw_finite_differences_learn() {
    let r = ball::finite_differences(common::gpu(), &options(390), 390, ball::HORIZON).unwrap();
    report(&r);
    assert_eq!(r.evaluations % 13, 0);
    assert!(
        best_loss(&r) < r.loss_first.unwrap() / 5.0,
        "{:?}",
        r.history
    );
}

#[test]
fn unknown_experiment_is_refused() {
    assert!(reproduce::run(common::gpu(), "nope", &Options::default()).is_err());
}

#[test]
fn cli_writes_json_and_markdown() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reproduce-cli");
    let _ = std::fs::remove_dir_all(&dir);
    let json = dir.join("ball.json");
    let md = dir.join("ball.md");
    let out = Command::new(env!("CARGO_BIN_EXE_backdrive"))
        .args([
            "reproduce",
            "ball-throw",
            "--quick",
            "--budget",
            "15",
            "--json",
            json.to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("paper: CMA-ES"), "{stdout}");
    let results: Vec<reproduce::ExperimentResult> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].name, "ball-throw");
    let methods: Vec<&str> = results[0]
        .methods
        .iter()
        .map(|m| m.method.as_str())
        .collect();
    for m in [
        "backdrive gradient (Adam)",
        "backdrive gradient (Gauss-Newton)",
        "CMA-ES",
        "finite differences (Adam)",
        "finite differences (Gauss-Newton)",
    ] {
        assert!(methods.contains(&m), "{methods:?}");
    }
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(
        text.contains("| method | iterations to threshold |"),
        "{text}"
    );
    assert!(
        text.contains("| paper: gradient (BPTT, Adam) | 88 |"),
        "{text}"
    );
}

/// The arm with the paper's 2 x 128 network, batch 1, 100-step episodes: the mean squared
/// distance falls at least 1.2x in 8 updates (measured: 0.200 -> 0.148).
#[test]
fn arm_reach_gradient_learns() {
    let r = reproduce::run(common::gpu(), "arm-reach", &options(8)).unwrap();
    let g = r
        .methods
        .iter()
        .find(|m| m.source == "measured")
        .expect("a measured row");
    report(g);
    assert_eq!(g.evaluations, 8);
    assert!(
        g.loss_reduction().unwrap() > 1.2,
        "{:?} -> {:?}",
        g.loss_first,
        g.loss_last
    );
    assert!(r.methods.iter().any(|m| m.source == "not run"));
}

/// The gait policy (21,480 parameters with the skip path), batch 1, 50-step episodes: the
/// average forward speed rises within 4 updates (measured: 0.000 -> 0.028 m/s).
#[test]
fn quadruped_gradient_learns() {
    let r = reproduce::run(common::gpu(), "quadruped", &options(4)).unwrap();
    let g = r
        .methods
        .iter()
        .find(|m| m.source == "measured")
        .expect("a measured row");
    report(g);
    let first = -g.loss_first.unwrap();
    let best = g.history.iter().map(|h| -h.1).fold(f64::MIN, f64::max);
    assert!(best > first + 0.005, "speed {first} -> best {best}");
    // Beside it, the batched run (4 randomised robots in the quick variant), as many updates.
    let b = r
        .methods
        .iter()
        .find(|m| m.method == "backdrive gradient (Adam), batch 4")
        .expect("a batched row");
    report(b);
    assert_eq!((b.iterations, b.evaluations), (4, 16));
    // And the open-loop gait search, one generation of 4 within the same budget.
    let o = r
        .methods
        .iter()
        .find(|m| m.method.starts_with("CMA-ES, open-loop gait"))
        .expect("an open-loop gait row");
    report(o);
    assert_eq!(
        (o.source.as_str(), o.iterations, o.evaluations),
        ("measured", 1, 4)
    );
    assert!(o.final_value.is_some_and(f64::is_finite), "{o:?}");
    // The short-horizon actor-critic on quadruped-run (quick: 4 robots, 50-step episodes,
    // windows of 25), 4 windows = 400 robot-steps = 8 episodes' worth, and the open-loop search
    // over the same episodes with as many robot-steps.
    let s = r
        .methods
        .iter()
        .find(|m| m.method.starts_with("short-horizon actor-critic"))
        .expect("an actor-critic row");
    report(s);
    assert_eq!((s.iterations, s.evaluations), (4, 8));
    assert!(s.note.contains("400 robot-steps"), "{}", s.note);
    assert!(s.final_value.is_some_and(f64::is_finite) && s.wall_seconds.is_some());
    let l = r
        .methods
        .iter()
        .find(|m| m.method.contains("as many robot-steps as the actor-critic"))
        .expect("an open-loop row at the actor-critic's robot-steps");
    report(l);
    assert_eq!(l.evaluations, 8);
    assert!(l.note.contains("400 robot-steps"), "{}", l.note);
}

/// The adjoint Jacobian of the final-state residuals (one backward pass over 9 instances,
/// each seeded with one residual) agrees with central finite differences at a throw that
/// flies, bounces, slides and rolls off sideways. The step is small (2e-3) because a larger
/// one moves a bounce across a time step (with h = 1e-2, d(y)/d(vz) reads 0.09 instead of 0;
/// with 3e-3 and 1e-3 it reads 0, like the adjoint).
#[test]
fn ball_throw_adjoint_jacobian_matches_finite_differences() {
    let x = [6.0, 0.5, 3.0, 0.3, -20.0, 0.2];
    let gpu = common::gpu();
    let mut sim = ball::BallThrow::for_jacobian(gpu.clone(), ball::HORIZON).unwrap();
    sim.evaluate(&[x; ball::RESIDUALS]).unwrap();
    let adjoint = sim.residual_jacobian().unwrap();
    let h = 2e-3;
    let mut fd_sim = ball::BallThrow::for_jacobian_batch(gpu, 12, ball::HORIZON).unwrap();
    let mut batch = vec![x; 12];
    for k in 0..6 {
        batch[2 * k][k] += h;
        batch[2 * k + 1][k] -= h;
    }
    fd_sim.evaluate(&batch).unwrap();
    let r = fd_sim.residuals();
    let (mut diff, mut norm) = (0.0, 0.0);
    for k in 0..6 {
        for i in 0..ball::RESIDUALS {
            let fd = (r[2 * k][i] - r[2 * k + 1][i]) / (2.0 * h);
            println!("d r{i} / d x{k}: adjoint {:.5} fd {fd:.5}", adjoint[i][k]);
            diff += (adjoint[i][k] - fd).powi(2);
            norm += fd * fd;
        }
    }
    assert!(norm > 1.0, "{norm}");
    assert!(
        diff.sqrt() < 1e-2 * norm.sqrt(),
        "{} vs {}",
        diff.sqrt(),
        norm.sqrt()
    );
}

/// The paper's claim: the thresholds (position error < 0.01 m, |(v, w)| < 0.01) within 88
/// gradient iterations from zero velocities. Met by Gauss-Newton with the adjoint Jacobian
/// (measured: 13 iterations, 126 evaluations); Adam with the paper's settings does not get
/// there (see the README).
#[test]
fn ball_throw_reaches_the_paper_thresholds_within_88_iterations() {
    let budget = 89 * ball::RESIDUALS as u64;
    let r = ball::gauss_newton(common::gpu(), &options(budget), budget, ball::HORIZON).unwrap();
    report(&r);
    assert!(
        r.iterations_to_threshold.is_some_and(|i| i <= 88),
        "{:?}",
        r.history
    );
    assert!(r.final_value.unwrap() < ball::POSITION_TOLERANCE.min(ball::VELOCITY_TOLERANCE));
    assert!(r.loss_first.unwrap() > 99.0);
}

/// Cart-pole swing-up from the state, 1.5 s episodes, batch 1, Adam 1e-2: the gradient's best
/// loss falls at least FACTOR_CARTPOLE x within 20 updates (measured: 0.9985 -> 0.912); CMA-ES
/// runs one generation on the same budget and finite differences are refused with the reason
/// (2P + 1 rollouts per update).
#[test]
fn cartpole_swingup_gradient_learns() {
    let r = reproduce::run(common::gpu(), "cartpole", &options(20)).unwrap();
    let g = &r.methods[1];
    assert_eq!(g.method, "backdrive gradient (Adam)");
    report(g);
    assert_eq!(g.evaluations, 20);
    let first = g.loss_first.unwrap();
    assert!((first - 1.0).abs() < 0.05, "starts hanging: {first}");
    assert!(
        best_loss(g) < first / FACTOR_CARTPOLE,
        "{first} -> {:?}",
        g.history
    );
    let cma = &r.methods[2];
    report(cma);
    assert_eq!(
        (cma.method.as_str(), cma.source.as_str()),
        ("CMA-ES", "measured")
    );
    assert_eq!(r.methods[3].source, "not run");
}

/// Random targets, 8 robots, 1 s episodes: the batch's loss (squared distance averaged over
/// the episode) falls at least FACTOR_RANDOM x within 15 updates (measured: 0.244 -> 0.162).
#[test]
fn arm_reach_random_gradient_learns() {
    let r = reproduce::run(common::gpu(), "arm-reach-random", &options(120)).unwrap();
    let g = &r.methods[1];
    assert_eq!(g.method, "backdrive gradient (Adam)");
    report(g);
    assert_eq!(g.iterations, 15);
    assert!(
        g.loss_reduction().unwrap() > FACTOR_RANDOM,
        "{:?} -> {:?}",
        g.loss_first,
        g.loss_last
    );
}

/// The stated learning factors of the two tests above.
const FACTOR_CARTPOLE: f64 = 1.05;
const FACTOR_RANDOM: f64 = 1.3;

/// `reproduce ant --quick`: the actor-critic (4 windows of 25 steps over 4 robots = 400
/// robot-steps), backpropagation and the open-loop search beside it with as many robot-steps,
/// each charged in robot-steps and wall time, each valued by the torso's forward speed.
#[test]
fn ant_rows_share_one_budget_of_robot_steps() {
    let r = reproduce::run(common::gpu(), "ant", &options(4)).unwrap();
    assert_eq!(r.name, "ant");
    let row = |prefix: &str| {
        let m = r
            .methods
            .iter()
            .find(|m| m.method.starts_with(prefix))
            .unwrap_or_else(|| panic!("no row '{prefix}' in {:?}", r.methods));
        report(m);
        assert_eq!(m.source, "measured");
        assert!(m.final_value.is_some_and(f64::is_finite), "{m:?}");
        assert!(m.wall_seconds.is_some_and(|s| s > 0.0), "{m:?}");
        m
    };
    let s = row("short-horizon actor-critic (ant-run), batch 4");
    assert_eq!((s.iterations, s.evaluations), (4, 8));
    assert!(s.note.contains("400 robot-steps"), "{}", s.note);
    let g = row("backdrive gradient (BPTT, Adam), batch 4");
    assert_eq!((g.iterations, g.evaluations), (2, 8));
    assert!(g.note.contains("400 robot-steps"), "{}", g.note);
    let o = row("CMA-ES, open-loop gait");
    assert_eq!(o.evaluations, 8);
    assert!(o.note.contains("400 robot-steps"), "{}", o.note);
}
