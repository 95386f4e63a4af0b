//! Mesh geoms in MJCF: STL files read for their mass (`<asset><mesh>`, `<compiler meshdir>`,
//! `scale`), placed as MuJoCo places them (re-centred at the mesh's centre of mass, turned to
//! its principal axes), and dm_control's dog, whose bodies weigh what their 157 bone meshes
//! weigh, against MuJoCo's compiled model (`tests/fixtures/mjcf/dog_masses.json`, recorded by
//! `benches/mjcf_mesh_reference.py`). The dog test finds dm_control with the Python in
//! `BACKDRIVE_PYTHON` (else `python3`) and says SKIPPED without it, unless
//! `BACKDRIVE_REQUIRE_SUITES=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

use backdrive::io::mjcf::{self, BodyMass, MjcfOptions};
use backdrive::model::ShapeKind;
use glam::{DQuat, DVec3, EulerRot};

/// A binary STL of the box [0, a] x [0, b] x [0, c] (12 outward triangles).
fn write_box_stl(path: &Path, [a, b, c]: [f32; 3]) {
    let corner = |k: usize| {
        stl_io::Vertex::new([
            if k & 1 != 0 { a } else { 0.0 },
            if k & 2 != 0 { b } else { 0.0 },
            if k & 4 != 0 { c } else { 0.0 },
        ])
    };
    let faces: [[usize; 3]; 12] = [
        [0, 2, 1],
        [1, 2, 3],
        [4, 5, 6],
        [5, 7, 6],
        [0, 1, 4],
        [1, 5, 4],
        [2, 6, 3],
        [3, 6, 7],
        [0, 4, 2],
        [2, 4, 6],
        [1, 3, 5],
        [3, 7, 5],
    ];
    let triangles: Vec<stl_io::Triangle> = faces
        .iter()
        .map(|f| stl_io::Triangle {
            normal: stl_io::Normal::new([0.0; 3]),
            vertices: f.map(corner),
        })
        .collect();
    let mut out = std::fs::File::create(path).unwrap();
    stl_io::write_stl(&mut out, triangles.iter()).unwrap();
}

fn mass_of<'a>(masses: &'a [BodyMass], name: &str) -> &'a BodyMass {
    masses
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no body '{name}'"))
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

/// A model with a body made of a box mesh (from `assets/box.stl`, scaled by 2, posed by the
/// geom) next to the same box as a box geom, and whatever `extra` adds to the world body.
fn box_model(dir: &Path, mesh_attrs: &str, geom_attrs: &str, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    write_box_stl(&dir.join("assets/box.stl"), [0.1, 0.2, 0.3]);
    let text = format!(
        r#"<mujoco>
  <compiler meshdir="assets/"/>
  <asset>
    <mesh name="box" file="box.stl" scale="2 2 2"{mesh_attrs}/>
  </asset>
  <worldbody>
    <geom type="plane" size="5 5 .1"/>
    <body name="meshed" pos="0 0 1">
      <freejoint/>
      <geom type="mesh" mesh="box" contype="0" conaffinity="0" density="700"
            pos=".05 -.1 .2" euler="30 -20 45"{geom_attrs}/>
      <geom type="sphere" size=".02" pos="0 0 -.2" mass="0.001"/>
    </body>
    {extra}
  </worldbody>
</mujoco>
"#
    );
    let path = dir.join("model.xml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_box_mesh_weighs_and_sits_where_the_same_box_geom_does() {
    let dir = tempfile::tempdir().unwrap();
    // The scaled mesh is the box [0, .2] x [0, .4] x [0, .6] in the geom frame: its centre
    // (.1, .2, .3) there, half sizes (.1, .2, .3).
    let q = DQuat::from_euler(
        EulerRot::XYZ,
        30f64.to_radians(),
        -20f64.to_radians(),
        45f64.to_radians(),
    );
    let centre = DVec3::new(0.05, -0.1, 1.2) + q * DVec3::new(0.1, 0.2, 0.3);
    let (w, x, y, z) = (q.w, q.x, q.y, q.z);
    let extra = format!(
        r#"<body name="boxed" pos="{} {} {}">
      <freejoint/>
      <geom type="box" size=".1 .2 .3" quat="{w} {x} {y} {z}" contype="0" conaffinity="0"
            density="700"/>
      <geom type="sphere" size=".02" pos="{} {} {}" mass="0.001"/>
    </body>"#,
        centre.x,
        centre.y,
        centre.z,
        -centre.x,
        -centre.y,
        -0.2 + 1.0 - centre.z,
    );
    let path = box_model(dir.path(), "", "", &extra);
    let imp =
        mjcf::load_mjcf_with(&path, &MjcfOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let (meshed, boxed) = (
        mass_of(&imp.masses, "meshed"),
        mass_of(&imp.masses, "boxed"),
    );
    let want_mass = 700.0 * 0.2 * 0.4 * 0.6 + 0.001;
    assert!(relative(meshed.mass, want_mass) < 1e-6, "{meshed:?}");
    assert!(
        relative(meshed.mass, boxed.mass) < 1e-6,
        "{meshed:?} {boxed:?}"
    );
    let com_gap = (DVec3::from_array(meshed.com) - DVec3::from_array(boxed.com)).length();
    assert!(com_gap < 1e-6, "{meshed:?} {boxed:?}");
    for k in 0..3 {
        assert!(
            relative(meshed.inertia[k], boxed.inertia[k]) < 1e-5,
            "{meshed:?} {boxed:?}"
        );
    }
    // The mesh is only mass: one contact shape (the sphere) on each body.
    assert!(imp.model.bodies.iter().all(|b| b.shapes.len() == 1));
}

#[test]
fn mesh_files_that_cannot_be_read_are_errors_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = box_model(dir.path(), "", "", "");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("file=\"box.stl\"", "file=\"missing.stl\"");
    std::fs::write(&path, text).unwrap();
    let err = mjcf::load_mjcf_with(&path, &MjcfOptions::default())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.xml:4"), "{err}");
    assert!(err.contains("missing.stl"), "{err}");

    // A file that is not STL is refused at its line; without it the body keeps its sphere.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("missing.stl", "bone.obj");
    std::fs::write(&path, text).unwrap();
    let err = mjcf::load_mjcf_with(&path, &MjcfOptions::default())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.xml:4"), "{err}");
    assert!(err.contains("STL meshes only"), "{err}");
    let lenient = MjcfOptions {
        ignore_unsupported: true,
        ..MjcfOptions::default()
    };
    let imp = mjcf::load_mjcf_with(&path, &lenient).unwrap_or_else(|e| panic!("{e}"));
    assert!((mass_of(&imp.masses, "meshed").mass - 0.001).abs() < 1e-12);

    // A truncated STL names the STL file.
    let stl = dir.path().join("assets/box.stl");
    let bytes = std::fs::read(&stl).unwrap();
    std::fs::write(&stl, &bytes[..300]).unwrap();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("bone.obj", "box.stl");
    std::fs::write(&path, text).unwrap();
    let err = mjcf::load_mjcf_with(&path, &MjcfOptions::default())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.xml:4") && err.contains("box.stl"),
        "{err}"
    );
}

#[test]
fn a_colliding_mesh_is_refused_by_name_but_its_mass_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = box_model(dir.path(), "", r#" name="shell""#, "");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(r#"contype="0" conaffinity="0" density"#, "density");
    std::fs::write(&path, text).unwrap();
    let err = mjcf::load_mjcf_with(&path, &MjcfOptions::default())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("geom 'shell'"), "{err}");
    assert!(err.contains("model.xml:10"), "{err}");
    let lenient = MjcfOptions {
        ignore_unsupported: true,
        ..MjcfOptions::default()
    };
    let imp = mjcf::load_mjcf_with(&path, &lenient).unwrap_or_else(|e| panic!("{e}"));
    let m = mass_of(&imp.masses, "meshed").mass;
    assert!(relative(m, 700.0 * 0.048 + 0.001) < 1e-6, "{m}");
    assert_eq!(
        imp.model.bodies[0].shapes.len(),
        1,
        "only the sphere touches"
    );

    // Asked for, the mesh touches through its equivalent-inertia box: for a box mesh, itself.
    let boxes = MjcfOptions {
        colliding_meshes_as_boxes: true,
        ..MjcfOptions::default()
    };
    let imp = mjcf::load_mjcf_with(&path, &boxes).unwrap_or_else(|e| panic!("{e}"));
    let body = &imp.model.bodies[0];
    let mut halves: Vec<f32> = body
        .shapes
        .iter()
        .find_map(|s| match s.kind {
            ShapeKind::Box { half_extents } => Some(half_extents.to_vec()),
            _ => None,
        })
        .expect("a box contact shape");
    halves.sort_by(f32::total_cmp);
    for (got, want) in halves.iter().zip([0.1, 0.2, 0.3]) {
        assert!((got - want).abs() < 1e-6, "{halves:?}");
    }
    let note = imp
        .warnings
        .iter()
        .find(|w| w.message.contains("equivalent-inertia box"))
        .expect("a warning stating the box");
    assert_eq!(note.line, 10, "{note}");
    assert!(note.message.contains("at most 0.0 mm"), "{note}");
    let m = mass_of(&imp.masses, "meshed").mass;
    assert!(relative(m, 700.0 * 0.048 + 0.001) < 1e-6, "{m}");
}

#[test]
fn mesh_inertia_modes_follow_mujoco() {
    let dir = tempfile::tempdir().unwrap();
    // A shell box: density per area, so the mass is 700 times the surface.
    let path = box_model(dir.path(), r#" inertia="shell""#, "", "");
    let imp =
        mjcf::load_mjcf_with(&path, &MjcfOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let area = 2.0 * (0.2 * 0.4 + 0.4 * 0.6 + 0.2 * 0.6);
    let m = mass_of(&imp.masses, "meshed").mass;
    assert!(relative(m, 700.0 * area + 0.001) < 1e-6, "{m}");
    // A mirrored mesh (negative scale) keeps its volume.
    let path = box_model(dir.path(), r#" inertia="exact""#, "", "");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(r#"scale="2 2 2""#, r#"scale="-2 2 2""#);
    std::fs::write(&path, text).unwrap();
    let imp =
        mjcf::load_mjcf_with(&path, &MjcfOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let m = mass_of(&imp.masses, "meshed").mass;
    assert!(relative(m, 700.0 * 0.048 + 0.001) < 1e-6, "{m}");
    // shellinertia on a mesh geom is MuJoCo's error too.
    let path = box_model(dir.path(), "", r#" shellinertia="true""#, "");
    let err = mjcf::load_mjcf_with(&path, &MjcfOptions::default())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("shellinertia"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// dm_control's dog against MuJoCo

/// dm_control's `suite/dog.xml`, found by the suites' Python.
fn dog_or_skip() -> Option<PathBuf> {
    let python = std::env::var("BACKDRIVE_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = "import importlib.util as u, os\n\
                  s = u.find_spec('dm_control')\n\
                  print(os.path.join(s.submodule_search_locations[0], 'suite', 'dog.xml'))\n";
    let found = Command::new(&python)
        .args(["-c", script])
        .output()
        .map_err(|e| format!("{python}: {e}"))
        .and_then(|out| {
            if out.status.success() {
                Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
            } else {
                Err(format!("{python} does not find dm_control"))
            }
        });
    match found {
        Ok(path) => Some(path),
        Err(why) => {
            let required = std::env::var("BACKDRIVE_REQUIRE_SUITES").is_ok_and(|v| v == "1");
            assert!(!required, "BACKDRIVE_REQUIRE_SUITES=1 but {why}");
            println!("SKIPPED: {why} (set BACKDRIVE_PYTHON to a Python that has it)");
            None
        }
    }
}

/// Relative tolerance on each body's mass and principal moments, and on its centre of mass
/// (relative to the body's size, taken as 1 m): both engines compute in f64 from the same f32
/// vertices, so they agree far inside it.
const DOG_TOLERANCE: f64 = 1e-6;

#[test]
fn dogs_bodies_weigh_what_mujoco_compiles() {
    let Some(dog) = dog_or_skip() else { return };
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mjcf/dog_masses.json");
    let text = std::fs::read_to_string(&fixture).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    // What else the dog lacks is not the masses' business.
    let options = MjcfOptions {
        ignore_unsupported: true,
        ..MjcfOptions::default()
    };
    let imp = mjcf::load_mjcf_with(&dog, &options).unwrap_or_else(|e| panic!("{e}"));
    let bodies = reference["bodies"].as_array().unwrap();
    assert_eq!(bodies.len(), imp.masses.len());
    let num = |v: &serde_json::Value| v.as_f64().unwrap();
    let vec3 = |v: &serde_json::Value| {
        let a = v.as_array().unwrap();
        [num(&a[0]), num(&a[1]), num(&a[2])]
    };
    let mut worst = (0.0_f64, String::new());
    for want in bodies {
        let name = want["name"].as_str().unwrap();
        let got = mass_of(&imp.masses, name);
        let mut inertia = vec3(&want["inertia"]);
        inertia.sort_by(|a, b| b.total_cmp(a));
        let com = vec3(&want["xipos"]);
        let mut errors = vec![("mass", relative(got.mass, num(&want["mass"])))];
        for k in 0..3 {
            errors.push(("inertia", relative(got.inertia[k], inertia[k])));
            errors.push(("com", (got.com[k] - com[k]).abs()));
        }
        for (what, e) in errors {
            if e > worst.0 {
                worst = (e, format!("{name} {what}"));
            }
            assert!(
                e <= DOG_TOLERANCE,
                "{name}: {what} off by {e:e}: backdrive {got:?}, MuJoCo {want}"
            );
        }
    }
    println!(
        "dog: {} bodies, largest relative deviation from MuJoCo {:.2e} ({})",
        bodies.len(),
        worst.0,
        worst.1
    );
}
