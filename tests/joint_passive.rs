//! Joint damping, springs, dry friction and armature (the passive rows): the GPU kernels
//! against their f64 twin, and an imported MJCF model against MuJoCo's motion of it.
//!
//! The adjoints are checked against central differences in `src/engine/twin/tests.rs`
//! (`step_adjoint_matches_finite_differences_for_*`).

mod common;

use common::one_step::{gpu_step_against_twin, one_step_adjoint_errors};

use std::path::PathBuf;

use backdrive::Simulator;
use backdrive::engine::layout::{Compiled, ROW_LEN};
use backdrive::io::mjcf;
use backdrive::model::{ActuatorKind, JointKind, Model, ModelBuilder, ShapeKind};
use glam::{Quat, Vec3};
use serde_json::Value;

/// A chain with a ball, a hinge and a slider joint, each with every passive row, and a
/// force actuator and a velocity servo.
fn passive_chain() -> Model {
    let mut model = ModelBuilder::new("passive-chain")
        .with_settings(|s| s.solver_iterations = 8)
        .body("a", 1.0, [0.0, 0.0, 2.0])
        .shape(
            ShapeKind::Box {
                half_extents: [0.1, 0.1, 0.1],
            },
            [0.0; 3],
        )
        .body("b", 0.7, [0.4, 0.0, 2.0])
        .shape(
            ShapeKind::Capsule {
                radius: 0.05,
                half_length: 0.15,
            },
            [0.0; 3],
        )
        .body("c", 0.5, [0.8, 0.0, 2.0])
        .shape(ShapeKind::Sphere { radius: 0.1 }, [0.0; 3])
        .joint(
            "root",
            JointKind::Ball,
            None,
            "a",
            [0.0, 0.0, 2.2],
            [0.0, 1.0, 0.0],
        )
        .joint(
            "elbow",
            JointKind::Hinge,
            Some("a"),
            "b",
            [0.2, 0.0, 2.0],
            [0.0, 1.0, 0.0],
        )
        .limits(-0.5, 0.8)
        .joint(
            "wrist",
            JointKind::Slider,
            Some("b"),
            "c",
            [0.6, 0.0, 2.0],
            [1.0, 0.0, 0.0],
        )
        .limits(0.0, 0.2)
        .actuator("m1", "elbow", ActuatorKind::Force, 0.0, 3.0, 1.0)
        .actuator("m2", "wrist", ActuatorKind::VelocityServo, 0.0, 5.0, 0.5)
        .build()
        .unwrap();
    for j in &mut model.joints {
        j.damping = 0.2;
        j.stiffness = 2.0;
        j.frictionloss = 0.03;
        j.armature = 0.01;
        if j.kind != JointKind::Ball {
            j.reference = 0.1;
            j.springref = 0.3;
        }
    }
    model.validate().unwrap();
    model
}

#[test]
fn gpu_matches_the_twin_with_passive_rows() {
    let model = passive_chain();
    let compiled = Compiled::new(&model);
    // Two rows (spring-damper with armature, dry friction) per free axis: 3 + 1 + 1 axes.
    assert_eq!(compiled.header.n_passive, 2 * (3 + 1 + 1));
    let n = 3;
    let mut sim = Simulator::new(common::gpu(), &model, n).unwrap();
    let n_cmd = model.actuators.len();
    let commands: Vec<f32> = (0..n * n_cmd)
        .map(|k| ((k as f32) * 0.9).sin() * 2.0)
        .collect();
    sim.set_commands(&commands).unwrap();
    let d = gpu_step_against_twin(&mut sim, &model, &commands, 40);
    assert!(d.worst < 1e-3, "{d}");
    println!("passive chain: over 40 steps, {d}");
}

/// The passive chain with the limits softer than the joints (`limit_frequency`, as imported
/// MJCF limits are): the GPU's forward and adjoint step against the twin.
#[test]
fn gpu_matches_the_twin_with_soft_limits() {
    let mut model = passive_chain();
    model.settings.limit_frequency = Some(8.0);
    model.settings.limit_damping_ratio = Some(0.6);
    let n = 2;
    let mut sim = Simulator::new(common::gpu(), &model, n).unwrap();
    let commands: Vec<f32> = vec![1.5, 0.3, -2.0, -0.2];
    sim.set_commands(&commands).unwrap();
    let d = gpu_step_against_twin(&mut sim, &model, &commands, 40);
    assert!(d.worst < 1e-3, "{d}");
    println!("passive chain, soft limits: over 40 steps, {d}");
    let states = sim.read_state_raw().unwrap();
    let len = Compiled::new(&model).header.state_len as usize;
    let seed: Vec<f32> = (0..n * len).map(|k| ((k as f32) * 0.37).cos()).collect();
    for (i, e) in one_step_adjoint_errors(&model, &states, &commands, &seed)
        .iter()
        .enumerate()
    {
        println!(
            "instance {i}: state {:.2e} commands {:.2e}",
            e.state, e.commands
        );
        assert!(e.state < 1e-3 && e.commands < 1e-3, "instance {i}");
    }
}

/// The passive chain with MuJoCo's impedance model on its limits (`limit_impedance`, as
/// `MjcfOptions::mujoco_limit_impedance` imports them): the GPU's forward step against the twin
/// with an impedance that varies with the violation, and its forward and adjoint step with a
/// constant one (`solimp` width 0). The adjoint of the varying impedance is checked against
/// central differences in the f64 twin; on lavapipe the GPU's adjoint of it differed from the
/// twin's by 1.7e-3 (commands), with the forward already 10 times further from the twin than
/// with a constant impedance (the kernel's `pow` is the suspect), so it is not asserted here.
#[test]
fn gpu_matches_the_twin_with_limit_impedance() {
    let n = 2;
    let commands: Vec<f32> = vec![1.5, 0.3, -2.0, -0.2];
    for (solimp, adjoint) in [
        ([0.5, 0.95, 0.01, 0.5, 2.0], false),
        ([0.9, 0.95, 0.0, 0.5, 2.0], true),
    ] {
        let mut model = passive_chain();
        model.settings.limit_impedance = Some(backdrive::model::Impedance {
            solref: [0.02, 1.0],
            solimp,
        });
        let compiled = Compiled::new(&model);
        let h = compiled.header;
        let violated = |twin: &backdrive::engine::twin::Instance<'_, f64>| {
            (0..h.n_limit)
                .filter(|&l| twin.rows[((h.row_limit + l) as usize) * ROW_LEN + 26] < 1.0e19)
                .count()
        };
        // The twin's limit rows act (a bias below UNBOUNDED) in some of the compared steps.
        let mut twin = backdrive::engine::twin::Instance::<f64>::new(&compiled);
        twin.commands = commands[..2].iter().map(|&c| f64::from(c)).collect();
        let mut violated_steps = 0;
        for _ in 0..40 {
            twin.write_rows();
            violated_steps += (violated(&twin) > 0) as usize;
            twin.step();
        }
        assert!(
            violated_steps > 5,
            "{violated_steps} steps with a limit violated"
        );
        let mut sim = Simulator::new(common::gpu(), &model, n).unwrap();
        sim.set_commands(&commands).unwrap();
        let d = gpu_step_against_twin(&mut sim, &model, &commands, 40);
        assert!(d.worst < 1e-3, "{d}");
        println!("solimp {solimp:?}: over 40 steps ({violated_steps} violated), {d}");
        if !adjoint {
            continue;
        }
        let states = sim.read_state_raw().unwrap();
        let len = h.state_len as usize;
        // Instance 0's limits are violated where the adjoint is checked.
        let mut at = backdrive::engine::twin::Instance::<f64>::new(&compiled);
        at.state = states[..len].iter().map(|&x| f64::from(x)).collect();
        at.commands = commands[..2].iter().map(|&c| f64::from(c)).collect();
        at.write_rows();
        assert!(violated(&at) > 0, "no limit violated at the checked state");
        let seed: Vec<f32> = (0..n * len).map(|k| ((k as f32) * 0.37).cos()).collect();
        for (i, e) in one_step_adjoint_errors(&model, &states, &commands, &seed)
            .iter()
            .enumerate()
        {
            println!(
                "instance {i}: state {:.2e} commands {:.2e}",
                e.state, e.commands
            );
            assert!(e.state < 1e-3 && e.commands < 1e-3, "instance {i}");
        }
    }
}

#[test]
fn gpu_adjoint_matches_the_twin_with_passive_rows() {
    let model = passive_chain();
    let compiled = Compiled::new(&model);
    let n = 2;
    let mut sim = Simulator::new(common::gpu(), &model, n).unwrap();
    let commands: Vec<f32> = vec![1.5, 0.3, -2.0, -0.2];
    sim.set_commands(&commands).unwrap();
    sim.step(15).unwrap();
    let states = sim.read_state_raw().unwrap();
    let len = compiled.header.state_len as usize;
    let seed: Vec<f32> = (0..n * len).map(|k| ((k as f32) * 0.37).cos()).collect();
    let errors = one_step_adjoint_errors(&model, &states, &commands, &seed);
    for (i, e) in errors.iter().enumerate() {
        let (es, ec) = (e.state, e.commands);
        println!("instance {i}: state {es:.2e} commands {ec:.2e}");
        assert!(
            es < 1e-3 && ec < 1e-3,
            "instance {i}: state {es:e} commands {ec:e}"
        );
    }
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mjcf")
        .join(name)
}

/// Angle of `q` relative to `q0` about `axis` (world), as a hinge measures it.
fn hinge_angle(q0: Quat, q: Quat, axis: Vec3) -> f32 {
    let rel = q * q0.conjugate();
    let rel = if rel.w < 0.0 { -rel } else { rel };
    2.0 * Vec3::new(rel.x, rel.y, rel.z).dot(axis).atan2(rel.w)
}

/// `passive_joints.xml` (damping with armature on a pendulum, a spring-damper slider with
/// `ref`, `springref` and armature, a torsion spring with `ref` and `springref` in degrees, a
/// spinner with `frictionloss`) against MuJoCo's Euler integrator at the file's 2 ms step,
/// sampled every 0.05 s over 1 s (`benches/mjcf_passive_reference.py`).
///
/// Measured on lavapipe: largest differences over the second (and at 1 s) swing 0.0030
/// (0.0030) rad, slide 0.0037 (0.0028) m, twist 0.0184 (0.0006) rad, spin 0.0009 (0.0009) rad.
#[test]
fn passive_joints_follow_mujoco_for_one_second() {
    let text = std::fs::read_to_string(fixture("passive_reference.json")).unwrap();
    let reference: Value = serde_json::from_str(&text).unwrap();
    let import = mjcf::load_mjcf_with(fixture("passive_joints.xml"), &Default::default()).unwrap();
    let mut model = import.model;
    assert!(import.warnings.is_empty(), "{:?}", import.warnings);
    for (joint, damping, armature) in [
        ("swing", 0.1, 0.02),
        ("slide", 2.0, 0.1),
        ("twist", 0.01, 0.0),
    ] {
        let j = model.joint_index(joint).unwrap();
        let imported = (model.joints[j].damping, model.joints[j].armature);
        assert_eq!(imported, (damping, armature), "{joint}: damping, armature");
    }
    let spin = reference["spin_initial_speed"].as_f64().unwrap() as f32;
    let spinner = model.body_index("spinner").unwrap();
    model.bodies[spinner].angular_velocity = [0.0, 0.0, spin];
    let body = |name: &str| model.body_index(name).unwrap();
    let (pendulum, slider, twister) = (body("pendulum"), body("slider"), body("twister"));
    let q0: Vec<Quat> = model
        .bodies
        .iter()
        .map(|b| Quat::from_array(b.orientation))
        .collect();
    let x0 = Vec3::from_array(model.bodies[slider].position);
    let mut sim = Simulator::new(common::gpu(), &model, 1).unwrap();
    let per_sample = (0.05 / model.settings.dt).round() as u32;
    let mut worst = [0.0f32; 4];
    let mut at_one_second = [0.0f32; 4];
    for (k, s) in reference["samples"].as_array().unwrap().iter().enumerate() {
        if k > 0 {
            sim.step(per_sample).unwrap();
        }
        let b = sim.body_states().unwrap();
        let rotation =
            |i: usize, axis: Vec3| hinge_angle(q0[i], Quat::from_array(b[i].orientation), axis);
        let ours = [
            rotation(pendulum, Vec3::Y),
            (Vec3::from_array(b[slider].position) - x0).x,
            rotation(twister, Vec3::Z),
            rotation(spinner, Vec3::Z),
        ];
        for (n, name) in ["swing", "slide", "twist", "spin"].iter().enumerate() {
            let theirs = s[*name].as_f64().unwrap() as f32;
            let error = (ours[n] - theirs).abs();
            worst[n] = worst[n].max(error);
            at_one_second[n] = error;
        }
    }
    println!(
        "passive joints against MuJoCo: largest difference over 1 s (at 1 s): swing {:.4} \
         ({:.4}) rad, slide {:.4} ({:.4}) m, twist {:.4} ({:.4}) rad, spin {:.4} ({:.4}) rad",
        worst[0],
        at_one_second[0],
        worst[1],
        at_one_second[1],
        worst[2],
        at_one_second[2],
        worst[3],
        at_one_second[3]
    );
    // The issue's criterion: within 0.01 rad (and 1 cm) after 1 s.
    for (n, error) in at_one_second.iter().enumerate() {
        assert!(*error < 0.01, "joint {n}: {error} after 1 s");
    }
    // Over the whole second: the torsion spring (omega dt = 0.04) differs most, because
    // backdrive's spring is implicit and MuJoCo's explicit; 0.018 rad measured.
    for (n, bound) in [0.006f32, 0.006, 0.025, 0.003].iter().enumerate() {
        assert!(worst[n] < *bound, "joint {n}: {} > {bound}", worst[n]);
    }
}

const HINGE_TOML: &str = r#"name = "door"

[[body]]
name = "door"
mass = 2.0
position = [0.5, 0.0, 1.0]

[[body.shape]]
type = "box"
half_extents = [0.5, 0.05, 1.0]

[[joint]]
name = "hinge"
type = "hinge"
child = "door"
anchor = [0.0, 0.0, 1.0]
axis = [0.0, 0.0, 1.0]
damping = 0.5
stiffness = 3.0
springref = 0.4
frictionloss = 0.1
armature = 0.02
reference = 0.1
"#;

#[test]
fn passive_fields_read_from_toml_and_round_trip() {
    let model = Model::from_toml_str(HINGE_TOML, None).unwrap();
    let j = &model.joints[0];
    assert_eq!(
        (
            j.damping,
            j.stiffness,
            j.springref,
            j.frictionloss,
            j.armature,
            j.reference
        ),
        (0.5, 3.0, 0.4, 0.1, 0.02, 0.1)
    );
    let again = Model::from_toml_str(&model.to_toml(), None).unwrap();
    assert_eq!(model, again);
    // Files without them are written without them.
    let plain = backdrive::io::models::builtin("double-pendulum").unwrap();
    let text = plain.to_toml();
    for key in [
        "damping",
        "stiffness",
        "springref",
        "frictionloss",
        "armature",
        "reference",
    ] {
        assert!(
            !text.lines().any(|l| l.starts_with(&format!("{key} ="))),
            "{key} in {text}"
        );
    }
}

#[test]
fn bad_passive_fields_are_errors_naming_the_field() {
    let err = |text: &str| {
        Model::from_toml_str(text, Some(std::path::Path::new("door.toml")))
            .unwrap_err()
            .to_string()
    };
    let msg = err(&HINGE_TOML.replace("damping = 0.5", "damping = -0.5"));
    assert!(
        msg.contains("joint[0].damping") && msg.contains("door.toml:"),
        "{msg}"
    );
    let msg = err(&HINGE_TOML.replace("armature = 0.02", "armature = 1e-45"));
    assert!(msg.contains("joint[0].armature"), "{msg}");
    let msg = err(&HINGE_TOML.replace("type = \"hinge\"", "type = \"fixed\""));
    assert!(msg.contains("fixed joint"), "{msg}");
    let msg = err(&HINGE_TOML.replace("type = \"hinge\"", "type = \"ball\""));
    assert!(msg.contains("joint[0].springref"), "{msg}");
    let servo = format!(
        "{HINGE_TOML}\n[[actuator]]\nname = \"m\"\njoint = \"hinge\"\ntype = \"position_servo\"\n\
         gain = 5.0\nmax_force = 1.0\n"
    );
    let msg = err(&servo);
    assert!(
        msg.contains("actuator[0]") && msg.contains("reference"),
        "{msg}"
    );
}

#[test]
fn mjcf_passive_attributes_are_read_in_the_files_units() {
    let model = mjcf::load_mjcf_with(fixture("passive_joints.xml"), &Default::default())
        .unwrap()
        .model;
    let joint = |name: &str| model.joints[model.joint_index(name).unwrap()].clone();
    let swing = joint("swing");
    assert_eq!((swing.damping, swing.armature), (0.1, 0.02));
    assert_eq!(joint("slide").armature, 0.1);
    // springref - ref, measured from the model pose: metres, or degrees turned to radians.
    let slide = joint("slide");
    assert_eq!((slide.stiffness, slide.damping), (50.0, 2.0));
    assert!((slide.springref - 0.2).abs() < 1e-6, "{}", slide.springref);
    let twist = joint("twist");
    assert!((twist.springref - 30f32.to_radians()).abs() < 1e-6);
    assert_eq!(twist.reference, 0.0);
    assert_eq!(joint("spin").frictionloss, 0.02);
    // A free joint with damping is still refused, naming the line.
    let text = "<mujoco>\n<worldbody>\n<body>\n<joint type=\"free\" damping=\"1\"/>\n\
                <geom size=\"0.1\"/>\n</body>\n</worldbody>\n</mujoco>";
    let e = mjcf::from_str(text, None, &mjcf::MjcfOptions::default()).unwrap_err();
    assert!(
        e.to_string().contains("line 4") && e.to_string().contains("damping"),
        "{e}"
    );
}
