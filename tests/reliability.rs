//! The defects of issue 18 that concern models and inputs: each test loads one of the inputs
//! in `tests/fixtures/reliability/` that showed a defect, and checks the error (file, line,
//! field) or the detection that now happens.

use std::path::{Path, PathBuf};

use backdrive::{Error, io::models};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reliability")
        .join(name)
}

/// 1-based line of the first line of the file containing `needle`.
fn line_containing(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in {}", path.display()))
        + 1
}

/// Loads a fixture, expects a model error, and checks that it names `file:line` and contains
/// every one of `needles`.
fn expect_model_error(name: &str, line_needle: &str, needles: &[&str]) -> String {
    let path = fixture(name);
    let err = models::load(path.to_str().unwrap()).expect_err("the model must be refused");
    let msg = err.to_string();
    assert!(matches!(err, Error::Model(_)), "not a model error: {msg}");
    let at = format!(
        "{}:{}:",
        path.display(),
        line_containing(&path, line_needle)
    );
    assert!(msg.contains(&at), "{msg}\nshould name {at}");
    for n in needles {
        assert!(msg.contains(n), "{msg}\nshould contain {n:?}");
    }
    msg
}

#[test]
fn extra_array_elements_are_refused_with_file_and_line() {
    expect_model_error(
        "cartpole_limits_3_elements.toml",
        "limits = [1,2,3]",
        &["joint[0].limits", "2 numbers, found 3"],
    );
    expect_model_error(
        "cartpole_position_4_elements.toml",
        "position = [0.0, 0.0, 1.5, 99.0]",
        &["body[0].position", "3 numbers, found 4"],
    );
    expect_model_error(
        "cartpole_axis_4_elements_junk.toml",
        "\"junk\"",
        &["joint[0].axis"],
    );
}

#[test]
fn five_element_gravity_and_orientation_are_refused() {
    let base = "name = \"x\"\n[settings]\ngravity = GRAVITY\n[[body]]\nname = \"b\"\nmass = 1.0\norientation = ORIENTATION\n";
    let cases = [
        (
            "[0.0, 0.0, -9.8, 1.0, 2.0]",
            "[0.0, 0.0, 0.0, 1.0]",
            3,
            "settings.gravity",
        ),
        (
            "[0.0, 0.0, -9.8]",
            "[0.0, 0.0, 0.0, 1.0, 0.0]",
            7,
            "body[0].orientation",
        ),
    ];
    for (gravity, orientation, line, field) in cases {
        let text = base
            .replace("GRAVITY", gravity)
            .replace("ORIENTATION", orientation);
        let err = backdrive::Model::from_toml_str(&text, Some(Path::new("m.toml"))).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&format!("m.toml:{line}: {field}")), "{msg}");
        assert!(msg.contains("found 5 elements"), "{msg}");
    }
}

#[test]
fn mjcf_duplicate_joint_names_are_refused() {
    let path = fixture("pendulum_duplicate_joint_name.xml");
    let err = models::load(path.to_str().unwrap()).expect_err("duplicate joint name");
    let msg = err.to_string();
    // The second `<joint name="shoulder"/>`.
    let second = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("<joint name=\"shoulder\"/>"))
        .nth(1)
        .unwrap()
        .0
        + 1;
    assert!(
        msg.contains(&format!("{}:{second}: joint.name", path.display())),
        "{msg}"
    );
    assert!(msg.contains("duplicate joint name 'shoulder'"), "{msg}");
}

#[test]
fn an_invalid_imported_value_names_the_element_line_and_attribute() {
    let msg = expect_model_error(
        "pendulum_pos_1e39_no_line.xml",
        "pos=\"0 1e39 2\"",
        &["body.pos", "body 'upper'"],
    );
    assert!(!msg.contains("imported model is invalid"), "{msg}");
}

#[test]
fn a_truncated_xml_file_is_blamed_on_its_last_line() {
    let path = fixture("pendulum_truncated_line1.xml");
    let lines = std::fs::read_to_string(&path).unwrap().lines().count();
    assert!(lines > 1);
    let msg = models::load(path.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(&format!("{}:{lines}: malformed XML", path.display())),
        "{msg}"
    );
}

#[test]
fn invalid_utf8_is_reported_once_with_its_line() {
    let dir = std::env::temp_dir().join(format!("backdrive-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml = dir.join("bad.toml");
    std::fs::write(
        &toml,
        b"name = \"x\"\n[[body]]\nname = \"b\xff\"\nmass = 1.0\n",
    )
    .unwrap();
    let xml = dir.join("bad.xml");
    let mut text = b"<mujoco>\n  <worldbody>\n".to_vec();
    text.extend_from_slice(b"    <!-- \xfe -->\n  </worldbody>\n</mujoco>\n");
    std::fs::write(&xml, text).unwrap();
    for (path, line) in [(&toml, 3), (&xml, 3)] {
        let err = models::load(path.to_str().unwrap()).unwrap_err();
        // The CLI prints the whole chain of sources: the reason must appear once in it.
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert!(
            chain.contains(&format!("{}:{line}:", path.display())),
            "{chain}"
        );
        assert_eq!(chain.matches("UTF-8").count(), 1, "{chain}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_directory_or_fifo_given_as_a_model_says_what_it_is() {
    let dir = std::env::temp_dir().join(format!("backdrive-special-{}", std::process::id()));
    let as_dir = dir.join("model.toml");
    std::fs::create_dir_all(&as_dir).unwrap();
    let msg = models::load(as_dir.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("is a directory"), "{msg}");
    let msg = models::load(dir.to_str().unwrap()).unwrap_err().to_string();
    assert!(msg.contains("is a directory"), "{msg}");
    #[cfg(unix)]
    {
        let fifo = dir.join("pipe.xml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            // Reading a FIFO with no writer would block: the check must come before opening.
            let msg = models::load(fifo.to_str().unwrap())
                .unwrap_err()
                .to_string();
            assert!(msg.contains("is a FIFO"), "{msg}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn backdrive(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_backdrive"))
        .args(args)
        .env("NODEVICE_SELECT", "1")
        .output()
        .unwrap()
}

#[test]
fn gradcheck_refuses_nonsense_settings_before_any_work() {
    for (flag, value, needle) in [
        ("--tolerance", "nan", "--tolerance"),
        ("--tolerance=-1", "", "--tolerance"),
        ("--min-cosine", "2", "--min-cosine"),
        ("--step-size", "0", "--step-size"),
        ("--step-size", "inf", "--step-size"),
        ("--max-inputs", "0", "--max-inputs"),
    ] {
        let mut args = vec!["gradcheck", "ball", "--steps", "2", flag];
        if !value.is_empty() {
            args.push(value);
        }
        let out = backdrive(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} {value} was accepted");
        assert!(stderr.contains(needle), "{flag} {value}: {stderr}");
        // Refused while parsing arguments, before opening the GPU.
        assert!(out.stdout.is_empty(), "{flag} {value} started the check");
    }
}

#[test]
fn derived_quantities_are_validated_with_file_and_line() {
    expect_model_error(
        "cartpole_dt_1e38.toml",
        "dt = 1e38",
        &["settings.dt", "time step"],
    );
    expect_model_error(
        "ball_radius_1e38.toml",
        "[[body.shape]]",
        &["body[0].shape", "inertia computed from the shapes"],
    );
    expect_model_error(
        "cartpole_mass_1e-45.toml",
        "mass = 1e-45",
        &["body[1].mass", "inverse mass"],
    );
}

#[test]
fn an_effective_mass_that_overflows_is_refused() {
    let text = "name = \"far\"\n[[body]]\nname = \"b\"\nmass = 1.0\n\n[[joint]]\nname = \"j\"\ntype = \"hinge\"\nchild = \"b\"\nanchor = [1e30, 0.0, 0.0]\n";
    let msg = backdrive::Model::from_toml_str(text, Some(Path::new("far.toml")))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("far.toml:10: joint[0].anchor"), "{msg}");
    assert!(msg.contains("inverse effective mass"), "{msg}");
}
