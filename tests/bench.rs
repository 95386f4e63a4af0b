//! The benchmark command and the paper's Table 1 at CI size: tiny batches and horizons, checking
//! the shape of what they write rather than the speed.

mod common;

use std::path::PathBuf;
use std::process::Command;

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "backdrive-test-bench-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn bench_writes_json_with_every_figure_and_a_png() {
    let dir = out_dir("json");
    let json = dir.join("bench.json");
    let png = dir.join("bench.png");
    let out = Command::new(env!("CARGO_BIN_EXE_backdrive"))
        .args([
            "bench",
            "--quick",
            "--models",
            "ball,quadruped",
            "--instances",
            "1,3",
            "--steps",
            "4",
            "--gradient-steps",
            "3",
            "--fd-steps",
            "3",
            "--json",
        ])
        .arg(&json)
        .arg("--plot")
        .arg(&png)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("adapter:"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).expect("valid JSON");
    assert!(v["adapter"]["name"].is_string());
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 4, "2 models x 2 batch sizes");
    for r in results {
        for key in ["model", "instances", "steps", "seconds", "device_bytes"] {
            assert!(!r[key].is_null(), "{key} in {r}");
        }
        assert!(r["robot_steps_per_s"].as_f64().unwrap() > 0.0);
        // The f32 CPU twin's row for the same model and N.
        assert!(r["twin_robot_steps_per_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["twin_threads"].as_u64().unwrap() >= 1, "{r}");
        assert!(
            r["twin_robot_steps"].as_u64().unwrap() >= r["instances"].as_u64().unwrap(),
            "{r}"
        );
    }
    assert!(stdout.contains("f32 CPU twin"), "{stdout}");
    let grads = v["gradient_results"].as_array().unwrap();
    assert!(!grads.is_empty());
    for g in grads {
        assert!(g["forward_backward_robot_steps_per_s"].as_f64().unwrap() > 0.0);
        assert!(g["backward_over_forward"].as_f64().unwrap() > 0.0);
        assert!(g["device_bytes"].as_u64().unwrap() > 0);
        assert!(g["steps"].as_u64().unwrap() >= 2);
    }
    let fd = v["fd_results"].as_array().unwrap();
    assert_eq!(fd.len(), 2);
    for f in fd {
        assert_eq!(
            f["fd_instances"].as_u64().unwrap(),
            2 * f["parameters"].as_u64().unwrap()
        );
        assert!(f["fd_seconds"].as_f64().unwrap() > 0.0);
        assert!(f["analytic_seconds"].as_f64().unwrap() > 0.0);
    }
    assert!(v["skipped"].is_array());
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bench_skips_a_rollout_over_the_memory_budget() {
    let dir = out_dir("skip");
    let json = dir.join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_backdrive"))
        .args([
            "bench",
            "--models",
            "ball",
            "--instances",
            "2",
            "--steps",
            "2",
            "--gradient-steps",
            "1000000",
            "--gradient-budget",
            "1000000",
            "--memory-budget-mib",
            "1",
            "--fd-steps",
            "2",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v["gradient_results"].as_array().unwrap().is_empty());
    let skipped = v["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("exceeds the budget")
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn table1_quick_produces_eight_cells() {
    let mut lines = 0;
    let report =
        backdrive::reproduce::table1::run_with_steps(common::gpu(), 2, &mut |_| lines += 1)
            .unwrap();
    assert_eq!(report.cells.len(), 8);
    assert!(lines >= 8);
    let params: Vec<usize> = report.controllers.iter().map(|c| c.params).collect();
    assert_eq!(params, [1_296, 1_147_904]);
    for robots in [1, 128] {
        for p in &params {
            for gradient in [true, false] {
                let c = report.cell(robots, *p, gradient).expect("cell");
                assert!(c.seconds > 0.0 && c.seconds.is_finite());
                assert!(c.extrapolated);
                assert_eq!(c.measured_steps, 2);
                assert!(c.paper_cpu > 0.0 && c.paper_gpu > 0.0);
                assert_eq!(c.backward_seconds > 0.0, gradient);
            }
        }
    }
    let md = report.markdown();
    assert!(md.contains("| 128 robots, 1,147,904 |"), "{md}");
    assert!(md.contains("extrapolated"), "{md}");
}

/// `bench --models ant` measures the gymnasium ant compiled into the binary: no path of the
/// source tree is baked in, and it runs from any directory.
#[test]
fn the_ant_is_built_in_not_read_from_the_build_tree() {
    let binary = std::fs::read(env!("CARGO_BIN_EXE_backdrive")).unwrap();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    assert!(
        !binary
            .windows(fixtures.len())
            .any(|w| w == fixtures.as_bytes()),
        "the binary names {fixtures}"
    );
    let dir = out_dir("ant");
    let out = Command::new(env!("CARGO_BIN_EXE_backdrive"))
        .current_dir(&dir)
        .args([
            "bench",
            "--models",
            "ant",
            "--instances",
            "1",
            "--steps",
            "2",
            "--gradient-steps",
            "2",
            "--fd-steps",
            "2",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !stdout.contains("skipped"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ant"), "{stdout}");
    std::fs::remove_dir_all(&dir).ok();
}
