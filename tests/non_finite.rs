//! Non-finite states are detected on the device in every state component, per instance, and
//! `rollout` fails on them by default (issue 18 item 7).

mod common;

use std::path::{Path, PathBuf};

use backdrive::engine::buffers::{device_index, padded_len};
use backdrive::engine::finite_check::{NonFinite, check_reference};
use backdrive::{Simulator, io::models};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reliability")
        .join(name)
}

/// Instance-major raw states to the device's instance-blocked layout.
fn device_layout(raw: &[f32], state_len: usize, n: usize) -> Vec<f32> {
    let mut out = vec![0.0; state_len * padded_len(n)];
    for i in 0..n {
        for s in 0..state_len {
            out[device_index(n, state_len, s, i)] = raw[i * state_len + s];
        }
    }
    out
}

#[test]
fn the_device_check_matches_its_cpu_reference_step_by_step() {
    // The top spins at 3e38 rad/s: its orientation overflows at step 2, its angular velocity
    // stays finite, so only a check of the orientation sees it.
    let model = models::load(fixture("spin_silent_nan.toml").to_str().unwrap()).unwrap();
    let n = 3;
    let mut sim = Simulator::new(common::gpu(), &model, n).unwrap();
    sim.enable_finite_check().unwrap();
    let bodies = model.bodies.len() + 1;
    let mut record = vec![0u32; 4 * n];
    for _ in 0..5 {
        sim.step(1).unwrap();
        let raw = sim.read_state_raw().unwrap();
        let state = device_layout(&raw, sim.state_len(), n);
        check_reference(&state, sim.state_len(), n, bodies, 1, &mut record);
    }
    let expected = backdrive::engine::finite_check::decode(&record, 0);
    assert_eq!(expected.len(), n, "the reference must see every instance");
    let found = sim.non_finite().unwrap();
    assert_eq!(found, expected);
    assert_eq!(
        found[0],
        NonFinite {
            instance: 0,
            step: 2,
            body: 0,
            component: 3
        }
    );
    assert_eq!(found[0].quantity(), "orientation.qx");
}

#[test]
fn a_finite_rollout_reports_nothing_and_the_check_changes_no_state() {
    let model = models::builtin("quadruped").unwrap();
    let mut plain = Simulator::new(common::gpu(), &model, 4).unwrap();
    let mut checked = Simulator::new(common::gpu(), &model, 4).unwrap();
    checked.enable_finite_check().unwrap();
    plain.step(30).unwrap();
    checked.step(30).unwrap();
    assert!(checked.non_finite().unwrap().is_empty());
    assert_eq!(
        plain.read_state_raw().unwrap(),
        checked.read_state_raw().unwrap()
    );
}

fn rollout(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_backdrive"))
        .arg("rollout")
        .args(args)
        .env("NODEVICE_SELECT", "1")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn rollout_fails_naming_instance_step_body_and_quantity() {
    let dir = std::env::temp_dir().join(format!("backdrive-nonfinite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("out.csv");
    let spin = fixture("spin_silent_nan.toml");
    let (ok, err) = rollout(&[
        spin.to_str().unwrap(),
        "--steps",
        "20",
        "-n",
        "2",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(!ok, "{err}");
    assert!(
        err.contains("instance 0 at step 2, body 'top', orientation.qx"),
        "{err}"
    );
    assert!(!csv.exists(), "no CSV may be written");

    let pendulum = fixture("pendulum_long_fromto_silent_nan.xml");
    let (ok, err) = rollout(&[pendulum.to_str().unwrap(), "--steps", "50"]);
    assert!(!ok, "{err}");
    assert!(err.contains("body 'upper'"), "{err}");

    // Caught when the model is loaded (item 8), before any step.
    for name in ["ball_radius_1e38.toml", "cartpole_mass_1e-45.toml"] {
        let path = fixture(name);
        let (ok, err) = rollout(&[path.to_str().unwrap(), "--steps", "20"]);
        assert!(!ok, "{name}: {err}");
        assert!(err.contains(&format!("{}:", path.display())), "{err}");
    }

    // With the flag, the rollout finishes and the instances are listed.
    let (ok, err) = rollout(&[
        spin.to_str().unwrap(),
        "--steps",
        "20",
        "-n",
        "2",
        "--csv",
        csv.to_str().unwrap(),
        "--allow-non-finite",
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("warning: 2 of 2 instance(s)"), "{err}");
    assert!(csv.exists());
    std::fs::remove_dir_all(&dir).ok();
}
