//! Output files under failure: bad paths refused before any work, no temporary file left on
//! an error or a signal, special files and links, and training checkpoints that survive a
//! crash at every point of the save.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn backdrive(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_backdrive"))
        .args(args)
        .env("NODEVICE_SELECT", "1")
        .output()
        .expect("the backdrive binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("outputs-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every entry of `dir`, sorted, recursively, as paths relative to it.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn special_files_and_directories_are_refused_before_simulating_and_links_followed() {
    let dir = scratch("special");
    for (bad, why) in [
        ("/dev/null", "special file"),
        (s(&dir), "is a directory"),
        ("/", "is a directory"),
    ] {
        let out = backdrive(&["rollout", "ball", "--steps", "5", "--csv", bad]);
        assert!(!out.status.success(), "--csv {bad} accepted");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(why) && stderr.contains(bad), "{stderr}");
        assert!(
            !text(&out.stdout).contains("simulated"),
            "it simulated first"
        );
    }
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert!(tree(&dir).is_empty(), "{:?}", tree(&dir));
    // A link is followed: the file it names is replaced and the link stays.
    let real = dir.join("real.csv");
    std::fs::write(&real, "old").unwrap();
    let link = dir.join("link.csv");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let out = backdrive(&["rollout", "ball", "--steps", "5", "--csv", s(&link)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    assert!(std::fs::read_to_string(&real).unwrap().starts_with("step,"));
    assert_eq!(tree(&dir), ["link.csv", "real.csv"]);
}

#[test]
fn two_outputs_naming_one_file_are_refused_before_simulating() {
    let dir = scratch("same");
    let x = dir.join("x");
    let out = backdrive(&[
        "rollout",
        "ball",
        "--steps",
        "5",
        "--csv",
        s(&x),
        "--html",
        s(&x),
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--csv and --html"), "{stderr}");
    assert!(!text(&out.stdout).contains("simulated"));
    assert!(tree(&dir).is_empty(), "{:?}", tree(&dir));
}

#[test]
fn unwritable_outputs_fail_before_the_work_and_leave_nothing() {
    let dir = scratch("unwritable");
    let started = Instant::now();
    let out = backdrive(&["bench", "--quick", "--json", "/proc/x.json"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("/proc"), "{}", text(&out.stderr));
    assert!(
        !text(&out.stdout).contains("adapter"),
        "the benchmark ran first"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    let out = backdrive(&["reproduce", "ball-throw", "--json", s(&dir)]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("is a directory"));
    // A directory that cannot be written.
    let locked = dir.join("locked");
    std::fs::create_dir(&locked).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
    let target = locked.join("x.csv");
    let out = backdrive(&["rollout", "ball", "--steps", "5", "--csv", s(&target)]);
    let writable = std::fs::write(locked.join("probe"), "").is_ok(); // root ignores modes
    if !writable {
        assert!(!out.status.success());
        assert!(!text(&out.stdout).contains("simulated"));
    }
    let _ = std::fs::remove_file(locked.join("probe"));
    let _ = std::fs::remove_file(&target);
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(tree(&dir), ["locked"]);
}

/// Ctrl-C (SIGINT) and SIGTERM in the middle of writing a CSV remove its temporary file and
/// leave no partial output.
#[test]
fn a_signal_while_writing_removes_the_temporary_file() {
    for signal in ["INT", "TERM"] {
        let dir = scratch(&format!("signal-{signal}"));
        let csv = dir.join("big.csv");
        let mut child = Command::new(env!("CARGO_BIN_EXE_backdrive"))
            .args([
                "rollout",
                "ball",
                "--steps",
                "1000000",
                "-n",
                "4",
                "--csv",
                s(&csv),
            ])
            .env("NODEVICE_SELECT", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the temporary file holds some rows.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let growing = std::fs::read_dir(&dir)
                .unwrap()
                .filter_map(|e| e.ok())
                .any(|e| e.metadata().map(|m| m.len() > 100_000).unwrap_or(false));
            if growing {
                break;
            }
            assert!(Instant::now() < deadline, "no temporary file grew");
            std::thread::sleep(Duration::from_millis(50));
        }
        let killed = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "SIG{signal}: {status:?}");
        assert!(tree(&dir).is_empty(), "SIG{signal}: {:?}", tree(&dir));
    }
}

const TRAIN: [&str; 4] = ["train", "cartpole-balance", "--save-every", "2"];

fn train(extra: &[&str], failpoint: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_backdrive"));
    command.args(TRAIN).args(extra).env("NODEVICE_SELECT", "1");
    if let Some(spec) = failpoint {
        command.env("BACKDRIVE_FAILPOINT", spec);
    }
    command.output().expect("the backdrive binary runs")
}

fn checkpoint_iteration(dir: &Path) -> u32 {
    backdrive::learn::train::Trainer::checkpoint_info(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .iteration
}

/// The second checkpoint save (iteration 4 of 4) is interrupted at every point: the process
/// killed there (abort, as by SIGKILL) or the write failing with an error. The directory then
/// always holds a whole checkpoint (iteration 2 before the rename, 4 after), `--resume` takes
/// it, and the resumed run ends with the uninterrupted run's checkpoint, byte for byte. A
/// failure by error leaves no temporary file.
#[test]
fn a_crash_at_every_point_of_the_checkpoint_save_loses_at_most_one_interval() {
    let dir = scratch("crash");
    let reference = dir.join("reference");
    let out = train(&["-n", "2", "--iters", "4", "--out", s(&reference)], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let expected = std::fs::read(reference.join("checkpoint.bin")).unwrap();
    for point in ["created", "written", "synced", "renamed"] {
        for action in ["abort", "error"] {
            let run = dir.join(format!("{point}-{action}"));
            let spec = format!("{point}:checkpoint.bin:2:{action}");
            let out = train(&["-n", "2", "--iters", "4", "--out", s(&run)], Some(&spec));
            assert!(!out.status.success(), "{spec}: the failpoint did not fire");
            let saved = checkpoint_iteration(&run);
            assert_eq!(saved, if point == "renamed" { 4 } else { 2 }, "{spec}");
            let temporaries: Vec<String> = tree(&run)
                .into_iter()
                .filter(|f| f.ends_with(".tmp"))
                .collect();
            if action == "error" {
                assert!(temporaries.is_empty(), "{spec}: {temporaries:?}");
            }
            let resumed = train(&["--iters", "4", "--resume", s(&run)], None);
            assert!(
                resumed.status.success(),
                "{spec}: resume failed: {}",
                text(&resumed.stderr)
            );
            assert_eq!(
                std::fs::read(run.join("checkpoint.bin")).unwrap(),
                expected,
                "{spec}: the resumed run differs from the uninterrupted one"
            );
            let log = std::fs::read_to_string(run.join("log.csv")).unwrap();
            let iterations: Vec<&str> = log
                .lines()
                .skip(1)
                .map(|l| l.split(',').next().unwrap())
                .collect();
            assert_eq!(iterations, ["1", "2", "3", "4"], "{spec}: {log}");
        }
    }
}

#[test]
fn resume_into_another_run_is_refused_and_a_resumed_run_keeps_its_batch() {
    let dir = scratch("resume");
    let (a, b) = (dir.join("a"), dir.join("b"));
    for d in [&a, &b] {
        let out = train(&["-n", "3", "--iters", "1", "--out", s(d)], None);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let before = std::fs::read(b.join("checkpoint.bin")).unwrap();
    let out = train(&["--iters", "2", "--resume", s(&a), "--out", s(&b)], None);
    assert!(
        !out.status.success(),
        "--resume A --out B overwrote the run in B"
    );
    assert!(text(&out.stderr).contains("already holds a training run"));
    assert_eq!(std::fs::read(b.join("checkpoint.bin")).unwrap(), before);
    // Without -n, the resumed run takes the checkpoint's batch of 3 (the task's is 16).
    let out = train(&["--iters", "2", "--resume", s(&a)], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("3 robots"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(checkpoint_iteration(&a), 2);
}

#[test]
fn a_bad_line_in_the_log_is_cut_with_a_warning_and_resume_goes_on() {
    let dir = scratch("badlog");
    let run = dir.join("run");
    let out = train(&["-n", "2", "--iters", "2", "--out", s(&run)], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = run.join("log.csv");
    let mut text_log = std::fs::read_to_string(&log).unwrap();
    text_log.push_str("3,0.5,not-a-number,0.01,1.0\n");
    std::fs::write(&log, text_log).unwrap();
    let out = train(&["--iters", "3", "--resume", s(&run)], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("warning") && stdout.contains("log.csv:4"),
        "{stdout}"
    );
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(log.lines().count(), 4, "{log}");
    assert!(!log.contains("not-a-number"), "{log}");
}

#[test]
fn an_unusable_train_directory_fails_before_training() {
    let dir = scratch("train-out");
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = train(&["-n", "2", "--iters", "1", "--out", s(&file)], None);
    assert!(!out.status.success());
    assert!(
        !text(&out.stdout).contains("adapter"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("a-file"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(tree(&dir), ["a-file"]);
}
