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

/// `benches/peers/ppo_ant.py --help` runs on a bare Python: stable-baselines3, gymnasium,
/// mujoco and torch are imported only for training.
#[test]
fn ppo_ant_py_help_runs_on_a_bare_python() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers/ppo_ant.py");
    if Command::new("python3").arg("--version").output().is_err() {
        println!("skipped: python3 is not installed");
        return;
    }
    let out = Command::new("python3")
        .arg("-S")
        .arg(script)
        .arg("--help")
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ppo_ant.py --help on a bare Python:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for option in ["--install", "--robot-steps", "--eval-every", "--json"] {
        assert!(
            stdout.contains(option),
            "{option} missing from --help:\n{stdout}"
        );
    }
}

fn backdrive_help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_backdrive"))
        .args(args)
        .arg("--help")
        .output()
        .expect("the backdrive binary runs");
    assert!(out.status.success(), "backdrive {args:?} --help failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The entries of README's command summary: (command, its text), the text running over the
/// indented lines that follow.
fn readme_summary() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("## Command line")
        .nth(1)
        .expect("a Command line section");
    let block = section
        .split("```text")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a text block in the Command line section");
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in block.lines() {
        if let Some(rest) = line.strip_prefix("backdrive ") {
            let name = rest.split_whitespace().next().unwrap_or("").to_string();
            entries.push((name, rest.to_string()));
        } else if let Some((_, text)) = entries.last_mut() {
            text.push(' ');
            text.push_str(line.trim());
        }
    }
    entries
}

/// Numbers in "a, b, c" or "a,b,c" after `marker` in `text`, up to the first word that is not
/// one.
fn numbers_after(text: &str, marker: &str) -> Vec<u64> {
    let start = text.find(marker).map(|i| i + marker.len());
    let Some(start) = start else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for word in text[start..].split([',', ' ']).filter(|w| !w.is_empty()) {
        match word.trim_end_matches([')', ';', '.']).parse() {
            Ok(n) => out.push(n),
            Err(_) => break,
        }
    }
    out
}

/// README's command summary lists exactly the commands of `backdrive --help`, every option it
/// names exists in that command's `--help`, and what it says of a command's defaults and names
/// (bench's batch sizes, the tasks, the models) is what the command does.
#[test]
fn readme_command_summary_agrees_with_the_help() {
    let summary = readme_summary();
    let help = backdrive_help(&[]);
    let commands: Vec<String> = help
        .split("Commands:")
        .nth(1)
        .expect("a Commands section")
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect();
    let mut listed: Vec<String> = summary.iter().map(|(name, _)| name.clone()).collect();
    listed.dedup();
    assert_eq!(
        listed, commands,
        "README's summary against backdrive --help"
    );
    for (name, text) in &summary {
        let command_help = backdrive_help(&[name]);
        for option in text
            .split(|c: char| c.is_whitespace() || c == '[' || c == ']')
            .filter(|w| w.starts_with("--"))
        {
            assert!(
                command_help.contains(option),
                "README names {option} for `backdrive {name}`; its --help has no such option"
            );
        }
    }
    let bench = &summary.iter().find(|(n, _)| n == "bench").unwrap().1;
    let readme_sizes = numbers_after(bench, "N = ");
    let help_sizes = numbers_after(&backdrive_help(&["bench"]), "Batch sizes (default ");
    assert!(
        !help_sizes.is_empty(),
        "no default batch sizes in bench --help"
    );
    assert_eq!(
        readme_sizes, help_sizes,
        "bench's batch sizes: README, --help"
    );
    let train = &summary.iter().find(|(n, _)| n == "train").unwrap().1;
    for task in backdrive::learn::tasks::names() {
        assert!(
            train.contains(task),
            "task {task} missing from README's train entry"
        );
    }
    let reproduce = &summary.iter().find(|(n, _)| n == "reproduce").unwrap().1;
    for experiment in backdrive::reproduce::names() {
        assert!(
            reproduce.contains(experiment),
            "experiment {experiment} missing from README's reproduce entry"
        );
    }
    let models = &summary.iter().find(|(n, _)| n == "models").unwrap().1;
    for model in backdrive::io::models::names() {
        assert!(
            models.contains(model),
            "model {model} missing from README's models entry"
        );
    }
}
