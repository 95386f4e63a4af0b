//! The defects of issue 18 that concern models and inputs: each test loads one of the inputs
//! in `tests/fixtures/reliability/` that showed a defect, and checks the error (file, line,
//! field) or the detection that now happens.

use std::path::{Path, PathBuf};

use backdrive::{Error, models};

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
