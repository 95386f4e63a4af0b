//! Bad input gives errors, never panics: malformed or inconsistent model files name the file,
//! the line and the field; the simulator rejects a zero batch, wrongly sized arrays and
//! non-finite numbers.

mod common;

use std::path::PathBuf;

use backdrive::model::{ModelBuilder, ShapeKind};
use backdrive::{BodyState, Error, Model, Simulator};

/// A valid model; each test breaks one line of it. Line numbers are 1-based.
const GOOD: &str = r#"name = "two balls"

[settings]
dt = 0.01

[[body]]
name = "base"
mass = 2.0
position = [0.0, 0.0, 0.5]

[[body.shape]]
type = "sphere"
radius = 0.5

[[body]]
name = "arm"
mass = 1.0
position = [1.0, 0.0, 0.5]

[[joint]]
name = "elbow"
type = "hinge"
parent = "base"
child = "arm"
anchor = [0.5, 0.0, 0.5]
axis = [0.0, 1.0, 0.0]
"#;

/// Writes `text` to a fresh file in the temporary directory.
fn temp_model(tag: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "backdrive-bad-input-{}-{tag}.toml",
        std::process::id()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

/// 1-based line of the first line of `text` that starts with `prefix` (after `skip` earlier
/// matches).
fn line_of(text: &str, prefix: &str, skip: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with(prefix))
        .nth(skip)
        .unwrap_or_else(|| panic!("no line starts with {prefix:?}"))
        .0
        + 1
}

/// Replaces exactly one occurrence of `from` in the good model.
fn broken(from: &str, to: &str) -> String {
    assert_eq!(GOOD.matches(from).count(), 1, "{from:?} must occur once");
    GOOD.replacen(from, to, 1)
}

/// Loads `text` from a temporary file, expects an error, and checks that its message names
/// `file:line` and contains every one of `needles`. Returns the message.
fn expect_error(tag: &str, text: &str, line: usize, needles: &[&str]) -> String {
    let path = temp_model(tag, text);
    let result = Model::from_toml_file(&path);
    std::fs::remove_file(&path).ok();
    let err = result.expect_err("a bad model must be rejected");
    assert!(
        matches!(err, Error::Model(_)),
        "expected a model error, got {err:?}"
    );
    let msg = err.to_string();
    let at = format!("{}:{line}", path.display());
    assert!(msg.contains(&at), "{tag}: expected {at:?} in: {msg}");
    for needle in needles {
        assert!(msg.contains(needle), "{tag}: expected {needle:?} in: {msg}");
    }
    println!("{tag}: {msg}");
    msg
}

#[test]
fn the_unbroken_model_loads() {
    let path = temp_model("good", GOOD);
    let model = Model::from_toml_file(&path);
    std::fs::remove_file(&path).ok();
    let model = model.unwrap();
    assert_eq!(model.bodies.len(), 2);
    assert_eq!(model.joints.len(), 1);
}

#[test]
fn joint_naming_an_unknown_body() {
    let text = broken("parent = \"base\"", "parent = \"ghost\"");
    expect_error(
        "unknown-body",
        &text,
        line_of(&text, "parent", 0),
        &["joint[0].parent", "ghost"],
    );
    let text = broken("child = \"arm\"", "child = \"wing\"");
    expect_error(
        "unknown-child",
        &text,
        line_of(&text, "child", 0),
        &["joint[0].child", "wing"],
    );
}

#[test]
fn negative_mass() {
    let text = broken("mass = 1.0", "mass = -1.0");
    expect_error(
        "negative-mass",
        &text,
        line_of(&text, "mass", 1),
        &["body[1].mass", "-1"],
    );
}

#[test]
fn nan_mass() {
    // `nan` is valid TOML, so this passes the parser and must be caught by validation.
    let text = broken("mass = 2.0", "mass = nan");
    expect_error(
        "nan-mass",
        &text,
        line_of(&text, "mass", 0),
        &["body[0].mass", "NaN"],
    );
    // Also a non-finite vector component deeper in the file.
    let text = broken("anchor = [0.5, 0.0, 0.5]", "anchor = [0.5, inf, 0.5]");
    expect_error(
        "inf-anchor",
        &text,
        line_of(&text, "anchor", 0),
        &["joint[0].anchor"],
    );
}

#[test]
fn solver_relaxation_outside_zero_to_two() {
    for (value, shown) in [("2.0", "2"), ("0.0", "0"), ("-0.5", "-0.5"), ("nan", "NaN")] {
        let text = broken(
            "dt = 0.01",
            &format!("dt = 0.01\nsolver_relaxation = {value}"),
        );
        expect_error(
            &format!("relaxation-{value}"),
            &text,
            line_of(&text, "solver_relaxation", 0),
            &["settings.solver_relaxation", "(0, 2)", shown],
        );
    }
    let text = broken("dt = 0.01", "dt = 0.01\nsolver_relaxation = 1.5");
    let path = temp_model("relaxation-ok", &text);
    let model = Model::from_toml_file(&path);
    std::fs::remove_file(&path).ok();
    assert_eq!(model.unwrap().settings.solver_relaxation, 1.5);
}

#[test]
fn lock_frequency_not_positive() {
    for (value, shown) in [("0.0", "0"), ("-30.0", "-30"), ("nan", "NaN")] {
        let text = broken("dt = 0.01", &format!("dt = 0.01\nlock_frequency = {value}"));
        expect_error(
            &format!("lock-frequency-{value}"),
            &text,
            line_of(&text, "lock_frequency", 0),
            &["settings.lock_frequency", "positive", shown],
        );
    }
    let text = broken("dt = 0.01", "dt = 0.01\nlock_frequency = 100.0");
    let path = temp_model("lock-frequency-ok", &text);
    let model = Model::from_toml_file(&path);
    std::fs::remove_file(&path).ok();
    assert_eq!(model.unwrap().settings.lock_frequency, Some(100.0));
}

#[test]
fn limit_impedance_out_of_range() {
    for (field, value, shown) in [
        (
            "solimp",
            "solref = [0.02, 1.0], solimp = [0.0, 0.95, 0.001, 0.5, 2.0]",
            "[0.0, 0.95, 0.001, 0.5, 2.0]",
        ),
        (
            "solimp",
            "solref = [0.02, 1.0], solimp = [0.9, 0.95, 0.001, 0.5, 0.5]",
            "0.5]",
        ),
        (
            "solref",
            "solref = [0.02, -1.0], solimp = [0.9, 0.95, 0.001, 0.5, 2.0]",
            "[0.02, -1]",
        ),
    ] {
        let text = broken(
            "dt = 0.01",
            &format!("dt = 0.01\nlimit_impedance = {{ {value} }}"),
        );
        expect_error(
            &format!("limit-impedance-{field}"),
            &text,
            line_of(&text, "limit_impedance", 0),
            &[&format!("settings.limit_impedance.{field}"), shown],
        );
    }
    let text = broken(
        "dt = 0.01",
        "dt = 0.01\nlimit_impedance = { solref = [-1000.0, -30.0], solimp = [0.9, 0.95, 0.0, 0.5, 1.0] }",
    );
    let path = temp_model("limit-impedance-ok", &text);
    let model = Model::from_toml_file(&path);
    std::fs::remove_file(&path).ok();
    let imp = model.unwrap().settings.limit_impedance.unwrap();
    assert_eq!(imp.solref, [-1000.0, -30.0]);
}

#[test]
fn toml_syntax_error() {
    let text = broken("radius = 0.5", "radius = = 0.5");
    expect_error("syntax", &text, line_of(&text, "radius", 0), &[]);
    let text = broken("name = \"arm\"", "name = \"arm");
    expect_error(
        "unterminated",
        &text,
        line_of(&text, "name = \"arm", 0),
        &[],
    );
}

#[test]
fn unknown_field() {
    let text = broken("mass = 1.0", "mass = 1.0\ncolour = \"red\"");
    expect_error(
        "unknown-field",
        &text,
        line_of(&text, "colour", 0),
        &["colour"],
    );
    let text = broken("dt = 0.01", "dt = 0.01\nsubsteps = 4");
    expect_error(
        "unknown-setting",
        &text,
        line_of(&text, "substeps", 0),
        &["substeps"],
    );
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let path = std::env::temp_dir().join("backdrive-bad-input-does-not-exist.toml");
    let err = Model::from_toml_file(&path).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

fn ball() -> Model {
    ModelBuilder::new("ball")
        .body("ball", 1.0, [0.0, 0.0, 0.5])
        .shape(ShapeKind::Sphere { radius: 0.5 }, [0.0; 3])
        .build()
        .unwrap()
}

fn cartpole() -> Model {
    backdrive::io::models::builtin("cartpole").unwrap()
}

#[test]
fn zero_instances_is_an_error() {
    let err = Simulator::new(common::gpu(), &ball(), 0)
        .err()
        .expect("zero instances must be rejected");
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
    println!("{err}");
}

#[test]
fn an_invalid_model_is_rejected_by_the_simulator() {
    // A model edited after building (bypassing the builder's check) is validated again.
    let mut model = ball();
    model.bodies[0].mass = f32::NAN;
    let err = Simulator::new(common::gpu(), &model, 2)
        .err()
        .expect("a NaN mass must be rejected");
    assert!(err.to_string().contains("body[0].mass"), "{err}");
}

#[test]
fn wrongly_sized_arrays_are_errors() {
    let model = cartpole();
    let n = 3;
    let mut sim = Simulator::new(common::gpu(), &model, n).unwrap();
    let n_cmd = model.actuators.len();
    assert_eq!(n_cmd, 1);
    for len in [0, n * n_cmd - 1, n * n_cmd + 1, n_cmd] {
        let err = sim.set_commands(&vec![0.0; len]).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
        assert!(err.to_string().contains(&format!("got {len}")), "{err}");
    }
    sim.set_commands(&vec![0.5; n * n_cmd]).unwrap();

    let bodies = sim.body_states().unwrap();
    assert!(sim.set_body_states(&bodies[1..]).is_err());
    let raw = sim.read_state_raw().unwrap();
    assert!(sim.write_state_raw(&raw[1..]).is_err());
    let params = sim.params().unwrap();
    assert!(sim.set_params(&params[..params.len() - 1]).is_err());
    // Nothing was changed by the rejected calls.
    assert_eq!(sim.read_state_raw().unwrap(), raw);
    assert_eq!(sim.params().unwrap(), params);
}

#[test]
fn non_finite_inputs_are_rejected_and_leave_the_state_alone() {
    let model = cartpole();
    let n = 2;
    let mut sim = Simulator::new(common::gpu(), &model, n).unwrap();
    sim.step(3).unwrap();
    let raw = sim.read_state_raw().unwrap();
    let bodies = sim.body_states().unwrap();
    let params = sim.params().unwrap();

    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        // A body state with a non-finite position, orientation or velocity.
        for field in 0..4 {
            let mut b: Vec<BodyState> = bodies.clone();
            let s = &mut b[3];
            match field {
                0 => s.position[2] = bad,
                1 => s.orientation[0] = bad,
                2 => s.linear_velocity[1] = bad,
                _ => s.angular_velocity[0] = bad,
            }
            let err = sim.set_body_states(&b).unwrap_err();
            assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");
            assert!(err.to_string().contains("not finite"), "{err}");
        }
        let mut r = raw.clone();
        r[raw.len() - 1] = bad;
        assert!(sim.write_state_raw(&r).is_err());
        assert!(sim.set_commands(&[0.0, bad]).is_err());
        let mut p = params.clone();
        p[1] = bad;
        assert!(sim.set_params(&p).is_err());
    }
    assert_eq!(sim.read_state_raw().unwrap(), raw);
    assert_eq!(sim.params().unwrap(), params);
    // The simulator still works and stays finite.
    sim.step(5).unwrap();
    assert!(sim.read_state_raw().unwrap().iter().all(|v| v.is_finite()));
}

// Known gaps, found while writing these tests and left to the owners of `src/model/`: run with
// `cargo test --test bad_input -- --ignored` to see them fail.

#[test]
fn deserialisation_errors_name_the_field_path() {
    let text = broken("mass = 1.0", "mass = 1.0\ncolour = \"red\"");
    expect_error(
        "unknown-field-path",
        &text,
        line_of(&text, "colour", 0),
        &["body[1].colour"],
    );
    let text = broken("mass = 1.0", "mass = \"heavy\"");
    expect_error(
        "wrong-type",
        &text,
        line_of(&text, "mass = \"heavy\"", 0),
        &["body[1].mass"],
    );
}

#[test]
fn shape_errors_name_the_shape_index_and_line() {
    let text = broken("radius = 0.5", "radius = -0.5");
    expect_error(
        "shape-radius",
        &text,
        line_of(&text, "radius", 0),
        &["body[0].shape[0].radius"],
    );
}
