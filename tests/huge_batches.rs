//! Batches too large for the device are refused quickly with the estimate and the device's
//! limits, and a failed device allocation is an error, never a panic (issue 18 item 12).

mod common;

use std::time::{Duration, Instant};

use backdrive::{Error, Simulator, io::models};

#[test]
fn a_failed_allocation_is_an_error_not_a_panic() {
    let gpu = common::gpu();
    let too_big = gpu.limits.max_buffer_size.saturating_add(4);
    let result = gpu.allocation_scope("a buffer over the device's limit", || {
        gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("too big"),
            size: too_big,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    });
    let err = result.expect_err("the device cannot create it");
    assert!(matches!(err, Error::TooLarge(_)), "{err}");
    assert!(err.to_string().contains("over the device's limit"), "{err}");
}

#[test]
fn a_billion_instances_are_refused_with_the_estimate() {
    let gpu = common::gpu();
    let Some(budget) = gpu.memory_budget() else {
        eprintln!("skipped: the device's memory is unknown (not a CPU adapter)");
        return;
    };
    let model = models::builtin("ball").unwrap();
    let t = Instant::now();
    let err = match Simulator::new(gpu, &model, 1_000_000_000) {
        Ok(_) => panic!("a billion instances fit {budget} bytes?"),
        Err(e) => e,
    };
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let msg = err.to_string();
    assert!(matches!(err, Error::TooLarge(_)), "{msg}");
    for needle in ["estimated", "GiB", "largest storage binding"] {
        assert!(msg.contains(needle), "{msg}");
    }
}

fn run(args: &[&str]) -> (bool, String, Duration) {
    let t = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_backdrive"))
        .args(args)
        .env("NODEVICE_SELECT", "1")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        t.elapsed(),
    )
}

#[test]
fn the_cli_refuses_huge_batches_cleanly() {
    if common::gpu().memory_budget().is_none() {
        eprintln!("skipped: the device's memory is unknown (not a CPU adapter)");
        return;
    }
    let out = std::env::temp_dir().join(format!("backdrive-huge-{}", std::process::id()));
    for args in [
        vec!["rollout", "ball", "-n", "1000000000"],
        vec![
            "train",
            "cartpole-balance",
            "-n",
            "100000000",
            "--out",
            out.to_str().unwrap(),
        ],
    ] {
        let (ok, stderr, took) = run(&args);
        assert!(!ok, "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            stderr.contains("does not fit the device"),
            "{args:?}: {stderr}"
        );
        assert!(took < Duration::from_secs(30), "{args:?} took {took:?}");
    }
    std::fs::remove_dir_all(&out).ok();
}
