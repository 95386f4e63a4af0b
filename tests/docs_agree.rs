//! What README.md and the scripts promise a new user, checked against what the tools do.

use std::process::Command;

/// `python3 -S` starts without site-packages, so numpy and every other installed package are
/// out of reach, as on a bare Python. `--help` and `--install` must still work there
/// (`--install` with every section skipped has nothing to install and runs to the end).
#[test]
fn compare_py_help_and_install_run_on_a_bare_python() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers/compare.py");
    if Command::new("python3").arg("--version").output().is_err() {
        println!("skipped: python3 is not installed");
        return;
    }
    for args in [
        &["--help"][..],
        &["--install", "--skip", "ours,mujoco,mjx,warp"][..],
    ] {
        let out = Command::new("python3")
            .arg("-S")
            .arg(script)
            .args(args)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "compare.py {args:?} on a bare Python:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
