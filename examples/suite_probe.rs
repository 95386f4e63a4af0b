//! Per-joint trajectories of a contact-free suite model (a legged one's root height) in backdrive's f64 CPU twin, from the
//! same perturbed start as `tests/mjcf_suites.rs` (MuJoCo's poses in
//! `tests/fixtures/mjcf/suites_reference.json`), with the settings that decide how far it ends
//! from MuJoCo changed one at a time: what `benches/mjcf_suites_probe.py` prints for MuJoCo.
//!
//! `cargo run --release --example suite_probe -- PATH/reacher.xml --key gymnasium/reacher.xml
//! --joint-frequency 30 --every 10`
//!
//! Prints the time and every compared joint's coordinate (rad or m from the model pose) every
//! `--every` file steps, and at the end each joint's distance from MuJoCo's `after_1s`.

use anyhow::{Context, Result};
use backdrive::engine::layout::{BODY_STATE_LEN, Compiled};
use backdrive::engine::sim::raw_from_bodies;
use backdrive::engine::twin::Instance;
use backdrive::io::mjcf::{self, MjcfImport, MjcfOptions};
use backdrive::{BodyState, Model};
use clap::Parser;
use serde_json::Value;

#[derive(Parser)]
struct Args {
    /// The MJCF file.
    file: std::path::PathBuf,
    /// Its key in the reference fixture (`gymnasium/reacher.xml`).
    #[arg(long)]
    key: String,
    /// `Settings::joint_frequency` in place of the imported one.
    #[arg(long)]
    joint_frequency: Option<f32>,
    /// `Settings::joint_damping_ratio` in place of the imported one.
    #[arg(long)]
    joint_damping_ratio: Option<f32>,
    /// Solver sweeps in place of the imported count.
    #[arg(long)]
    sweeps: Option<u32>,
    /// `Settings::warm_start` in place of the imported one.
    #[arg(long)]
    warm_start: Option<f32>,
    /// `Settings::solver_relaxation` in place of the imported one.
    #[arg(long)]
    relaxation: Option<f32>,
    /// Steps per file time step.
    #[arg(long, default_value_t = 1)]
    division: u32,
    /// Drops every joint's armature.
    #[arg(long)]
    no_armature: bool,
    /// Drops every joint's damping.
    #[arg(long)]
    no_damping: bool,
    /// Gravity off.
    #[arg(long)]
    no_gravity: bool,
    /// Fluid (density and viscosity) off.
    #[arg(long)]
    no_fluid: bool,
    /// `Settings::lock_frequency` in place of the imported one (0: none, the joint frequency).
    #[arg(long)]
    lock_frequency: Option<f32>,
    /// Import with `MjcfOptions::mujoco_limit_impedance` (MuJoCo's soft-constraint model for
    /// the limits).
    #[arg(long)]
    limit_impedance: bool,
    /// Import with `MjcfOptions::mujoco_limit_softness` (MuJoCo's limit as a spring).
    #[arg(long)]
    limit_softness: bool,
    /// Print every this many file steps (0: only the end).
    #[arg(long, default_value_t = 0)]
    every: u32,
}

/// The suite test's joint readout ([`MjcfImport::mujoco_joint_coordinate`]).
fn joint_coordinate(imp: &MjcfImport, bodies: &[BodyState], j: &Value) -> f64 {
    imp.mujoco_joint_coordinate(bodies, j)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn body_states(model: &Model, state: &[f64]) -> Vec<BodyState> {
    (0..model.bodies.len())
        .map(|b| {
            let s: Vec<f32> = state[(b + 1) * BODY_STATE_LEN..(b + 2) * BODY_STATE_LEN]
                .iter()
                .map(|&x| x as f32)
                .collect();
            BodyState::from_slice(&s)
        })
        .collect()
}

fn main() -> Result<()> {
    let args = Args::parse();
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(
        "tests/fixtures/mjcf/suites_reference.json",
    )?)?;
    let r = &reference["models"][&args.key];
    anyhow::ensure!(r.is_object(), "{} is not in the reference", args.key);
    let options = MjcfOptions {
        mujoco_limit_impedance: args.limit_impedance,
        mujoco_limit_softness: args.limit_softness,
        ..MjcfOptions::default()
    };
    let mut imp = mjcf::load_mjcf_with(&args.file, &options)
        .with_context(|| args.file.display().to_string())?;
    let settings = &mut imp.model.settings;
    settings.dt /= args.division as f32;
    if let Some(f) = args.joint_frequency {
        settings.joint_frequency = f;
    }
    if let Some(z) = args.joint_damping_ratio {
        settings.joint_damping_ratio = z;
    }
    if let Some(s) = args.sweeps {
        settings.solver_iterations = s;
    }
    if let Some(w) = args.warm_start {
        settings.warm_start = w;
    }
    if let Some(w) = args.relaxation {
        settings.solver_relaxation = w;
    }
    if args.no_gravity {
        settings.gravity = [0.0; 3];
    }
    if args.no_fluid {
        settings.fluid_density = 0.0;
        settings.fluid_viscosity = 0.0;
    }
    if let Some(f) = args.lock_frequency {
        settings.lock_frequency = (f > 0.0).then_some(f);
    }
    for j in &mut imp.model.joints {
        if args.no_armature {
            j.armature = 0.0;
        }
        if args.no_damping {
            j.damping = 0.0;
        }
    }
    let compiled = Compiled::new(&imp.model);
    let raw = raw_from_bodies(
        &compiled,
        &imp.model,
        &imp.body_states_from_mujoco_poses(&r["start"])?,
        1,
    )?;
    let mut inst = Instance::<f64>::new(&compiled);
    inst.state = raw.iter().map(|&x| f64::from(x)).collect();
    if r["kind"] == "legged" {
        let root = r["root"].as_str().unwrap();
        let steps = r["steps"].as_u64().unwrap() as u32 * args.division;
        let dt = f64::from(imp.model.settings.dt);
        for k in 0..steps {
            if args.every > 0 && k % args.every == 0 {
                let bodies = body_states(&imp.model, &inst.state);
                let h = imp.frame_pose(root, &bodies).unwrap().0[2];
                println!("{:.3} {root} {h:.4}", f64::from(k) * dt);
            }
            inst.step();
        }
        let bodies = body_states(&imp.model, &inst.state);
        let h = f64::from(imp.frame_pose(root, &bodies).unwrap().0[2]);
        let want = r["height"].as_f64().unwrap();
        println!(
            "{root} height after {} s: backdrive {h:.5}, MuJoCo {want:.5}",
            r["time"]
        );
        println!("worst {:.5}", (h - want).abs());
        if args.every > 0 {
            let hd = compiled.header;
            for l in 0..hd.n_limit {
                let rec = (hd.off_limit + l * 4) as usize;
                let (j, k) = (compiled.packed[rec], compiled.packed[rec + 1]);
                let ax = backdrive::engine::twin::joint_axis(&inst, j, k);
                println!(
                    "limit {} {:.4} in [{:.4}, {:.4}]",
                    imp.model.joints[j as usize].name,
                    ax.coordinate,
                    f32::from_bits(compiled.packed[rec + 2]),
                    f32::from_bits(compiled.packed[rec + 3])
                );
            }
        }
        return Ok(());
    }
    let joints = r["joints"].as_array().unwrap();
    let names: Vec<&str> = joints.iter().map(|j| j["name"].as_str().unwrap()).collect();
    println!("t {}", names.join(" "));
    let steps = r["steps"].as_u64().unwrap() as u32;
    let dt = r["timestep"].as_f64().unwrap();
    let print = |inst: &Instance<f64>, k: u32| {
        let bodies = body_states(&imp.model, &inst.state);
        let q: Vec<String> = joints
            .iter()
            .map(|j| format!("{:.5}", joint_coordinate(&imp, &bodies, j)))
            .collect();
        println!("{:.3} {}", f64::from(k) * dt, q.join(" "));
    };
    for k in 0..steps {
        if args.every > 0 && k % args.every == 0 {
            print(&inst, k);
        }
        for _ in 0..args.division {
            inst.step();
        }
    }
    print(&inst, steps);
    let bodies = body_states(&imp.model, &inst.state);
    let mut worst = 0.0f64;
    for j in joints {
        let q = joint_coordinate(&imp, &bodies, j);
        let want = j["after_1s"].as_f64().unwrap();
        let c = j["converged_1s"].as_f64().unwrap();
        worst = worst.max((q - want).abs());
        println!(
            "{}: backdrive {q:.5}, MuJoCo Euler {want:.5}, converged {c:.5}, off {:.5} \
             (backdrive from converged {:.5}, MuJoCo Euler from converged {:.5})",
            j["name"].as_str().unwrap(),
            (q - want).abs(),
            (q - c).abs(),
            (want - c).abs()
        );
    }
    println!("worst {worst:.5}");
    Ok(())
}
