//! The shipped robot models behave as robots: the arm holds its pose and follows servo
//! commands, the quadruped stands and survives a gait, and both have the paper's masses.
//!
//! Bounds were measured with the CPU twin and on lavapipe and are given with their margins
//! next to each assertion.

mod common;

use backdrive::{BodyState, Model, Simulator, io::models};
use glam::{Quat, Vec3};

fn body(model: &Model, name: &str) -> usize {
    model
        .body_index(name)
        .unwrap_or_else(|| panic!("{}: no body '{name}'", model.name))
}

fn quat(b: &BodyState) -> Quat {
    Quat::from_array(b.orientation)
}

fn pos(b: &BodyState) -> Vec3 {
    Vec3::from_array(b.position)
}

fn finite(states: &[BodyState]) -> bool {
    states.iter().all(|b| {
        b.position
            .iter()
            .chain(&b.orientation)
            .chain(&b.linear_velocity)
            .chain(&b.angular_velocity)
            .all(|v| v.is_finite())
    })
}

/// Hinge angle of `child` relative to `parent` about `axis` (world axis at the initial pose,
/// where both bodies start unrotated), as the engine measures it.
fn hinge_angle(parent: &BodyState, child: &BodyState, axis: Vec3) -> f32 {
    let rel = quat(parent).conjugate() * quat(child);
    let rel = if rel.w < 0.0 { -rel } else { rel };
    2.0 * Vec3::new(rel.x, rel.y, rel.z).dot(axis).atan2(rel.w)
}

/// The arm's tip: the end of the forearm, 0.25 m above its centre along its local z.
fn arm_tip(forearm: &BodyState) -> Vec3 {
    pos(forearm) + quat(forearm) * Vec3::new(0.0, 0.0, 0.25)
}

#[test]
fn arm_holds_its_pose_and_follows_a_servo_command() {
    let model = models::builtin("arm").unwrap();
    let nb = model.bodies.len();
    let forearm = body(&model, "forearm");
    let gimbal = body(&model, "shoulder_gimbal");
    let upper = body(&model, "upper_arm");
    let actuator = model
        .actuators
        .iter()
        .position(|a| a.joint == "shoulder_y")
        .unwrap();

    // Instance 0: zero commands for 5 s. Instance 1: +0.3 rad on shoulder_y for 3 s, then
    // back to zero for 2 s.
    let mut sim = Simulator::new(common::gpu(), &model, 2).unwrap();
    let n_cmd = model.actuators.len();
    let mut commands = vec![0.0f32; 2 * n_cmd];
    commands[n_cmd + actuator] = 0.3;
    sim.set_commands(&commands).unwrap();

    let initial_tip = arm_tip(&sim.body_states().unwrap()[forearm]);
    assert!(
        (initial_tip - Vec3::new(0.0, 0.0, 1.2)).length() < 1e-4,
        "{initial_tip}"
    );
    // Where the tip should go: the straight arm turned 0.3 rad about y around the shoulder.
    let shoulder = Vec3::new(0.0, 0.0, 0.2);
    let commanded_tip = shoulder + Vec3::new(0.3f32.sin(), 0.0, 0.3f32.cos());

    let mut hold_worst = 0.0f32;
    let mut angle_worst = 0.0f32;
    let mut tip_worst = 0.0f32;
    for k in 1..=50 {
        sim.step(10).unwrap();
        let s = sim.body_states().unwrap();
        assert!(finite(&s), "arm: non-finite state at step {}", 10 * k);
        let (a, b) = (&s[..nb], &s[nb..]);
        hold_worst = hold_worst.max((arm_tip(&a[forearm]) - initial_tip).length());
        let angle = hinge_angle(&b[gimbal], &b[upper], Vec3::Y);
        let tip = arm_tip(&b[forearm]);
        if (20..=30).contains(&k) {
            // From 2 s to 3 s the commanded joint must sit at its target.
            angle_worst = angle_worst.max((angle - 0.3).abs());
            tip_worst = tip_worst.max((tip - commanded_tip).length());
        }
        if k == 30 {
            commands[n_cmd + actuator] = 0.0;
            sim.set_commands(&commands).unwrap();
        }
        if k == 50 {
            // Commanded back to zero: straight up again after 2 s.
            let back = (tip - initial_tip).length();
            println!("arm: tip 2 s after commanding zero again is {back:.4} m from the start");
            // Measured 0.0056 m (the same soft-joint sag as when holding); bound 0.02 m,
            // against 0.30 m of tip travel out and back.
            assert!(
                back < 0.02,
                "arm did not return to its initial pose: {back} m"
            );
        }
    }
    println!(
        "arm: zero commands, tip moved at most {hold_worst:.4} m in 5 s; +0.3 rad on shoulder_y: \
         joint angle error at most {angle_worst:.4} rad, tip at most {tip_worst:.4} m from the \
         rigid-arm target, from 2 s to 3 s"
    );
    // Measured 0.0065 m on lavapipe, 0.0069 m with the CPU twin (the soft joints compress
    // by 5.6 mm under the arm's weight in the first 0.2 s, then nothing moves); bound 0.02 m.
    assert!(
        hold_worst < 0.02,
        "arm tip moved {hold_worst} m with zero commands"
    );
    // Measured < 1e-4 rad (0.785 rad/s reaches 0.3 rad in 0.4 s and the servo then sits on
    // its target); bound 0.02 rad, far below the 0.3 rad step.
    assert!(
        angle_worst < 0.02,
        "shoulder_y missed +0.3 rad by {angle_worst} rad"
    );
    // Measured 0.0107 m (5.6 mm sag plus the gimbal's locked axis giving 6 mrad under the
    // gravity torque); bound 0.03 m, against 0.30 m of tip travel.
    assert!(tip_worst < 0.03, "arm tip {tip_worst} m from its target");
}

/// The torso's upward axis.
fn up(torso: &BodyState) -> Vec3 {
    quat(torso) * Vec3::Z
}

#[test]
fn quadruped_has_the_papers_mass_split() {
    let model = models::builtin("quadruped").unwrap();
    let total = model.total_mass();
    let torso = model.bodies[body(&model, "torso")].mass;
    assert!((total - 28.7).abs() < 0.1, "total mass {total} kg");
    assert!(
        (torso / total - 0.75).abs() < 0.01,
        "torso holds {:.2}% of the mass",
        100.0 * torso / total
    );
    assert_eq!(model.actuators.len(), 8, "8 actuated joints");
}

#[test]
fn quadruped_stands_with_zero_commands() {
    let model = models::builtin("quadruped").unwrap();
    let nb = model.bodies.len();
    let torso = body(&model, "torso");
    // Instance 0 starts at rest; instance 1 is pushed: every body starts moving at
    // (0.2, 0.2, 0) m/s, which the servos must stop without the legs folding.
    let mut sim = Simulator::new(common::gpu(), &model, 2).unwrap();
    let mut states = sim.body_states().unwrap();
    let start = pos(&states[torso]);
    for b in &mut states[nb..] {
        b.linear_velocity = [0.2, 0.2, 0.0];
    }
    sim.set_body_states(&states).unwrap();

    let (mut lowest, mut tilt, mut drift) = ([f32::MAX; 2], [0.0f32; 2], [0.0f32; 2]);
    for k in 1..=100 {
        sim.step(10).unwrap();
        let s = sim.body_states().unwrap();
        assert!(finite(&s), "quadruped: non-finite state at step {}", 10 * k);
        for i in 0..2 {
            let t = &s[i * nb + torso];
            lowest[i] = lowest[i].min(t.position[2]);
            tilt[i] = tilt[i].max(up(t).angle_between(Vec3::Z));
            let d = pos(t) - start;
            drift[i] = drift[i].max(d.truncate().length());
        }
    }
    println!(
        "quadruped standing 10 s: torso lowest z {lowest:?} m (start {:.3}), largest tilt \
         {tilt:?} rad, largest horizontal drift {drift:?} m [at rest, pushed]",
        start.z
    );
    // Measured on lavapipe: at rest, lowest z 0.2186 (it lands from 1 mm and settles at
    // 0.2216: the soft joints and contacts give 9 mm), tilt 0, drift 6e-6 m; pushed, lowest z
    // 0.2171, tilt 0.014 rad, drift 0.046 m. A robot whose legs fold lies on its spine
    // spheres at z ~ 0.09 (with 1.5 Nm servos the pushed one does, and this test fails).
    // Bounds: z > 0.20, tilt < 0.1 rad, drift < 0.01 m at rest and < 0.1 m pushed.
    for i in 0..2 {
        assert!(
            lowest[i] > 0.20,
            "instance {i}: torso sank to z = {}",
            lowest[i]
        );
        assert!(tilt[i] < 0.1, "instance {i}: torso tilted {} rad", tilt[i]);
    }
    assert!(drift[0] < 0.01, "standing robot drifted {} m", drift[0]);
    assert!(drift[1] < 0.1, "pushed robot drifted {} m", drift[1]);
}

#[test]
fn quadruped_survives_a_sinusoidal_gait() {
    let model = models::builtin("quadruped").unwrap();
    let nb = model.bodies.len();
    let n_cmd = model.actuators.len();
    // Three robots: 1.5 Hz sines of amplitude 0.2, 0.6 and 1.2 rad (past the hip limits),
    // each servo with its own phase.
    let amplitudes = [0.2f32, 0.6, 1.2];
    let n = amplitudes.len();
    let mut sim = Simulator::new(common::gpu(), &model, n).unwrap();
    let dt = model.settings.dt;
    let mut commands = vec![0.0f32; n * n_cmd];
    let (mut lowest, mut highest, mut fastest) = (f32::MAX, f32::MIN, 0.0f32);
    let mut lowest_body = 0;
    for step in 0..1000 {
        let phase = 2.0 * std::f32::consts::PI * 1.5 * step as f32 * dt;
        for (i, amp) in amplitudes.iter().enumerate() {
            for a in 0..n_cmd {
                commands[i * n_cmd + a] = amp * (phase + 1.3 * a as f32).sin();
            }
        }
        sim.set_commands(&commands).unwrap();
        sim.step(1).unwrap();
        if step % 10 == 9 {
            let s = sim.body_states().unwrap();
            assert!(
                finite(&s),
                "quadruped gait: non-finite state at step {step}"
            );
            for (k, b) in s.iter().enumerate() {
                if b.position[2] < lowest {
                    lowest = b.position[2];
                    lowest_body = k % nb;
                }
                highest = highest.max(b.position[2]);
                fastest = fastest.max(Vec3::from_array(b.linear_velocity).length());
            }
            assert!(s.len() == n * nb);
        }
    }
    println!(
        "quadruped gait 10 s: body centres between z = {lowest:.3} ({}) and {highest:.3} m, \
         fastest body {fastest:.2} m/s",
        model.bodies[lowest_body].name
    );
    // With 4 Nm servos the legs fold and the robot ends on its spine spheres. Measured on
    // lavapipe: lowest body centre z 0.024 (a shin lying between its knee sphere and its
    // foot), highest 0.220, fastest body 1.24 m/s. Bounds: no body centre below -0.05
    // (nothing falls through the floor), none above 1 m (nothing is flung), no body faster
    // than 10 m/s.
    assert!(
        lowest > -0.05,
        "a body fell through the floor: z = {lowest}"
    );
    assert!(highest < 1.0, "a body was flung up to z = {highest}");
    assert!(fastest < 10.0, "a body reached {fastest} m/s");
}
