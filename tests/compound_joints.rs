//! Bodies with several joints: MJCF slides followed by a hinge import as one compound joint
//! (`backdrive::model::SharedFrame`) between the parent and the body, without intermediate
//! bodies. The motion is a free planar body's, each member's limit acts on its own coordinate,
//! and the GPU follows its twin, forward and adjoint. The adjoint against central differences
//! is `step_adjoint_matches_finite_differences_for_compound_joints` in
//! `src/engine/twin/tests.rs`.

mod common;

use common::one_step::{gpu_step_against_twin, one_step_adjoint_errors};

use backdrive::Simulator;
use backdrive::engine::layout::Compiled;
use backdrive::io::mjcf::{self, MjcfImport, MjcfOptions};
use backdrive::model::JointKind;
use glam::{Quat, Vec3};

const G: f32 = 9.81;
const DT: f32 = 0.01;

/// A planar body (dm_control's root: slides z and x, then a hinge y away from the centre of
/// mass), `extra` inside its body element and `after` after the worldbody.
fn planar(rootz: &str, extra: &str, after: &str) -> MjcfImport {
    let text = format!(
        r#"<mujoco model="planar">
  <option timestep="{DT}" gravity="0 0 -{G}"/>
  <worldbody>
    <body name="torso" pos="0 0 1.5">
      <joint name="rootz" type="slide" axis="0 0 1" {rootz}/>
      <joint name="rootx" type="slide" axis="1 0 0"/>
      <joint name="rooty" type="hinge" axis="0 1 0" pos="0.1 0 0.2"/>
      <geom type="capsule" fromto="-0.3 0 0 0.3 0 0.1" size="0.05" mass="2"/>
      {extra}
    </body>
  </worldbody>
  {after}
</mujoco>"#
    );
    mjcf::from_str(&text, None, &MjcfOptions::default()).unwrap()
}

/// Rotation angle about world y from `q0` to `q`.
fn pitch(q0: [f32; 4], q: [f32; 4]) -> f32 {
    let r = Quat::from_array(q) * Quat::from_array(q0).inverse();
    let r = if r.w < 0.0 { -r } else { r };
    2.0 * r.y.atan2(r.w)
}

#[test]
fn slides_then_a_hinge_are_one_joint_without_intermediate_bodies() {
    let imp = planar("", "", "");
    assert_eq!(imp.model.bodies.len(), 1, "{:?}", imp.model.bodies);
    assert!(
        imp.warnings
            .iter()
            .all(|w| !w.message.contains("intermediate")),
        "{:?}",
        imp.warnings
    );
    let kinds: Vec<(&str, JointKind, u32)> = imp
        .model
        .joints
        .iter()
        .map(|j| {
            let s = j.shared_frame.as_ref().expect("a compound member");
            assert_eq!(s.compound, "torso");
            (j.name.as_str(), j.kind, s.frame_axis)
        })
        .collect();
    // Frame x along the hinge (y); z then x make it right-handed.
    assert_eq!(
        kinds,
        [
            ("rootz", JointKind::Slider, 1),
            ("rootx", JointKind::Slider, 2),
            ("rooty", JointKind::Hinge, 3),
        ]
    );
    // Every member sits at the hinge's anchor: the slides move it.
    for j in &imp.model.joints {
        assert!((Vec3::from_array(j.anchor) - Vec3::new(0.1, 0.0, 1.7)).length() < 1e-6);
    }
    // A hinge before a slide is not MuJoCo's slides-then-hinge: it stays a chain.
    let text = r#"<mujoco><worldbody><body name="b" pos="0 0 1">
        <joint name="h" type="hinge" axis="0 1 0"/><joint name="s" type="slide" axis="1 0 0"/>
        <geom type="sphere" size="0.1"/></body></worldbody></mujoco>"#;
    let chained = mjcf::from_str(text, None, &MjcfOptions::default()).unwrap();
    assert_eq!(chained.model.bodies.len(), 2);
    assert!(
        chained
            .model
            .joints
            .iter()
            .all(|j| j.shared_frame.is_none())
    );
}

/// With x, z and the pitch free, the body flies as a free planar body: its centre of mass on
/// the semi-implicit Euler parabola, its pitch rate constant, wherever the hinge is.
#[test]
fn a_compound_planar_body_flies_like_a_free_one() {
    let imp = planar("", "", "");
    let mut sim = Simulator::new(common::gpu(), &imp.model, 1).unwrap();
    let mut states = sim.body_states().unwrap();
    let start = states[0];
    let (vx, vz, wy) = (0.7, 2.0, 3.0);
    states[0].linear_velocity = [vx, 0.0, vz];
    states[0].angular_velocity = [0.0, wy, 0.0];
    sim.set_body_states(&states).unwrap();
    let n = 100u32;
    sim.step(n).unwrap();
    let end = sim.body_states().unwrap()[0];
    let t = n as f32 * DT;
    let nf = n as f32;
    let want = Vec3::new(
        start.position[0] + vx * t,
        start.position[1],
        start.position[2] + vz * t - G * DT * DT * nf * (nf + 1.0) / 2.0,
    );
    let off = (Vec3::from_array(end.position) - want).length();
    let angle = pitch(start.orientation, end.orientation);
    let want_angle = wy * t;
    println!(
        "after {t} s: centre of mass off by {off:.2e} m, pitch {angle:.5} (free body {want_angle:.5})"
    );
    assert!(off < 1e-3, "centre of mass off by {off} m");
    assert!(
        (angle - want_angle).abs() < 1e-3,
        "pitch {angle} vs {want_angle}"
    );
    assert!((end.angular_velocity[1] - wy).abs() < 1e-3, "{end:?}");
}

/// The slide's limit acts on its own coordinate: the body falls until rootz (the height of the
/// hinge's anchor) reaches its lower bound, then swings about the anchor.
#[test]
fn a_members_limit_stops_its_own_coordinate() {
    let imp = planar(r#"limited="true" range="-0.5 0.5""#, "", "");
    let mut sim = Simulator::new(common::gpu(), &imp.model, 1).unwrap();
    let start = sim.body_states().unwrap()[0];
    let anchor = Vec3::from_array(imp.model.joints[0].anchor);
    let local =
        Quat::from_array(start.orientation).inverse() * (anchor - Vec3::from_array(start.position));
    sim.step(200).unwrap();
    let end = sim.body_states().unwrap()[0];
    let now = Vec3::from_array(end.position) + Quat::from_array(end.orientation) * local;
    let rootz = now.z - anchor.z;
    let angle = pitch(start.orientation, end.orientation);
    println!("rootz after 2 s: {rootz:.5} (bound -0.5), pitch {angle:.3} (swinging)");
    // The soft limit sags by about g / (2 pi 30 Hz)^2 = 0.28 mm, more while the body swings.
    assert!((rootz + 0.5).abs() < 3e-3, "rootz {rootz}");
    assert!(
        angle.abs() > 0.1,
        "the body swings about the anchor: pitch {angle}"
    );
}

/// A planar body with a leg, limits, passive rows and motors on its members.
fn planar_with_a_leg() -> MjcfImport {
    planar(
        r#"limited="true" range="-0.3 0.5" damping="0.2""#,
        r#"<body name="thigh" pos="0.3 0 0">
             <joint name="hip" type="hinge" axis="0 1 0" range="-60 60" damping="0.1"
                    frictionloss="0.02"/>
             <geom type="capsule" fromto="0 0 0 0 0 -0.3" size="0.04" mass="0.5"/>
           </body>"#,
        r#"<actuator><motor joint="rooty" gear="1"/><motor joint="rootx" gear="1"/>
           <motor joint="hip" gear="1"/></actuator>"#,
    )
}

#[test]
fn gpu_matches_the_twin_with_compound_joints() {
    let imp = planar_with_a_leg();
    let model = &imp.model;
    assert_eq!(model.bodies.len(), 2);
    let n = 3;
    let mut sim = Simulator::new(common::gpu(), model, n).unwrap();
    let commands: Vec<f32> = (0..n * model.actuators.len())
        .map(|k| ((k as f32) * 0.7).sin() * 3.0)
        .collect();
    sim.set_commands(&commands).unwrap();
    let d = gpu_step_against_twin(&mut sim, model, &commands, 60);
    println!("compound joints: over 60 steps, {d}");
    assert!(d.worst < 1e-3, "{d}");
}

#[test]
fn gpu_adjoint_matches_the_twin_with_compound_joints() {
    let imp = planar_with_a_leg();
    let model = &imp.model;
    let compiled = Compiled::new(model);
    let n = 2;
    let mut sim = Simulator::new(common::gpu(), model, n).unwrap();
    let commands: Vec<f32> = vec![1.5, -2.0, 0.4, -0.7, 2.5, -0.3];
    sim.set_commands(&commands).unwrap();
    sim.step(20).unwrap();
    let states = sim.read_state_raw().unwrap();
    let len = compiled.header.state_len as usize;
    let seed: Vec<f32> = (0..n * len).map(|k| ((k as f32) * 0.41).cos()).collect();
    let errors = one_step_adjoint_errors(model, &states, &commands, &seed);
    for (i, e) in errors.iter().enumerate() {
        let (es, ep, ec) = (e.state, e.params, e.commands);
        println!("instance {i}: state {es:.2e} params {ep:.2e} commands {ec:.2e}");
        assert!(
            es < 1e-3 && ep < 1e-3 && ec < 1e-3,
            "instance {i}: state {es:e} params {ep:e} commands {ec:e}"
        );
    }
}
