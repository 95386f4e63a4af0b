//! The Gymnasium and DeepMind Control model suites (33 MJCF files from PyPI's `gymnasium` and
//! `dm_control` packages), loaded with the default importer and checked against the
//! expectation list `tests/fixtures/mjcf/suites.toml`:
//!
//! * every file either loads (and then 4 instances run 1,000 zero-control steps without a
//!   non-finite state) or is refused with exactly the reason the list gives, so that a file
//!   that stops loading fails, and progress only updates the list;
//! * 18 of them are compared with MuJoCo (`tests/fixtures/mjcf/suites_reference.json`,
//!   recorded by `benches/mjcf_suites_reference.py`): joint coordinates after 1 s for the
//!   contact-free ones (0.01 rad or m), the root body's resting height (or its height at 1 s
//!   where MuJoCo does not rest) for the legged ones (1 cm). A model that loads is held to its
//!   listed verdict (within or outside the tolerance); one that is refused is measured with
//!   `MjcfOptions::ignore_unsupported`, and its deviation is listed as such;
//! * the README's table is the list's rendering.
//!
//! The packages are found with the Python given by `BACKDRIVE_PYTHON` (else `python3`). Without
//! them the suite test says SKIPPED, unless `BACKDRIVE_REQUIRE_SUITES=1` (set by CI).
//! `BACKDRIVE_UPDATE_SUITES=1` rewrites the list and the README table from what was measured;
//! `BACKDRIVE_SUITES_VERBOSE=1` prints both engines' value of every compared joint.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use backdrive::io::mjcf::{self, MjcfImport, MjcfOptions};
use backdrive::{BodyState, Error, Simulator};
use glam::{Quat, Vec3};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const STEPS: u32 = 1000;
const INSTANCES: usize = 4;
/// Joint coordinates after 1 s (rad for hinges, m for slides).
const JOINT_TOLERANCE: f64 = 0.01;
/// Root body height (m).
const HEIGHT_TOLERANCE: f64 = 0.01;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn list_path() -> PathBuf {
    root().join("tests/fixtures/mjcf/suites.toml")
}

/// One file's entry in the expectation list.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
struct Expectation {
    /// `loads` or `refused`.
    status: String,
    /// For a refused file: the importer's error, without the directory.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    reason: String,
    /// What the import approximates (from its warnings), shortest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    approximated: Vec<String>,
    /// For a model compared with MuJoCo: the largest deviation measured (rad/m or m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deviation: Option<f64>,
    /// What the deviation is of.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    compared: String,
    /// Whether the deviation is within the tolerance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    within_tolerance: Option<bool>,
    /// `default` when measured on the model as imported, `ignore_unsupported` when the
    /// model is refused and was measured without the features it lacks.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    measured_with: String,
}

#[derive(Debug, Default, Deserialize, Serialize)]
struct List {
    files: BTreeMap<String, Expectation>,
}

fn read_list() -> List {
    let path = list_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const LIST_HEADER: &str = "\
# What the default MJCF importer does with each file of the Gymnasium and DeepMind Control
# suites: checked by tests/mjcf_suites.rs, rendered into README.md's table. Regenerate both
# from a run with `BACKDRIVE_UPDATE_SUITES=1 cargo test --release --test mjcf_suites`.
";

fn write_atomically(path: &Path, text: &str) {
    let dir = path.parent().unwrap();
    let mut tmp = tempfile::NamedTempFile::new_in(dir).unwrap();
    std::io::Write::write_all(&mut tmp, text.as_bytes()).unwrap();
    tmp.as_file().sync_all().unwrap();
    tmp.persist(path).unwrap();
}

fn updating() -> bool {
    std::env::var("BACKDRIVE_UPDATE_SUITES").is_ok_and(|v| v == "1")
}

/// The two packages' model directories, found by the suites' Python.
fn locate() -> std::result::Result<Vec<(String, PathBuf)>, String> {
    let python = std::env::var("BACKDRIVE_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = "import importlib.util as u, os\n\
                  for p, sub in (('gymnasium', 'envs/mujoco/assets'), ('dm_control', 'suite')):\n\
                  \x20   s = u.find_spec(p)\n\
                  \x20   print(p, os.path.join(s.submodule_search_locations[0], sub))\n";
    let out = Command::new(&python)
        .args(["-c", script])
        .output()
        .map_err(|e| format!("{python}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{python} does not find gymnasium and dm_control: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    let mut files = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (package, dir) = line.split_once(' ').unwrap();
        let mut xml: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("{dir}: {e}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "xml"))
            .collect();
        xml.sort();
        for p in xml {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            files.push((format!("{package}/{name}"), p));
        }
    }
    Ok(files)
}

fn suites_or_skip() -> Option<Vec<(String, PathBuf)>> {
    match locate() {
        Ok(files) => Some(files),
        Err(why) => {
            let required = std::env::var("BACKDRIVE_REQUIRE_SUITES").is_ok_and(|v| v == "1");
            assert!(!required, "BACKDRIVE_REQUIRE_SUITES=1 but {why}");
            println!("SKIPPED: {why} (set BACKDRIVE_PYTHON to a Python that has them)");
            None
        }
    }
}

/// The importer's error as the list records it: without the file's directory and without the
/// advice on how to ignore it.
fn reason(e: &Error) -> String {
    let text = match e {
        Error::Model(m) => {
            let file = m
                .file
                .as_deref()
                .and_then(Path::file_name)
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("{file}:{}: {}: {}", m.line.unwrap_or(0), m.field, m.message)
        }
        other => other.to_string(),
    };
    match text.find(" (set MjcfOptions::ignore_unsupported") {
        Some(k) => text[..k].to_string(),
        None => text,
    }
}

/// Short notes on what the import approximates, from its warnings.
fn approximations(imp: &MjcfImport) -> Vec<String> {
    let mut notes = Vec::new();
    let mut note = |s: &str| {
        if !notes.iter().any(|n| n == s) {
            notes.push(s.to_string());
        }
    };
    for w in &imp.warnings {
        let m = &w.message;
        if m.contains("approximate shape") {
            note("cylinder/ellipsoid contact shapes");
        } else if m.contains("intermediate bodies") {
            note("multi-joint bodies chained");
        } else if m.contains("different softnesses") {
            note("one contact softness");
        } else if m.contains("integrator") {
            note("Euler integrator");
        } else if m.contains("may collide in MuJoCo") {
            note("no self-collision");
        } else if m.contains("torsional and rolling") {
            note("no torsional/rolling friction");
        } else if m.contains("flat height field") {
            note("flat height field as a box");
        }
    }
    notes
}

// ---------------------------------------------------------------------------------------------
// Comparison with MuJoCo

fn reference() -> Value {
    let path = root().join("tests/fixtures/mjcf/suites_reference.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Backdrive body states that put every MJCF body where MuJoCo's perturbed start has it.
fn start_states(imp: &MjcfImport, r: &Value) -> Vec<BodyState> {
    imp.body_states_from_mujoco_poses(&r["start"])
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A joint's coordinate from the body states ([`MjcfImport::mujoco_joint_coordinate`]).
fn joint_coordinate(imp: &MjcfImport, bodies: &[BodyState], j: &Value) -> f64 {
    imp.mujoco_joint_coordinate(bodies, j)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the comparison: the deviation and what it is of.
fn compare(imp: &MjcfImport, r: &Value) -> (f64, String) {
    let mut sim = Simulator::new(common::gpu(), &imp.model, 1).unwrap();
    sim.set_body_states(&start_states(imp, r)).unwrap();
    let steps = r["steps"].as_u64().unwrap() as u32;
    // The model's time step is the file's; a mismatch would compare different times.
    let dt = r["timestep"].as_f64().unwrap();
    assert!((f64::from(imp.model.settings.dt) - dt).abs() < 1e-9 * dt.max(1.0));
    sim.step(steps).unwrap();
    let bodies = sim.body_states().unwrap();
    if r["kind"] == "legged" {
        let root_body = r["root"].as_str().unwrap();
        let h = imp.frame_pose(root_body, &bodies).unwrap().0[2];
        let want = r["height"].as_f64().unwrap();
        let what = if r["rests"].as_bool().unwrap() {
            format!("{root_body} height at rest ({} s)", r["time"])
        } else {
            format!("{root_body} height at 1 s (MuJoCo does not rest)")
        };
        ((f64::from(h) - want).abs(), what)
    } else {
        let mut worst = (0.0f64, "");
        for j in r["joints"].as_array().unwrap() {
            let q = joint_coordinate(imp, &bodies, j);
            let want = j["after_1s"].as_f64().unwrap();
            if std::env::var("BACKDRIVE_SUITES_VERBOSE").is_ok_and(|v| v == "1") {
                println!("  {}: backdrive {q:.5}, MuJoCo {want:.5}", j["name"]);
            }
            if (q - want).abs() > worst.0 {
                worst = ((q - want).abs(), j["name"].as_str().unwrap());
            }
        }
        (
            worst.0,
            format!("joint coordinates at 1 s, worst '{}'", worst.1),
        )
    }
}

/// The contact-free models that load with the default importer. (gymnasium reacher is refused:
/// its armature.)
const CONVERGED_MODELS: [&str; 5] = [
    "dm_control/pendulum.xml",
    "dm_control/acrobot.xml",
    "dm_control/cartpole.xml",
    "gymnasium/inverted_pendulum.xml",
    "gymnasium/inverted_double_pendulum.xml",
];
/// Backdrive steps per file time step in the converged comparison; the fixture's
/// `converged_1s` is MuJoCo's RK4 at the same division.
const CONVERGED_DIVISION: u32 = 32;
/// Joints this stiff at 1/32 of the step are near rigid for these models: at half of both (1/16
/// of the step, 500 Hz) no compared joint is more than 1.6e-3 rad from where it is here
/// (measured).
const CONVERGED_JOINT_FREQUENCY: f32 = 1000.0;
/// Measured worst deviation is 1.6e-3 rad (pendulum); MuJoCo's Euler at the file's step is
/// 0.021 to 0.058 rad from the converged solution, so this bound is what separates a wrong
/// mass, inertia, axis or damping from discretisation.
const CONVERGED_TOLERANCE: f64 = 0.005;

/// The imported contact-free models have MuJoCo's equations of motion: solved to convergence in
/// both engines, every joint that stays inside its limits ends 1 s later where MuJoCo's does.
/// This is the check the 0.01 rad comparison at the file's time step cannot be: there, both
/// engines' first-order discretisations of these unstable chains differ by more than that.
#[test]
fn contact_free_models_follow_mujocos_equations_of_motion() {
    let Some(files) = suites_or_skip() else {
        return;
    };
    let reference = reference();
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for key in CONVERGED_MODELS {
        let path = &files
            .iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("{key} is not in the installed suites"))
            .1;
        let mut imp = mjcf::load_mjcf_with(path, &MjcfOptions::default())
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        let r = &reference["models"][key];
        imp.model.settings.dt /= CONVERGED_DIVISION as f32;
        imp.model.settings.joint_frequency = CONVERGED_JOINT_FREQUENCY;
        // Locks as stiff as the limits here (the importer's own lock frequency is for the
        // file's step).
        imp.model.settings.lock_frequency = None;
        let mut sim = Simulator::new(common::gpu(), &imp.model, 1).unwrap();
        sim.set_body_states(&start_states(&imp, r)).unwrap();
        sim.step(r["steps"].as_u64().unwrap() as u32 * CONVERGED_DIVISION)
            .unwrap();
        let bodies = sim.body_states().unwrap();
        for j in r["joints"].as_array().unwrap() {
            // Past a limit the two engines' soft limits differ by design (see README).
            if j["reaches_limit"].as_bool().unwrap() {
                continue;
            }
            let q = joint_coordinate(&imp, &bodies, j);
            let want = j["converged_1s"].as_f64().unwrap();
            let line = format!(
                "{key} '{}': backdrive {q:.5}, MuJoCo {want:.5}, off by {:.2e}",
                j["name"].as_str().unwrap(),
                (q - want).abs()
            );
            let off = (q - want).abs();
            if off.is_nan() || off > CONVERGED_TOLERANCE {
                failures.push(line.clone());
            }
            report.push(line);
        }
    }
    println!("{}", report.join("\n"));
    assert_eq!(report.len(), 9, "joints compared:\n{}", report.join("\n"));
    assert!(
        failures.is_empty(),
        "beyond {CONVERGED_TOLERANCE} rad or m:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------

/// What a run measures of one file.
fn measure(path: &Path, compared: Option<&Value>) -> Expectation {
    let mut e = Expectation::default();
    let lenient = MjcfOptions {
        ignore_unsupported: true,
        ..MjcfOptions::default()
    };
    let imp = match mjcf::load_mjcf_with(path, &MjcfOptions::default()) {
        Ok(imp) => {
            e.status = "loads".to_string();
            let mut sim = Simulator::new(common::gpu(), &imp.model, INSTANCES).unwrap();
            sim.step(STEPS).unwrap();
            let states = sim.body_states().unwrap();
            let bad = states.iter().position(|b| {
                !(b.position.iter().chain(&b.orientation))
                    .chain(&b.linear_velocity)
                    .chain(&b.angular_velocity)
                    .all(|x| x.is_finite())
            });
            if let Some(k) = bad {
                e.status = "non-finite".to_string();
                e.reason = format!(
                    "instance {} body '{}' is not finite after {STEPS} steps",
                    k / imp.model.bodies.len(),
                    imp.model.bodies[k % imp.model.bodies.len()].name
                );
            }
            Some(imp)
        }
        Err(err) => {
            e.status = "refused".to_string();
            e.reason = reason(&err);
            match mjcf::load_mjcf_with(path, &lenient) {
                Ok(imp) => Some(imp),
                Err(err) => {
                    if compared.is_some() {
                        e.compared = format!(
                            "not measured: even without its unsupported features: {}",
                            reason(&err)
                        );
                    }
                    None
                }
            }
        }
    };
    if let Some(imp) = &imp {
        e.approximated = approximations(imp);
    }
    if let (Some(r), Some(imp)) = (compared, &imp) {
        let (dev, what) = compare(imp, r);
        let tol = if r["kind"] == "legged" {
            HEIGHT_TOLERANCE
        } else {
            JOINT_TOLERANCE
        };
        // Four significant digits: the list records a measurement, not float noise.
        e.deviation = Some(format!("{dev:.4e}").parse().unwrap());
        e.compared = what;
        e.within_tolerance = Some(dev <= tol);
        e.measured_with = if e.status == "refused" {
            "ignore_unsupported".to_string()
        } else {
            "default".to_string()
        };
    }
    e
}

#[test]
fn suite_files_load_as_listed() {
    let Some(files) = suites_or_skip() else {
        return;
    };
    let list = if updating() {
        List::default()
    } else {
        read_list()
    };
    let reference = reference();
    let mut measured = List::default();
    let mut failures = Vec::new();
    for (key, path) in &files {
        let compared = reference["models"].get(key);
        let t = std::time::Instant::now();
        let got = measure(path, compared);
        println!(
            "{key}: {} ({:.1} s){}{}",
            got.status,
            t.elapsed().as_secs_f64(),
            if got.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", got.reason)
            },
            got.deviation
                .map(|d| format!(
                    "; {}: deviation {d} ({}, {})",
                    got.compared,
                    if got.within_tolerance == Some(true) {
                        "within tolerance"
                    } else {
                        "outside tolerance"
                    },
                    got.measured_with
                ))
                .unwrap_or_default()
        );
        if got.status == "non-finite" {
            failures.push(format!("{key}: {}", got.reason));
        }
        match list.files.get(key) {
            None => failures.push(format!("{key}: not in {}", list_path().display())),
            Some(want) => {
                if want.status != got.status || want.reason != got.reason {
                    failures.push(format!(
                        "{key}: listed as {} '{}', but the importer says {} '{}'",
                        want.status, want.reason, got.status, got.reason
                    ));
                }
                // A model that loads is held to its verdict; a refused one's deviation is
                // measured without features it lacks, so it is only reported.
                if got.status == "loads" && want.within_tolerance != got.within_tolerance {
                    failures.push(format!(
                        "{key}: listed {} MuJoCo's tolerance, measured {:?} ({})",
                        if want.within_tolerance == Some(true) {
                            "within"
                        } else {
                            "outside"
                        },
                        got.deviation,
                        got.compared
                    ));
                }
                if compared.is_some() && want.deviation.is_none() && want.compared.is_empty() {
                    failures.push(format!(
                        "{key}: compared with MuJoCo but no deviation listed"
                    ));
                }
            }
        }
        measured.files.insert(key.clone(), got);
    }
    for key in list.files.keys() {
        if !measured.files.contains_key(key) {
            failures.push(format!("{key}: listed but not found in the packages"));
        }
    }
    let loads = measured
        .files
        .values()
        .filter(|e| e.status == "loads")
        .count();
    println!(
        "{loads} of {} files load with the default importer",
        files.len()
    );
    if updating() {
        let text = format!(
            "{LIST_HEADER}\n{}",
            toml::to_string_pretty(&measured).unwrap()
        );
        write_atomically(&list_path(), &text);
        println!("wrote {}", list_path().display());
        // The table test may already have rendered the old list: render the new one here too.
        rewrite_readme_table(&measured);
        return;
    }
    assert!(
        failures.is_empty(),
        "{} difference(s) from {} (rerun with BACKDRIVE_UPDATE_SUITES=1 to record progress):\n{}",
        failures.len(),
        list_path().display(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The README table

const TABLE_BEGIN: &str =
    "<!-- suites-table: begin (generated from tests/fixtures/mjcf/suites.toml) -->";
const TABLE_END: &str = "<!-- suites-table: end -->";

fn render_table(list: &List) -> String {
    let mut out = String::new();
    out.push_str(TABLE_BEGIN);
    out.push('\n');
    out.push_str("| file | loads | approximated | deviation from MuJoCo |\n|---|---|---|---|\n");
    for (key, e) in &list.files {
        let loads = match e.status.as_str() {
            "loads" => "yes".to_string(),
            _ => {
                // The reason without the file name it starts with.
                let r = e
                    .reason
                    .split_once(": ")
                    .map(|(_, r)| r)
                    .unwrap_or(&e.reason);
                format!("no: {}", r.replace('|', "\\|"))
            }
        };
        let approx = if e.approximated.is_empty() {
            "-".to_string()
        } else {
            e.approximated.join(", ")
        };
        let dev = match (e.deviation, e.within_tolerance) {
            (Some(d), Some(w)) => format!(
                "{d} ({}; {}{})",
                e.compared,
                if w { "within" } else { "outside" },
                if e.measured_with == "ignore_unsupported" {
                    ", without the unsupported features"
                } else {
                    ""
                }
            ),
            _ if !e.compared.is_empty() => e.compared.replace('|', "\\|"),
            _ => "-".to_string(),
        };
        out.push_str(&format!("| `{key}` | {loads} | {approx} | {dev} |\n"));
    }
    out.push_str(TABLE_END);
    out
}

/// Replaces README.md's suites table with `list`'s rendering.
fn rewrite_readme_table(list: &List) {
    let readme_path = root().join("README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let (Some(a), Some(b)) = (readme.find(TABLE_BEGIN), readme.find(TABLE_END)) else {
        panic!("README.md has no suites table markers");
    };
    let text = readme.replace(&readme[a..b + TABLE_END.len()], &render_table(list));
    write_atomically(&readme_path, &text);
}

#[test]
fn readme_table_agrees_with_the_list() {
    let list = read_list();
    assert_eq!(list.files.len(), 33, "the list covers the 33 suite files");
    let readme_path = root().join("README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let (Some(a), Some(b)) = (readme.find(TABLE_BEGIN), readme.find(TABLE_END)) else {
        panic!("README.md has no suites table markers");
    };
    let current = &readme[a..b + TABLE_END.len()];
    let want = render_table(&list);
    if updating() {
        rewrite_readme_table(&list);
        return;
    }
    assert_eq!(
        current, want,
        "README.md's suites table differs from tests/fixtures/mjcf/suites.toml (regenerate it \
         with BACKDRIVE_UPDATE_SUITES=1 cargo test --release --test mjcf_suites readme)"
    );
}

#[test]
fn reason_strips_the_directory_and_the_advice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mocap.xml");
    std::fs::write(
        &path,
        "<mujoco>\n<worldbody>\n<body mocap=\"true\"><joint/><geom size=\"0.1\"/></body>\
         </worldbody></mujoco>\n",
    )
    .unwrap();
    let err = mjcf::load_mjcf_with(&path, &MjcfOptions::default()).unwrap_err();
    let r = reason(&err);
    assert!(r.starts_with("mocap.xml:3: body: "), "{r}");
    assert!(!r.contains("ignore_unsupported"), "{r}");
    assert!(!r.contains(&dir.path().display().to_string()), "{r}");
}

/// The recorded MuJoCo numbers are still what MuJoCo computes, when the suites' Python has the
/// same MuJoCo version as the one recorded (another version may legitimately differ in the
/// last digits): `benches/mjcf_suites_reference.py --check`.
#[test]
fn suites_reference_is_what_mujoco_computes() {
    if suites_or_skip().is_none() {
        return;
    }
    let python = std::env::var("BACKDRIVE_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let version = Command::new(&python)
        .args(["-c", "import mujoco; print(mujoco.__version__)"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let recorded = reference()["mujoco"].as_str().unwrap().to_string();
    if version.as_deref() != Some(recorded.as_str()) {
        println!(
            "SKIPPED: {python} has mujoco {version:?}, the reference was recorded with {recorded}"
        );
        return;
    }
    let out = Command::new(&python)
        .arg(root().join("benches/mjcf_suites_reference.py"))
        .arg("--check")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
}

// ---------------------------------------------------------------------------------------------
// Probe: the legged models' drop, traced in the f32 twin

/// A setting change the drop trace applies to the imported model (`NAME=VALUE`).
fn apply_setting(model: &mut backdrive::Model, assignment: &str) {
    let (name, value) = assignment
        .split_once('=')
        .unwrap_or_else(|| panic!("'{assignment}' is not NAME=VALUE"));
    let v: f32 = value
        .parse()
        .unwrap_or_else(|e| panic!("{assignment}: {e}"));
    let s = &mut model.settings;
    match name {
        "contact_frequency" => s.contact_frequency = v,
        "contact_damping_ratio" => s.contact_damping_ratio = v,
        "joint_frequency" => s.joint_frequency = v,
        "joint_damping_ratio" => s.joint_damping_ratio = v,
        "limit_frequency" => s.limit_frequency = Some(v),
        "limit_damping_ratio" => s.limit_damping_ratio = Some(v),
        "solver_iterations" => s.solver_iterations = v as u32,
        "warm_start" => s.warm_start = v,
        "solver_relaxation" => s.solver_relaxation = v,
        "friction" => model.bodies.iter_mut().for_each(|b| b.friction = v),
        "armature" => model.joints.iter_mut().for_each(|j| j.armature *= v),
        "damping" => model.joints.iter_mut().for_each(|j| j.damping *= v),
        other => panic!("unknown setting '{other}'"),
    }
}

/// Prints the root body's height every 0.25 s over 5 s of each legged model's drop (the f32
/// twin, from the reference's start), and the root's tilt and every joint coordinate at 1 s and
/// at the end: what `benches/mjcf_legged_trace.py` prints for MuJoCo. `BACKDRIVE_TRACE` picks
/// the models (comma separated keys), `BACKDRIVE_TRACE_SET` changes settings
/// (`contact_frequency=60,solver_iterations=100`; see `apply_setting`), `BACKDRIVE_TRACE_EVERY`
/// the sampling period in seconds, `BACKDRIVE_TRACE_JOINTS` joints printed with each height,
/// `BACKDRIVE_TRACE_MUJOCO_LIMITS=1` imports with `MjcfOptions::mujoco_limit_softness`.
#[test]
#[ignore = "a diagnostic probe: prints trajectories, checks nothing"]
fn legged_drop_trace() {
    use backdrive::engine::layout::{BODY_STATE_LEN, Compiled};
    use backdrive::engine::twin::Instance;
    let Some(files) = suites_or_skip() else {
        return;
    };
    let reference = reference();
    let wanted = std::env::var("BACKDRIVE_TRACE").unwrap_or_default();
    let set = std::env::var("BACKDRIVE_TRACE_SET").unwrap_or_default();
    for (key, path) in &files {
        let r = &reference["models"][key.as_str()];
        if r["kind"] != "legged" || !(wanted.is_empty() || wanted.split(',').any(|w| w == key)) {
            continue;
        }
        let options = MjcfOptions {
            mujoco_limit_softness: std::env::var("BACKDRIVE_TRACE_MUJOCO_LIMITS")
                .is_ok_and(|v| v == "1"),
            ..MjcfOptions::default()
        };
        let Ok(mut imp) = mjcf::load_mjcf_with(path, &options) else {
            println!("{key}: refused");
            continue;
        };
        for a in set.split(',').filter(|a| !a.is_empty()) {
            apply_setting(&mut imp.model, a);
        }
        let start = start_states(&imp, r);
        let compiled = Compiled::new(&imp.model);
        let mut twin = Instance::<f32>::new(&compiled);
        for (b, s) in start.iter().enumerate() {
            // Slot 0 is the world body's.
            let k = (b + 1) * BODY_STATE_LEN;
            twin.state[k..k + 3].copy_from_slice(&s.position);
            twin.state[k + 3..k + 7].copy_from_slice(&s.orientation);
        }
        let bodies_of = |twin: &Instance<f32>| -> Vec<BodyState> {
            (0..imp.model.bodies.len())
                .map(|b| {
                    let s = &twin.state[(b + 1) * BODY_STATE_LEN..(b + 2) * BODY_STATE_LEN];
                    BodyState {
                        position: [s[0], s[1], s[2]],
                        orientation: [s[3], s[4], s[5], s[6]],
                        linear_velocity: [s[7], s[8], s[9]],
                        angular_velocity: [s[10], s[11], s[12]],
                    }
                })
                .collect()
        };
        let dt = f64::from(imp.model.settings.dt);
        let root_body = r["root"].as_str().unwrap();
        let period: f64 = std::env::var("BACKDRIVE_TRACE_EVERY")
            .map(|v| v.parse().unwrap())
            .unwrap_or(0.25);
        let watched: Vec<&Value> = std::env::var("BACKDRIVE_TRACE_JOINTS")
            .map(|names| {
                r["joints"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|j| names.split(',').any(|n| j["name"] == n))
                    .collect()
            })
            .unwrap_or_default();
        let every = ((period / dt).round() as usize).max(1);
        let total = (5.0 / dt).round() as usize;
        let mut heights = Vec::new();
        let pose = |bodies: &[BodyState]| -> String {
            let (_, q) = imp.frame_pose(root_body, bodies).unwrap();
            let up = Quat::from_array(q) * Vec3::Z;
            let joints: Vec<String> = r["joints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| {
                    format!(
                        "{} {:+.3}",
                        j["name"].as_str().unwrap(),
                        joint_coordinate(&imp, bodies, j)
                    )
                })
                .collect();
            format!(
                "tilt {:.1} deg; {}",
                up.z.clamp(-1.0, 1.0).acos().to_degrees(),
                joints.join(", ")
            )
        };
        let mut at_1s = String::new();
        for step in 0..=total {
            let bodies = bodies_of(&twin);
            if step % every == 0 {
                let q: Vec<String> = watched
                    .iter()
                    .map(|j| format!("{:+.2}", joint_coordinate(&imp, &bodies, j)))
                    .collect();
                heights.push(format!(
                    "{:.3}{}",
                    imp.frame_pose(root_body, &bodies).unwrap().0[2],
                    if q.is_empty() {
                        String::new()
                    } else {
                        format!("({})", q.join(" "))
                    }
                ));
            }
            if step == (1.0 / dt).round() as usize {
                at_1s = pose(&bodies);
            }
            if step < total {
                twin.step();
            }
        }
        println!(
            "{key} (contacts {} Hz, ratio {}, limits {:?}, {} sweeps): {}\n  1 s: {at_1s}\n  5 s: {}\n  MuJoCo {} {}",
            imp.model.settings.contact_frequency,
            imp.model.settings.contact_damping_ratio,
            imp.model.settings.limit_softness(),
            imp.model.settings.solver_iterations,
            heights.join(" "),
            pose(&bodies_of(&twin)),
            if r["rests"].as_bool().unwrap() {
                "rests at"
            } else {
                "at 1 s:"
            },
            r["height"]
        );
    }
}
