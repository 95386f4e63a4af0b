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
        "CMA-ES",
        "finite differences (Adam)",
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
}

/// The paper's claim: the thresholds within 88 gradient iterations. Not met on this engine
/// with the paper's Adam settings (lr 1, beta1 = beta2 = 0.5): the best of 300 iterations is
/// 0.08 m and 0.08 m/s (see the README), so this documents the gap rather than passing.
#[test]
#[ignore = "not reached: the paper's 88 iterations are not matched (see README)"]
fn ball_throw_reaches_the_paper_thresholds_within_88_iterations() {
    let r = ball::gradient_descent(common::gpu(), &options(89), 89, ball::HORIZON).unwrap();
    report(&r);
    assert!(r.iterations_to_threshold.is_some_and(|i| i <= 88));
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
