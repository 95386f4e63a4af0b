//! MuJoCo's `<general>` and `<position>` actuators: imported as affine force laws, refused
//! with their line where the law is not expressible, and the law's kernel and adjoint on the
//! GPU against the CPU twin.

mod common;

use std::path::Path;

use common::one_step::{gpu_step_against_twin, one_step_adjoint_errors};

use backdrive::engine::layout::Compiled;
use backdrive::io::mjcf::{self, MjcfOptions};
use backdrive::model::ActuatorKind;
use backdrive::{Model, Simulator};

/// A two-link arm hinged to the world and a slider with a reference; a `<general>` on the
/// first hinge (command and force clamped) and a `<position>` on a fixed tendon over the
/// second hinge and the slider.
const ARM: &str = r#"<mujoco>
<option timestep="0.01"/>
<worldbody>
  <body name="a" pos="0 0 2">
    <joint name="h1" type="hinge" axis="0 1 0"/>
    <geom type="capsule" fromto="0 0 0 0.4 0 0" size="0.05"/>
    <body name="b" pos="0.4 0 0">
      <joint name="h2" type="hinge" axis="0 1 0"/>
      <geom type="capsule" fromto="0 0 0 0.4 0 0" size="0.05"/>
    </body>
  </body>
  <body name="d" pos="0 1 1">
    <joint name="s" type="slide" axis="1 0 0" ref="0.3"/>
    <geom type="sphere" size="0.1"/>
  </body>
</worldbody>
<tendon>
  <fixed name="t"><joint joint="h2" coef="0.5"/><joint joint="s" coef="2"/></fixed>
</tendon>
<actuator>
  <general name="g" joint="h1" gear="1.5" gainprm="2" biastype="affine" biasprm="0.1 -3"
           ctrlrange="-0.3 0.25" forcerange="-0.4 0.5"/>
  <position name="p" tendon="t" kp="5" ctrlrange="-1 1"/>
</actuator>
</mujoco>"#;

fn arm() -> Model {
    let imp = mjcf::from_str(ARM, Some(Path::new("arm.xml")), &MjcfOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        imp.warnings
            .iter()
            .all(|w| w.element != "general" && w.element != "position"),
        "{:?}",
        imp.warnings
    );
    imp.model
}

#[test]
fn general_and_position_actuators_import_as_affine_laws() {
    let model = arm();
    assert_eq!(model.actuators.len(), 2);
    let terms = |k: usize| {
        let law = model.actuators[k].affine.as_ref().unwrap();
        law.terms
            .iter()
            .map(|t| (t.joint.as_str(), t.coefficient))
            .collect::<Vec<_>>()
    };
    let g = &model.actuators[0];
    assert_eq!(g.kind, ActuatorKind::Affine);
    let law = g.affine.as_ref().unwrap();
    assert_eq!((law.gain, law.bias), (2.0, [0.1, -3.0]));
    assert_eq!(law.ctrl_range, [-0.3, 0.25]);
    assert_eq!(law.force_range, [-0.4, 0.5]);
    assert_eq!(terms(0), [("h1", 1.5)]);
    let p = model.actuators[1].affine.as_ref().unwrap();
    // position: force = kp * (ctrl - length), forcerange unlimited.
    assert_eq!((p.gain, p.bias), (5.0, [0.0, -5.0]));
    assert_eq!(p.ctrl_range, [-1.0, 1.0]);
    assert!(p.force_range[0] <= -1e20 && p.force_range[1] >= 1e20);
    assert_eq!(terms(1), [("h2", 0.5), ("s", 2.0)]);
}

fn import_error(actuator: &str) -> String {
    let text = format!(
        "<mujoco>\n<worldbody>\n<body>\n<joint name=\"h\"/>\n<geom size=\"0.1\"/>\n</body>\n\
         </worldbody>\n<actuator>\n{actuator}\n</actuator>\n</mujoco>"
    );
    match mjcf::from_str(&text, Some(Path::new("robot.xml")), &MjcfOptions::default()) {
        Ok(_) => panic!("expected an error for {actuator}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_position_on_a_tendon_without_joints_is_an_error_not_a_panic() {
    let text = "<mujoco>\n<worldbody>\n<body>\n<joint name=\"h\"/>\n<geom size=\"0.1\"/>\n\
                </body>\n</worldbody>\n<tendon><fixed name=\"t\"/></tendon>\n<actuator>\n\
                <position tendon=\"t\"/>\n</actuator>\n</mujoco>";
    let msg = match mjcf::from_str(text, Some(Path::new("robot.xml")), &MjcfOptions::default()) {
        Ok(_) => panic!("a position on a tendon without joints was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        msg.contains("robot.xml:10:") && msg.contains("the tendon has no joint"),
        "{msg}"
    );
}

#[test]
fn laws_backdrive_cannot_express_are_refused_with_element_and_line() {
    for (actuator, reason) in [
        (
            r#"<general joint="h" dyntype="filter" dynprm="0.1"/>"#,
            "activation dynamics",
        ),
        (r#"<general joint="h" gaintype="muscle"/>"#, "fixed gains"),
        (
            r#"<general joint="h" biastype="affine" biasprm="0 -1 -2"/>"#,
            "velocity-dependent bias",
        ),
        (r#"<velocity joint="h" kv="3"/>"#, "velocity-dependent bias"),
        (
            r#"<position joint="h" kp="3" kv="1"/>"#,
            "velocity-dependent bias",
        ),
        (
            r#"<position joint="h" kp="3" timeconst="0.1"/>"#,
            "activation dynamics",
        ),
    ] {
        let msg = import_error(actuator);
        assert!(
            msg.contains("robot.xml:9:") && msg.contains(reason),
            "{actuator}: {msg}"
        );
    }
}

/// The GPU step against the f32 twin, one step at a time from the GPU's state, with commands
/// inside and outside the control ranges.
#[test]
fn the_gpu_affine_actuators_match_the_twin() {
    let model = arm();
    let n = 3;
    let mut sim = Simulator::new(common::gpu(), &model, n).unwrap();
    let commands = [0.1f32, 0.8, -0.5, -0.2, 0.2, 1.5];
    sim.set_commands(&commands).unwrap();
    let d = gpu_step_against_twin(&mut sim, &model, &commands, 60);
    eprintln!("over 60 steps, {d}");
    assert!(d.worst < 1e-3, "{d}");
}

/// The GPU's one-step adjoint against the f64 twin's, after 20 steps.
#[test]
fn the_gpu_affine_adjoint_matches_the_f64_twin() {
    let model = arm();
    let compiled = Compiled::new(&model);
    let n = 2;
    let mut sim = Simulator::new(common::gpu(), &model, n).unwrap();
    let commands = [0.1f32, 0.8, -0.5, -0.2];
    sim.set_commands(&commands).unwrap();
    sim.step(20).unwrap();
    let states = sim.read_state_raw().unwrap();
    let len = compiled.header.state_len as usize;
    let seed: Vec<f32> = (0..n * len).map(|k| ((k as f32) * 0.37).sin()).collect();
    let errors = one_step_adjoint_errors(&model, &states, &commands, &seed);
    for (i, e) in errors.iter().enumerate() {
        let (es, ep, ec) = (e.state, e.params, e.commands);
        eprintln!("instance {i}: state {es:.2e} params {ep:.2e} commands {ec:.2e}");
        assert!(
            es < 1e-3 && ep < 1e-3 && ec < 1e-3,
            "instance {i}: state {es} params {ep} commands {ec}"
        );
    }
}

/// The model's validation names the field of an affine law it cannot pack.
#[test]
fn validation_refuses_malformed_affine_laws() {
    let mut model = arm();
    let good = model.clone();
    model.actuators[0].affine.as_mut().unwrap().terms.clear();
    let msg = model.validate().unwrap_err().to_string();
    assert!(
        msg.contains("actuator") && msg.contains("no joint"),
        "{msg}"
    );

    let mut model = good.clone();
    model.actuators[0].affine.as_mut().unwrap().ctrl_range = [1.0, -1.0];
    let msg = model.validate().unwrap_err().to_string();
    assert!(msg.contains("ctrl_range"), "{msg}");

    let mut model = good.clone();
    model.actuators[0].affine.as_mut().unwrap().terms[0].joint = "nowhere".into();
    let msg = model.validate().unwrap_err().to_string();
    assert!(msg.contains("unknown joint 'nowhere'"), "{msg}");

    let mut model = good.clone();
    model.actuators[0].kind = ActuatorKind::Force;
    let msg = model.validate().unwrap_err().to_string();
    assert!(msg.contains("only an affine actuator"), "{msg}");

    let mut model = good;
    model.actuators[0].affine = None;
    let msg = model.validate().unwrap_err().to_string();
    assert!(msg.contains("needs its force law"), "{msg}");
}
