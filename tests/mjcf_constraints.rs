//! MJCF `<tendon>` and `<equality>`: what becomes a tendon or a loop joint, and the errors
//! (element, line, reason) for what backdrive's two-body rows cannot hold.

use std::path::Path;

use backdrive::io::mjcf::{self, MjcfImport, MjcfOptions};
use backdrive::model::JointKind;

/// A torso on a slider with a three-hinge leg (parallel axes) and a two-finger hand.
fn robot(extra: &str) -> String {
    format!(
        r#"<mujoco>
  <worldbody>
    <body name="torso" pos="0 0 1">
      <joint name="slide" type="slide" axis="1 0 0" ref="0.5"/>
      <geom type="sphere" size="0.1"/>
      <body name="thigh" pos="0 0 -0.1">
        <joint name="hip" axis="0 1 0"/>
        <geom type="capsule" fromto="0 0 0 0 0 -0.3" size="0.04"/>
        <body name="shin" pos="0 0 -0.3">
          <joint name="knee" axis="0 1 0"/>
          <geom type="capsule" fromto="0 0 0 0 0 -0.3" size="0.04"/>
          <body name="foot" pos="0 0 -0.3">
            <joint name="ankle" axis="0 -1 0"/>
            <geom type="sphere" size="0.05"/>
          </body>
        </body>
      </body>
      <body name="hand" pos="0.3 0 0">
        <joint name="wrist" axis="0 0 1"/>
        <geom type="sphere" size="0.05"/>
        <body name="thumb" pos="0.1 0 0">
          <joint name="thumb" axis="0 1 0"/>
          <geom type="sphere" size="0.02"/>
        </body>
        <body name="finger" pos="0.1 0.05 0">
          <joint name="finger" axis="0 1 0"/>
          <geom type="sphere" size="0.02"/>
        </body>
      </body>
    </body>
  </worldbody>
{extra}
</mujoco>"#
    )
}

fn import(text: &str) -> backdrive::Result<MjcfImport> {
    mjcf::from_str(text, Some(Path::new("robot.xml")), &MjcfOptions::default())
}

#[test]
fn a_tendon_equality_over_a_parallel_chain_is_a_held_tendon() {
    let text = robot(
        r#"  <tendon>
    <fixed name="coupling">
      <joint joint="hip" coef="0.333"/>
      <joint joint="knee" coef="0.333"/>
      <joint joint="ankle" coef="-0.333"/>
    </fixed>
  </tendon>
  <equality>
    <tendon name="couple" tendon1="coupling" solref="0.005 0.5"/>
  </equality>"#,
    );
    let imp = import(&text).unwrap();
    let t = &imp.model.tendons[0];
    assert_eq!(t.name, "couple");
    assert_eq!(t.length, Some(0.0));
    assert_eq!(t.terms.len(), 3);
    let chain = t.chain(&imp.model).unwrap();
    assert_eq!(chain.parent.as_deref(), Some("torso"));
    assert_eq!(chain.child, "foot");
    assert!(
        imp.warnings
            .iter()
            .any(|w| w.line == 40 && w.message.contains("solref")),
        "{:?}",
        imp.warnings
    );
}

#[test]
fn fixed_tendon_limits_count_from_the_joints_ref() {
    let text = robot(
        r#"  <tendon>
    <fixed name="reach" limited="true" range="0.4 1.5">
      <joint joint="slide" coef="2"/>
    </fixed>
    <fixed name="inert"><joint joint="hip" coef="1"/><joint joint="thumb" coef="1"/></fixed>
  </tendon>"#,
    );
    let imp = import(&text).unwrap();
    assert_eq!(imp.model.tendons.len(), 1, "an inert tendon makes no row");
    let t = &imp.model.tendons[0];
    // Length 2 * qpos, qpos = ref + coordinate: 2 * 0.5 = 1 at the model's pose.
    assert_eq!(t.limits, Some([-0.6, 0.5]));
}

#[test]
fn a_joint_equality_with_a_linear_polycoef_is_a_held_tendon() {
    let text = robot(
        r#"  <equality>
    <joint joint1="knee" joint2="hip" polycoef="0.1 -1 0 0 0"/>
  </equality>"#,
    );
    let imp = import(&text).unwrap();
    let t = &imp.model.tendons[0];
    assert_eq!(t.length, Some(0.1));
    let coefficients: Vec<(String, f32)> = t
        .terms
        .iter()
        .map(|t| (t.joint.clone(), t.coefficient))
        .collect();
    assert_eq!(
        coefficients,
        vec![("knee".to_string(), 1.0), ("hip".to_string(), 1.0)]
    );
}

#[test]
fn couplings_backdrive_cannot_hold_are_errors_with_element_and_line() {
    // The two fingers hang off one hand: the row would act on three bodies.
    let fingers = robot(
        r#"  <tendon>
    <fixed name="grip"><joint joint="thumb" coef="-0.5"/><joint joint="finger" coef="0.5"/></fixed>
  </tendon>
  <equality>
    <tendon tendon1="grip"/>
  </equality>"#,
    );
    let e = import(&fingers).unwrap_err().to_string();
    assert!(e.contains("robot.xml:36: tendon:"), "{e}");
    assert!(e.contains("two-body rows"), "{e}");
    let quadratic = robot(
        r#"  <equality>
    <joint joint1="knee" joint2="hip" polycoef="0 1 0.5 0 0"/>
  </equality>"#,
    );
    let e = import(&quadratic).unwrap_err().to_string();
    assert!(e.contains("robot.xml:33: joint:"), "{e}");
    assert!(e.contains("linear polycoef"), "{e}");
    let spatial = robot(
        r#"  <tendon>
    <spatial name="rope" limited="true" range="0 0.3"><site site="a"/><site site="b"/><site site="c"/></spatial>
  </tendon>"#,
    );
    let e = import(&spatial).unwrap_err().to_string();
    assert!(e.contains("robot.xml:33: spatial:"), "{e}");
    assert!(e.contains("exactly two sites"), "{e}");
    let damper = robot(
        r#"  <tendon>
    <fixed name="damper" damping="3"><joint joint="hip" coef="1"/></fixed>
  </tendon>"#,
    );
    let e = import(&damper).unwrap_err().to_string();
    assert!(e.contains("tendon damping"), "{e}");
    let dead_band = robot(
        r#"  <tendon>
    <fixed name="spring" stiffness="3" springlength="0 0.1"><joint joint="hip" coef="1"/></fixed>
  </tendon>"#,
    );
    let e = import(&dead_band).unwrap_err().to_string();
    assert!(e.contains("robot.xml:33: fixed:"), "{e}");
    assert!(e.contains("dead band"), "{e}");
}

/// dm_control fish's `fins_sym`: a spring on the sum of two joints that hang off one body.
/// Its force needs no row, so it is kept: rest length from the joints' `springref` by
/// default, from `springlength` less the length at `ref` when given.
#[test]
fn a_tendon_stiffness_over_two_fingers_on_one_hand_is_a_spring() {
    let text = robot(
        r#"  <tendon>
    <fixed name="grip" stiffness="2"><joint joint="thumb" coef="0.5"/><joint joint="finger" coef="-1"/></fixed>
    <fixed name="slide_spring" stiffness="5" springlength="0.75"><joint joint="slide" coef="2"/></fixed>
  </tendon>"#,
    )
    .replace(r#"<joint name="thumb" axis="0 1 0"/>"#, r#"<joint name="thumb" axis="0 1 0" springref="40"/>"#);
    let imp = import(&text).unwrap_or_else(|e| panic!("{e}"));
    let grip = imp.model.tendons.iter().find(|t| t.name == "grip").unwrap();
    assert_eq!((grip.length, grip.limits), (None, None));
    let spring = grip.spring.unwrap();
    assert_eq!(spring.stiffness, 2.0);
    // springref 40 degrees on the thumb (coefficient 0.5), 0 on the finger.
    let want = 0.5 * 40f32.to_radians();
    assert!((spring.rest_length - want).abs() < 1e-6, "{spring:?}");
    // The two fingers make a three-body tendon: no row could hold it, the spring needs none.
    assert!(grip.chain(&imp.model).is_err());
    // The slide's ref is 0.5: MuJoCo's length 0.75 is 0.75 - 2 * 0.5 from the model pose.
    let slide = imp
        .model
        .tendons
        .iter()
        .find(|t| t.name == "slide_spring")
        .unwrap();
    assert!(
        (slide.spring.unwrap().rest_length + 0.25).abs() < 1e-6,
        "{slide:?}"
    );
}

#[test]
fn connect_and_weld_close_loops_with_ball_and_fixed_joints() {
    let text = robot(
        r#"  <equality>
    <connect name="loop" body1="foot" body2="hand" anchor="0 0 -0.05"/>
    <weld body1="thumb" body2="world"/>
  </equality>"#,
    );
    let imp = import(&text).unwrap();
    let ball = imp.model.joints.iter().find(|j| j.name == "loop").unwrap();
    assert_eq!(ball.kind, JointKind::Ball);
    assert_eq!(ball.parent.as_deref(), Some("foot"));
    assert_eq!(ball.child, "hand");
    // foot at (0, 0, 0.3) in the world; the anchor 5 cm below it.
    let expected = [0.0, 0.0, 0.25];
    for (a, e) in ball.anchor.iter().zip(expected) {
        assert!((a - e).abs() < 1e-6, "{:?}", ball.anchor);
    }
    let weld = imp
        .model
        .joints
        .iter()
        .find(|j| j.kind == JointKind::Fixed && j.child == "thumb")
        .unwrap();
    assert_eq!(weld.parent, None);
}

#[test]
fn a_motor_on_a_tendon_over_one_joint_drives_that_joint() {
    let text = robot(
        r#"  <tendon>
    <fixed name="t1"><joint joint="slide" coef="2"/><joint joint="hip" coef="0"/></fixed>
  </tendon>
  <actuator>
    <motor tendon="t1" gear="3" ctrlrange="-1 1"/>
  </actuator>"#,
    );
    let imp = import(&text).unwrap();
    assert_eq!(imp.model.actuators[0].joint, "slide");
    assert_eq!(imp.gears, vec![6.0]);
}

/// dm_control ball_in_cup's string: a limited spatial tendon between two sites on two bodies is
/// a spatial tendon whose sites sit where MuJoCo puts them (a site's default class, a turned
/// body, a site on the world), limits as written; an unlimited one holds nothing and is
/// skipped.
#[test]
fn a_spatial_tendon_between_two_sites_is_a_distance_limit() {
    let text = r#"<mujoco>
  <default>
    <default class="s"><site pos="0.01 0 -0.02"/></default>
  </default>
  <worldbody>
    <site name="hook" pos="0 0 2"/>
    <body name="cup" pos="0 0 1" euler="0 0 30">
      <joint name="cup_x" type="slide" axis="1 0 0"/>
      <geom type="capsule" fromto="0.05 0 0 0.05 0 -0.1" size="0.01"/>
      <site name="cup" class="s"/>
    </body>
    <body name="ball" pos="0.1 0 0.7">
      <joint name="ball_x" type="slide" axis="1 0 0"/>
      <joint name="ball_z" type="slide" axis="0 0 1"/>
      <geom type="sphere" size="0.025"/>
      <site name="ball" pos="0 0.01 0"/>
    </body>
  </worldbody>
  <tendon>
    <spatial name="string" limited="true" range="0 0.35"><site site="cup"/><site site="ball"/></spatial>
    <spatial name="slack" limited="false" range="0 1"><site site="hook"/><site site="ball"/></spatial>
    <spatial name="hook" range="0.5 1.5"><site site="hook"/><site site="ball"/></spatial>
  </tendon>
</mujoco>"#;
    let imp = import(text).unwrap();
    let model = &imp.model;
    let names: Vec<&str> = model.tendons.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["string", "hook"]);
    let world_point = |site: &backdrive::model::TendonSite| match &site.body {
        None => glam::Vec3::from_array(site.position),
        Some(name) => {
            let b = model.bodies.iter().find(|b| &b.name == name).unwrap();
            glam::Vec3::from_array(b.position)
                + glam::Quat::from_array(b.orientation) * glam::Vec3::from_array(site.position)
        }
    };
    let (sin, cos) = 30f32.to_radians().sin_cos();
    let string = &model.tendons[0];
    assert!(string.terms.is_empty());
    assert_eq!(string.limits, Some([0.0, 0.35]));
    assert_eq!(string.sites[0].body.as_deref(), Some("cup"));
    assert_eq!(string.sites[1].body.as_deref(), Some("ball"));
    for (site, want) in string.sites.iter().zip([
        glam::Vec3::new(0.01 * cos, 0.01 * sin, 0.98),
        glam::Vec3::new(0.1, 0.01, 0.7),
    ]) {
        let got = world_point(site);
        assert!((got - want).length() < 1e-5, "{got} != {want}");
    }
    let hook = &model.tendons[1];
    assert_eq!(hook.sites[0].body, None);
    assert_eq!(hook.sites[0].position, [0.0, 0.0, 2.0]);
    assert_eq!(hook.limits, Some([0.5, 1.5]));

    let unknown = text.replace(r#"<site site="cup"/>"#, r#"<site site="cap"/>"#);
    let e = import(&unknown).unwrap_err().to_string();
    assert!(e.contains("robot.xml:20: site.site"), "{e}");
    assert!(e.contains("unknown site 'cap'"), "{e}");
    let wrapped = text.replace(
        r#"<site site="cup"/><site site="ball"/>"#,
        r#"<site site="cup"/><geom geom="g"/><site site="ball"/>"#,
    );
    let e = import(&wrapped).unwrap_err().to_string();
    assert!(e.contains("robot.xml:20: geom:"), "{e}");
    assert!(e.contains("wrapping around geoms"), "{e}");
}
