//! MuJoCo's `<general>` and `<position>` actuators: imported as affine force laws, refused
//! with their line where the law is not expressible, and the law's kernel and adjoint on the
//! GPU against the CPU twin.

mod common;

use std::path::Path;

use common::one_step::{gpu_step_against_twin, one_step_adjoint_errors};

use backdrive::engine::layout::Compiled;
use backdrive::io::mjcf::{self, MjcfOptions};
use backdrive::model::{ActivationDynamics, ActuatorKind};
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
            r#"<general joint="h" dyntype="muscle" dynprm="0.1"/>"#,
            "activation dynamics",
        ),
        (
            r#"<general joint="h" dyntype="filter" dynprm="0.1" actearly="true"/>"#,
            "actearly",
        ),
        (
            r#"<general joint="h" dyntype="integrator" actdim="2"/>"#,
            "actdim",
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

/// The arm's joints with activation dynamics: a `<general dyntype="filter">` limited by
/// `actrange` on the first hinge (dm_control quadruped's law: gain 1000 on the activation,
/// bias -1000 times the length), a `<position timeconst>` (MuJoCo's filterexact) on the
/// tendon, and a `<general dyntype="integrator">` on the slider.
const ARM_WITH_ACTIVATIONS: &str = r#"<mujoco>
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
  <general name="f" joint="h1" ctrllimited="true" ctrlrange="-1 1" gainprm="10"
           biastype="affine" biasprm="0 -10" dyntype="filter" dynprm=".1" actrange="-0.5 0.4"/>
  <position name="p" tendon="t" kp="5" ctrlrange="-1 1" timeconst="0.05"/>
  <general name="i" joint="s" gainprm="2" dyntype="integrator"/>
</actuator>
</mujoco>"#;

fn arm_with_activations() -> Model {
    let imp = mjcf::from_str(
        ARM_WITH_ACTIVATIONS,
        Some(Path::new("arm.xml")),
        &MjcfOptions::default(),
    )
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
fn activation_dynamics_import_with_their_time_constant_and_range() {
    let model = arm_with_activations();
    let activation = |k: usize| {
        model.actuators[k]
            .affine
            .as_ref()
            .unwrap()
            .activation
            .clone()
            .unwrap()
    };
    let f = activation(0);
    assert_eq!(f.dynamics, ActivationDynamics::Filter);
    assert_eq!((f.time_constant, f.range), (0.1, Some([-0.5, 0.4])));
    let law = model.actuators[0].affine.as_ref().unwrap();
    assert_eq!((law.gain, law.bias), (10.0, [0.0, -10.0]));
    let p = activation(1);
    assert_eq!(p.dynamics, ActivationDynamics::FilterExact);
    assert_eq!((p.time_constant, p.range), (0.05, None));
    let i = activation(2);
    assert_eq!(
        (i.dynamics, i.range),
        (ActivationDynamics::Integrator, None)
    );
    // One float of state per activation, after the warm-start impulses.
    let h = Compiled::new(&model).header;
    assert_eq!(h.state_len, h.state_lambda + h.n_rows + 3);
    // The model file keeps them.
    let back = Model::from_toml_str(&model.to_toml(), None).unwrap();
    assert_eq!(back, model);
}

#[test]
fn a_filter_without_a_positive_time_constant_is_an_error_at_its_line() {
    for actuator in [
        r#"<general joint="h" dyntype="filter" dynprm="0"/>"#,
        r#"<general joint="h" dyntype="filterexact" dynprm="-0.1 2"/>"#,
    ] {
        let msg = import_error(actuator);
        assert!(
            msg.contains("robot.xml:9:") && msg.contains("time constant must be positive"),
            "{actuator}: {msg}"
        );
    }
}

/// The model file's activation is validated with the file's line of the offending key.
#[test]
fn activation_fields_are_validated_with_file_and_line() {
    let text = arm_with_activations().to_toml();
    for (from, to, field) in [
        (
            "time_constant = 0.1",
            "time_constant = 0.0",
            "time_constant",
        ),
        (
            "time_constant = 0.1",
            "time_constant = -2.0",
            "time_constant",
        ),
        (
            "\nrange = [\n",
            "\nrange = [\n    1.0,\n",
            "activation.range",
        ),
    ] {
        assert!(text.contains(from), "{text}");
        let bad = text.replacen(from, to, 1);
        let line = bad[..bad.find(to.trim_start()).unwrap()]
            .matches('\n')
            .count()
            + 1;
        let msg = Model::from_toml_str(&bad, Some(Path::new("m.toml")))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(&format!("m.toml:{line}:")) && msg.contains(field),
            "{to}: {msg}"
        );
    }
}

/// The GPU step against the f32 twin with activations moving and one held at its bound.
#[test]
fn the_gpu_activations_match_the_twin() {
    let model = arm_with_activations();
    let n = 3;
    let mut sim = Simulator::new(common::gpu(), &model, n).unwrap();
    let commands = [0.9f32, 0.8, -0.5, -0.2, -1.5, 0.3, -1.0, 0.2, 0.7];
    sim.set_commands(&commands).unwrap();
    let d = gpu_step_against_twin(&mut sim, &model, &commands, 60);
    eprintln!("over 60 steps, {d}");
    assert!(d.worst < 1e-3, "{d}");
    let compiled = Compiled::new(&model);
    let h = compiled.header;
    let states = sim.read_state_raw().unwrap();
    let first = (h.state_lambda + h.n_rows) as usize;
    let len = h.state_len as usize;
    // Instance 0's filter is at its bound 0.4 (command 0.9); instance 2's integrator has
    // moved by about 0.6 s * 0.7.
    assert!((states[first] - 0.4).abs() < 1e-6, "{}", states[first]);
    assert!((states[2 * len + first + 2] - 0.42).abs() < 0.01);
}

/// The GPU's one-step adjoint against the f64 twin's, activations included, after 20 steps.
#[test]
fn the_gpu_activation_adjoint_matches_the_f64_twin() {
    let model = arm_with_activations();
    let compiled = Compiled::new(&model);
    let n = 2;
    let mut sim = Simulator::new(common::gpu(), &model, n).unwrap();
    let commands = [0.3f32, 0.8, -0.5, -0.2, -0.3, 0.4];
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
