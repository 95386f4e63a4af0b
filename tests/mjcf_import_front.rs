//! The MJCF import front: `<include>`, visual-only content, collision filters and pairs,
//! `solref`/`solimp`, and the approximate contact shapes of moving cylinders and ellipsoids.

mod common;

use std::path::PathBuf;

use backdrive::Simulator;
use backdrive::io::mjcf::{self, MjcfImport, MjcfOptions};
use backdrive::model::ShapeKind;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mjcf")
        .join(name)
}

fn import(text: &str) -> MjcfImport {
    mjcf::from_str(text, None, &MjcfOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn import_err(text: &str) -> String {
    mjcf::from_str(text, None, &MjcfOptions::default())
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// <include>

#[test]
fn nested_includes_resolve_relative_to_the_including_file() {
    let imp = mjcf::load_mjcf_with(fixture("include/main.xml"), &MjcfOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    // The time step and the default density come from parts/settings.xml, which itself
    // includes ../common/visual.xml; the body from parts/robot.xml inside <worldbody>.
    assert_eq!(imp.model.settings.dt, 0.004);
    assert_eq!(imp.model.bodies.len(), 1);
    let ball = &imp.model.bodies[0];
    assert_eq!(ball.name, "ball");
    let want = 500.0 * 4.0 / 3.0 * std::f32::consts::PI * 0.001;
    assert!(
        (ball.mass - want).abs() < 1e-5 * want,
        "{} {want}",
        ball.mass
    );
    assert_eq!(ball.shapes.len(), 1, "the ball touches the floor");
    // Visual content (textures, materials, lights, cameras, sites) says nothing.
    assert!(imp.warnings.is_empty(), "{:?}", imp.warnings);
}

#[test]
fn an_include_cycle_is_refused_naming_both_files() {
    let err = mjcf::load_mjcf_with(fixture("include/cycle_a.xml"), &MjcfOptions::default())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("include cycle"), "{err}");
    // Found at the include in cycle_b.xml (line 3), naming cycle_a.xml as the file it repeats.
    assert!(err.contains("cycle_b.xml:3"), "{err}");
    assert!(err.contains("cycle_a.xml, which is already"), "{err}");
}

#[test]
fn an_error_in_an_included_file_names_that_file_and_line() {
    let err = mjcf::load_mjcf_with(fixture("include/bad_main.xml"), &MjcfOptions::default())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("parts/bad_body.xml:5"), "{err}");
    assert!(err.contains("geom.size"), "{err}");
}

#[test]
fn a_missing_included_file_is_an_error_at_the_include() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.xml");
    std::fs::write(
        &path,
        "<mujoco>\n  <include file=\"gone.xml\"/>\n  <worldbody/>\n</mujoco>\n",
    )
    .unwrap();
    let err = mjcf::load_mjcf_with(&path, &MjcfOptions::default())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("m.xml:2"), "{err}");
    assert!(err.contains("gone.xml"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Visual-only content

#[test]
fn visual_meshes_are_skipped_with_one_summary_line() {
    let mut body = String::new();
    for k in 0..5 {
        body.push_str(&format!(
            "<geom name=\"skin{k}\" type=\"mesh\" mesh=\"m\" contype=\"0\" conaffinity=\"0\"/>\n"
        ));
    }
    let text = format!(
        "<mujoco><asset><mesh name=\"m\" file=\"m.stl\"/></asset><worldbody>\n\
         <geom type=\"plane\" size=\"1 1 1\"/>\n\
         <body pos=\"0 0 1\"><freejoint/><inertial pos=\"0 0 0\" mass=\"2\" \
         diaginertia=\"0.1 0.1 0.1\"/>\n<geom size=\"0.1\"/>\n{body}</body></worldbody></mujoco>"
    );
    let imp = import(&text);
    assert_eq!(imp.warnings.len(), 1, "{:?}", imp.warnings);
    assert!(
        imp.warnings[0].message.contains("5 visual-only"),
        "{}",
        imp.warnings[0]
    );
    assert_eq!(imp.model.bodies[0].mass, 2.0);
}

#[test]
fn a_colliding_mesh_is_an_error_naming_geom_and_line() {
    // The body's <inertial> stands, so the mesh file is not needed for its mass.
    let err = import_err(
        "<mujoco><worldbody><geom type=\"plane\" size=\"1 1 1\"/>\n\
         <body><freejoint/><inertial pos=\"0 0 0\" mass=\"1\" diaginertia=\"1 1 1\"/>\n\
         <geom name=\"hull\" type=\"mesh\" mesh=\"m\"/></body></worldbody></mujoco>",
    );
    assert!(err.contains("line 3:"), "{err}");
    assert!(err.contains("geom 'hull'"), "{err}");
    assert!(err.contains("colliding mesh"), "{err}");
}

#[test]
fn a_mesh_whose_mass_is_needed_names_its_missing_asset() {
    // No <inertial>: the body's mass comes from the mesh, as in MuJoCo, so its asset must exist.
    let err = import_err(
        "<mujoco><worldbody>\n<body><freejoint/><geom size=\"0.1\"/>\n\
         <geom name=\"bone\" type=\"mesh\" mesh=\"m\" contype=\"0\" conaffinity=\"0\"/>\
         </body></worldbody></mujoco>",
    );
    assert!(
        err.contains("line 3:") && err.contains("geom 'bone'"),
        "{err}"
    );
    assert!(err.contains("no <mesh> asset named 'm'"), "{err}");
}

#[test]
fn visual_height_fields_whose_mass_is_needed_are_one_unsupported_line() {
    // MuJoCo would weigh them; backdrive cannot. Many such geoms are one line, naming the first.
    let text = "<mujoco><asset><hfield name=\"h\" nrow=\"2\" ncol=\"2\" size=\"1 1 1 1\"/>\
         </asset><worldbody>\n<body><freejoint/><geom size=\"0.1\"/>\n\
         <geom name=\"b1\" type=\"hfield\" hfield=\"h\" contype=\"0\" conaffinity=\"0\"/>\n\
         <geom name=\"b2\" type=\"hfield\" hfield=\"h\" contype=\"0\" conaffinity=\"0\"/>\n\
         <geom name=\"b3\" type=\"hfield\" hfield=\"h\" contype=\"0\" conaffinity=\"0\"/>\
         </body></worldbody></mujoco>";
    let err = import_err(text);
    assert!(err.contains("mass"), "{err}");
    let lenient = MjcfOptions {
        ignore_unsupported: true,
        ..MjcfOptions::default()
    };
    let imp = mjcf::from_str(text, None, &lenient).unwrap();
    let lines: Vec<_> = imp
        .warnings
        .iter()
        .filter(|w| w.message.contains("their mass cannot be computed"))
        .collect();
    assert_eq!(lines.len(), 1, "{:?}", imp.warnings);
    assert_eq!(lines[0].line, 3);
    assert!(
        lines[0].message.contains("geom 'b1' (hfield) and 2 more"),
        "{}",
        lines[0]
    );
}

// ---------------------------------------------------------------------------------------------
// contype / conaffinity, <exclude>, <pair>

fn shapes_of(imp: &MjcfImport) -> Vec<usize> {
    imp.model.bodies.iter().map(|b| b.shapes.len()).collect()
}

fn ball(name: &str, x: f32, geom_attrs: &str) -> String {
    format!(
        "<body name=\"{name}\" pos=\"{x} 0 0.5\"><freejoint/>\
         <geom name=\"{name}_g\" size=\"0.1\" {geom_attrs}/></body>\n"
    )
}

#[test]
fn collision_filters_follow_mujocos_rule() {
    let text = format!(
        "<mujoco><worldbody><geom name=\"floor\" type=\"plane\" size=\"1 1 1\" contype=\"1\" \
         conaffinity=\"1\"/>\n{}{}{}{}{}</worldbody></mujoco>",
        ball("none", 0.0, "contype=\"0\" conaffinity=\"0\""),
        ball("other", 1.0, "contype=\"2\" conaffinity=\"2\""),
        ball("type_only", 2.0, "contype=\"1\" conaffinity=\"0\""),
        ball("affinity_only", 3.0, "contype=\"0\" conaffinity=\"1\""),
        ball("default", 4.0, ""),
    );
    let imp = import(&text);
    assert_eq!(shapes_of(&imp), vec![0, 0, 1, 1, 1]);
}

#[test]
fn excluding_the_world_removes_ground_contact() {
    let text = format!(
        "<mujoco><worldbody><geom name=\"floor\" type=\"plane\" size=\"1 1 1\"/>\n{}{}\
         </worldbody><contact><exclude body1=\"world\" body2=\"a\"/></contact></mujoco>",
        ball("a", 0.0, ""),
        ball("b", 1.0, ""),
    );
    assert_eq!(shapes_of(&import(&text)), vec![0, 1]);
}

#[test]
fn a_pair_with_the_ground_makes_a_filtered_geom_collide() {
    let text = format!(
        "<mujoco><worldbody><geom name=\"floor\" type=\"plane\" size=\"1 1 1\"/>\n{}\
         </worldbody><contact><pair geom1=\"floor\" geom2=\"a_g\"/></contact></mujoco>",
        ball("a", 0.0, "contype=\"0\" conaffinity=\"0\""),
    );
    assert_eq!(shapes_of(&import(&text)), vec![1]);
}

#[test]
fn a_pair_between_bodies_is_unsupported_with_its_line() {
    let text = format!(
        "<mujoco><worldbody><geom name=\"floor\" type=\"plane\" size=\"1 1 1\"/>\n{}{}\
         </worldbody><contact>\n<pair geom1=\"a_g\" geom2=\"b_g\"/></contact></mujoco>",
        ball("a", 0.0, ""),
        ball("b", 1.0, ""),
    );
    let err = import_err(&text);
    assert!(
        err.contains("line 5:") && err.contains("contact pair 'a_g' / 'b_g'"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// solref / solimp

fn with_solref(geom: &str, floor: &str) -> MjcfImport {
    import(&format!(
        "<mujoco><worldbody><geom name=\"floor\" type=\"plane\" size=\"1 1 1\" {floor}/>\n{}\
         </worldbody></mujoco>",
        ball("a", 0.0, geom)
    ))
}

#[test]
fn solref_sets_the_contact_frequency_and_damping_ratio() {
    let default = with_solref("", "");
    let s = &default.model.settings;
    // MuJoCo's default (0.02 s, ratio 1): the same resting penetration under gravity, between
    // 0.2 and 0.5 mm, so a frequency of 22 to 36 Hz.
    assert!(
        s.contact_frequency > 22.0 && s.contact_frequency < 36.0,
        "{}",
        s.contact_frequency
    );
    assert_eq!(s.contact_damping_ratio, 1.0);
    // Halving the time constant on both geoms stiffens the contact; the ratio follows solref.
    let stiff = with_solref("solref=\"0.01 0.5\"", "solref=\"0.01 0.5\"");
    assert!(stiff.model.settings.contact_frequency > s.contact_frequency * 1.5);
    assert_eq!(stiff.model.settings.contact_damping_ratio, 0.5);
    // One geom's solref is mixed with the floor's (MuJoCo's default solmix: the mean).
    let mixed = with_solref("solref=\"0.01 0.5\"", "");
    assert_eq!(mixed.model.settings.contact_damping_ratio, 0.75);
    assert!(mixed.warnings.is_empty(), "{:?}", mixed.warnings);
}

#[test]
fn differing_softness_is_one_warning() {
    let text = format!(
        "<mujoco><worldbody><geom type=\"plane\" size=\"1 1 1\"/>\n{}{}{}</worldbody></mujoco>",
        ball("a", 0.0, ""),
        ball("b", 1.0, ""),
        ball("c", 2.0, "solref=\"0.005 1\""),
    );
    let imp = import(&text);
    let softness: Vec<_> = imp
        .warnings
        .iter()
        .filter(|w| w.message.contains("different softnesses"))
        .collect();
    assert_eq!(softness.len(), 1, "{:?}", imp.warnings);
    // The majority (two default geoms) wins.
    assert_eq!(
        imp.model.settings.contact_frequency,
        with_solref("", "").model.settings.contact_frequency
    );
}

// ---------------------------------------------------------------------------------------------
// Cylinders and ellipsoids

#[test]
fn moving_cylinders_and_ellipsoids_touch_through_stated_primitives() {
    let imp = import(
        "<mujoco><worldbody><geom type=\"plane\" size=\"1 1 1\"/>\n\
         <body pos=\"0 0 0.1\"><freejoint/>\
         <geom type=\"cylinder\" size=\"0.2 0.05\" density=\"1000\"/></body>\n\
         <body pos=\"2 0 1\"><freejoint/>\
         <geom type=\"cylinder\" size=\"0.1 0.3\"/></body>\n\
         <body pos=\"4 0 1\"><freejoint/>\
         <geom type=\"ellipsoid\" size=\"0.1 0.3 0.1\"/></body></worldbody></mujoco>",
    );
    let kinds: Vec<ShapeKind> = imp
        .model
        .bodies
        .iter()
        .map(|b| {
            assert_eq!(b.shapes.len(), 1);
            b.shapes[0].kind.clone()
        })
        .collect();
    // A flat cylinder: a box of its radius and half-height, with the cylinder's mass.
    assert_eq!(
        kinds[0],
        ShapeKind::Box {
            half_extents: [0.2, 0.2, 0.05]
        }
    );
    let want = 1000.0 * std::f32::consts::PI * 0.04 * 0.1;
    let flat = &imp.model.bodies[0];
    assert!((flat.mass - want).abs() < 1e-4 * want, "{}", flat.mass);
    // A tall one: a capsule of its radius whose ends reach its faces.
    assert_eq!(
        kinds[1],
        ShapeKind::Capsule {
            radius: 0.1,
            half_length: 0.2
        }
    );
    // An ellipsoid: a capsule along its longest axis (y here), ends at +-0.3.
    match kinds[2] {
        ShapeKind::Capsule {
            radius,
            half_length,
        } => assert!((radius - 0.1).abs() < 1e-6 && (half_length - 0.2).abs() < 1e-6),
        ref other => panic!("{other:?}"),
    }
    let notes: Vec<_> = imp
        .warnings
        .iter()
        .filter(|w| w.message.contains("approximate shape"))
        .collect();
    assert_eq!(notes.len(), 1, "{:?}", imp.warnings);
    assert!(
        notes[0]
            .message
            .contains("2 cylinder(s) and 1 ellipsoid(s)"),
        "{}",
        notes[0]
    );
    // Dropped flat, the cylinder rests on its face (the box's corners) at its half-height.
    let mut sim = Simulator::new(common::gpu(), &imp.model, 1).unwrap();
    sim.step(500).unwrap();
    let z = sim.body_states().unwrap()[0].position[2];
    assert!((z - 0.05).abs() < 0.002, "{z}");
}

// ---------------------------------------------------------------------------------------------
// A model without moving bodies

/// dm_control's lqr.xml as shipped: the task adds its bodies at run time, the file has only
/// world geoms. It imports as a static model, which steps (nothing moves) instead of being
/// refused.
#[test]
fn a_file_without_moving_bodies_loads_as_a_static_model_that_steps() {
    let imp = import(
        r#"<mujoco model="static">
  <option timestep=".03"/>
  <worldbody>
    <geom name="floor" size="4 1 .2" type="plane"/>
    <geom name="origin" pos="2 0 .05" size="2 .003 .05" type="box"/>
  </worldbody>
</mujoco>"#,
    );
    assert!(imp.model.bodies.is_empty());
    assert!(imp.model.joints.is_empty());
    let mut sim = Simulator::new(common::gpu(), &imp.model, 3).unwrap();
    sim.set_body_states(&[]).unwrap();
    sim.step(5).unwrap();
    assert!(sim.body_states().unwrap().is_empty());
    // One state too many is still an error.
    assert!(
        sim.set_body_states(&[backdrive::BodyState::default()])
            .is_err()
    );
}
