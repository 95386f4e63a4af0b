//! Tendons on the GPU: the kernel and its adjoint against the CPU twin, and a held length and
//! a length limit changing the motion as they should.

mod common;

use common::one_step::{gpu_step_against_twin, one_step_adjoint_errors};

use backdrive::engine::layout::Compiled;
use backdrive::model::{ActuatorKind, JointKind, ModelBuilder, ShapeKind};
use backdrive::{BodyState, Model, Simulator};
use glam::Quat;

/// Every tendon row kind: a held length over two hinges (one axis flipped with its
/// coefficient), a limit over two hinges and a limit over one slider.
fn every_tendon_kind() -> Model {
    ModelBuilder::new("tendons")
        .with_settings(|s| s.solver_iterations = 4)
        .body("a", 1.0, [0.2, 0.0, 2.0])
        .shape(
            ShapeKind::Box {
                half_extents: [0.2, 0.05, 0.05],
            },
            [0.0; 3],
        )
        .with_body(|b| b.angular_velocity = [0.0, 1.5, 0.0])
        .body("b", 0.7, [0.6, 0.0, 2.0])
        .shape(ShapeKind::Sphere { radius: 0.05 }, [0.0; 3])
        .body("c", 0.5, [1.0, 0.0, 2.0])
        .shape(ShapeKind::Sphere { radius: 0.1 }, [0.0; 3])
        .body("d", 0.4, [0.0, 1.0, 1.0])
        .shape(ShapeKind::Sphere { radius: 0.1 }, [0.0; 3])
        .with_body(|b| b.linear_velocity = [0.3, 0.0, 0.0])
        .joint(
            "h1",
            JointKind::Hinge,
            None,
            "a",
            [0.0, 0.0, 2.0],
            [0.0, 1.0, 0.0],
        )
        .joint(
            "h2",
            JointKind::Hinge,
            Some("a"),
            "b",
            [0.4, 0.0, 2.0],
            [0.0, 1.0, 0.0],
        )
        .joint(
            "h3",
            JointKind::Hinge,
            Some("b"),
            "c",
            [0.8, 0.0, 2.0],
            [0.0, -1.0, 0.0],
        )
        .joint(
            "s",
            JointKind::Slider,
            None,
            "d",
            [0.0, 1.0, 1.0],
            [1.0, 0.0, 0.0],
        )
        .actuator("m", "h1", ActuatorKind::Force, 0.0, 2.0, 1.0)
        .tendon("couple", &[("h3", -0.5), ("h2", 0.5)], Some(0.1))
        .tendon("bound", &[("h1", 1.0), ("h2", 1.0)], None)
        .tendon_limits(-0.2, 0.05)
        .tendon("slide", &[("s", 2.0)], None)
        .tendon_limits(-0.1, 0.02)
        .build()
        .unwrap()
}

/// The GPU step against the f32 twin, one step at a time from the GPU's state. Measured on
/// lavapipe: worst relative difference 1.3e-4; bound 1e-3, as for the shipped models.
#[test]
fn the_gpu_tendon_rows_match_the_twin() {
    let model = every_tendon_kind();
    let n = 3;
    let mut sim = Simulator::new(common::gpu(), &model, n).unwrap();
    let commands = [0.5, -1.0, 1.5];
    sim.set_commands(&commands).unwrap();
    let d = gpu_step_against_twin(&mut sim, &model, &commands, 60);
    eprintln!("over 60 steps, {d}");
    assert!(d.worst < 1e-3, "{d}");
}

/// The GPU's one-step adjoint against the f64 twin's, after 25 steps (rows active). Measured
/// on lavapipe: relative errors 1.2e-6 (state) and 2.8e-6 (parameters) at most; bound 1e-3 as
/// for the shipped models.
#[test]
fn the_gpu_tendon_adjoint_matches_the_f64_twin() {
    let model = every_tendon_kind();
    let compiled = Compiled::new(&model);
    let n = 2;
    let mut sim = Simulator::new(common::gpu(), &model, n).unwrap();
    let commands = [0.7f32, -0.4];
    sim.set_commands(&commands).unwrap();
    sim.step(25).unwrap();
    let states = sim.read_state_raw().unwrap();
    let len = compiled.header.state_len as usize;
    let seed: Vec<f32> = (0..n * len).map(|k| ((k as f32) * 0.37).sin()).collect();
    let errors = one_step_adjoint_errors(&model, &states, &commands, &seed);
    for (i, e) in errors.iter().enumerate() {
        let (es, ep) = (e.state, e.params);
        eprintln!("instance {i}: state {es:.2e} params {ep:.2e}");
        assert!(
            es < 1e-3 && ep < 1e-3,
            "instance {i}: state {es} params {ep}"
        );
    }
}

/// A hand hinged to the world with two fingers hinged to it whose joints share a spring (a
/// tendon over three bodies, applied as a force), with an actuator or without one (the
/// spring's force record reads no command either way).
fn finger_spring(with_actuator: bool) -> Model {
    let b = ModelBuilder::new("finger spring")
        .with_settings(|s| s.solver_iterations = 4)
        .body("hand", 1.0, [0.0, 0.0, 1.5])
        .shape(
            ShapeKind::Box {
                half_extents: [0.1, 0.1, 0.05],
            },
            [0.0; 3],
        )
        .with_body(|b| b.angular_velocity = [0.0, 0.8, 0.0])
        .body("f1", 0.3, [0.1, 0.0, 1.3])
        .shape(
            ShapeKind::Capsule {
                radius: 0.03,
                half_length: 0.1,
            },
            [0.0; 3],
        )
        .with_body(|b| b.angular_velocity = [1.2, 0.0, 0.0])
        .body("f2", 0.2, [-0.1, 0.0, 1.3])
        .shape(ShapeKind::Sphere { radius: 0.05 }, [0.0; 3])
        .joint(
            "wrist",
            JointKind::Hinge,
            None,
            "hand",
            [0.0, 0.0, 1.6],
            [0.0, 1.0, 0.0],
        )
        .joint(
            "k1",
            JointKind::Hinge,
            Some("hand"),
            "f1",
            [0.1, 0.0, 1.45],
            [1.0, 0.0, 0.0],
        )
        .joint(
            "k2",
            JointKind::Hinge,
            Some("hand"),
            "f2",
            [-0.1, 0.0, 1.45],
            [-1.0, 0.0, 0.0],
        );
    let b = if with_actuator {
        b.actuator("m", "wrist", ActuatorKind::Force, 0.0, 2.0, 1.0)
    } else {
        b
    };
    b.tendon("grip", &[("k1", 0.5), ("k2", 0.7)], None)
        .tendon_spring(4.0, 0.1)
        .build()
        .unwrap()
}

/// The spring's force on the GPU against the f32 twin, and its adjoint against the f64
/// twin's, with and without a command slot. Measured on lavapipe: worst relative step
/// difference 2.3e-5, adjoint relative errors 5.3e-7 (state) and 9.1e-7 (parameters) at
/// most; bounds 1e-3 as for the other tendon tests.
#[test]
fn the_gpu_tendon_spring_matches_the_twin() {
    for with_actuator in [true, false] {
        let model = finger_spring(with_actuator);
        let n = 2;
        let commands: Vec<f32> = if with_actuator {
            vec![0.6, -0.8]
        } else {
            Vec::new()
        };
        let mut sim = Simulator::new(common::gpu(), &model, n).unwrap();
        sim.set_commands(&commands).unwrap();
        let d = gpu_step_against_twin(&mut sim, &model, &commands, 60);
        eprintln!("actuator {with_actuator}: over 60 steps, {d}");
        assert!(d.worst < 1e-3, "{d}");

        let compiled = Compiled::new(&model);
        let states = sim.read_state_raw().unwrap();
        let len = compiled.header.state_len as usize;
        let seed: Vec<f32> = (0..n * len).map(|k| ((k as f32) * 0.37).sin()).collect();
        let errors = one_step_adjoint_errors(&model, &states, &commands, &seed);
        for (i, e) in errors.iter().enumerate() {
            let (es, ep) = (e.state, e.params);
            eprintln!("actuator {with_actuator}, instance {i}: state {es:.2e} params {ep:.2e}");
            assert!(
                es < 1e-3 && ep < 1e-3,
                "instance {i}: state {es} params {ep}"
            );
        }
    }
}

/// A ball on a string to a hinged, driven arm (a distance limit between sites on two moving
/// bodies, off their centres) and on a rod to a point in the world (a held distance); the
/// twin's finite-difference test uses the same model.
fn ball_on_a_string() -> Model {
    ModelBuilder::new("ball on a string")
        .with_settings(|s| s.solver_iterations = 4)
        .body("arm", 1.0, [0.2, 0.0, 1.0])
        .shape(
            ShapeKind::Box {
                half_extents: [0.2, 0.05, 0.05],
            },
            [0.0; 3],
        )
        .with_body(|b| b.angular_velocity = [0.0, 1.5, 0.0])
        .body("ball", 0.3, [0.5, 0.1, 0.7])
        .shape(ShapeKind::Sphere { radius: 0.05 }, [0.0; 3])
        .with_body(|b| {
            b.linear_velocity = [0.4, -0.2, 0.1];
            b.angular_velocity = [1.0, 2.0, 0.0];
        })
        .joint(
            "h",
            JointKind::Hinge,
            None,
            "arm",
            [0.0, 0.0, 1.0],
            [0.0, 1.0, 0.0],
        )
        .actuator("m", "h", ActuatorKind::Force, 0.0, 2.0, 1.0)
        .spatial_tendon(
            "string",
            [
                (Some("arm"), [0.2, 0.05, 0.0]),
                (Some("ball"), [0.0, 0.0, 0.05]),
            ],
            None,
        )
        .tendon_limits(0.0, 0.28)
        .spatial_tendon(
            "rod",
            [(None, [0.5, 0.5, 1.2]), (Some("ball"), [0.05, 0.0, 0.0])],
            Some(0.64),
        )
        .build()
        .unwrap()
}

/// Spatial tendon rows on the GPU against the f32 twin over 60 steps, and the GPU's one-step
/// adjoint against the f64 twin's after them (string taut, rod held). Measured on lavapipe:
/// worst relative step difference 1.1e-5, adjoint relative errors 6.5e-7 (state) and 3.3e-7
/// (parameters) at most; bounds 1e-3 as for the other tendon tests.
#[test]
fn the_gpu_spatial_tendon_matches_the_twin() {
    let model = ball_on_a_string();
    let n = 2;
    let commands = [0.6f32, -0.8];
    let mut sim = Simulator::new(common::gpu(), &model, n).unwrap();
    sim.set_commands(&commands).unwrap();
    let d = gpu_step_against_twin(&mut sim, &model, &commands, 60);
    eprintln!("over 60 steps, {d}");
    assert!(d.worst < 1e-3, "{d}");

    let compiled = Compiled::new(&model);
    let states = sim.read_state_raw().unwrap();
    let len = compiled.header.state_len as usize;
    let seed: Vec<f32> = (0..n * len).map(|k| ((k as f32) * 0.37).sin()).collect();
    let errors = one_step_adjoint_errors(&model, &states, &commands, &seed);
    for (i, e) in errors.iter().enumerate() {
        let (es, ep) = (e.state, e.params);
        eprintln!("instance {i}: state {es:.2e} params {ep:.2e}");
        assert!(
            es < 1e-3 && ep < 1e-3,
            "instance {i}: state {es} params {ep}"
        );
    }
}

/// A horizontal chain of three links along x, hinged about y, falling from rest. The links
/// have the inertia of a 1 kg ball of radius 0.35 m: angular rows are soft in proportion to
/// their bodies' own inertia, and point-mass links (0.001 kg m^2) let a limit over h1 alone
/// overshoot 0.5 rad to 1.08 rad (the f32 twin, 200 steps).
fn chain(tendon: impl FnOnce(ModelBuilder) -> ModelBuilder) -> Model {
    let inertia = |b: &mut backdrive::model::Body| b.inertia = Some([0.05; 3]);
    let builder = ModelBuilder::new("chain")
        .with_settings(|s| s.dt = 0.005)
        .body("a", 1.0, [0.2, 0.0, 2.0])
        .with_body(inertia)
        .body("b", 1.0, [0.6, 0.0, 2.0])
        .with_body(inertia)
        .body("c", 1.0, [1.0, 0.0, 2.0])
        .with_body(inertia)
        .joint(
            "h1",
            JointKind::Hinge,
            None,
            "a",
            [0.0, 0.0, 2.0],
            [0.0, 1.0, 0.0],
        )
        .joint(
            "h2",
            JointKind::Hinge,
            Some("a"),
            "b",
            [0.4, 0.0, 2.0],
            [0.0, 1.0, 0.0],
        )
        .joint(
            "h3",
            JointKind::Hinge,
            Some("b"),
            "c",
            [0.8, 0.0, 2.0],
            [0.0, 1.0, 0.0],
        );
    tendon(builder).build().unwrap()
}

/// Rotation about y from `from` to `to` (radians).
fn angle_about_y(from: &BodyState, to: &BodyState) -> f32 {
    let q = Quat::from_array(from.orientation).conjugate() * Quat::from_array(to.orientation);
    2.0 * q.y.atan2(q.w)
}

/// Bodies after every 10 steps over 1 s.
fn trajectory(model: &Model) -> Vec<Vec<BodyState>> {
    let mut sim = Simulator::new(common::gpu(), model, 1).unwrap();
    let mut out = Vec::new();
    for _ in 0..20 {
        sim.step(10).unwrap();
        out.push(sim.body_states().unwrap());
    }
    out
}

/// h2 + h3 held at 0 keeps the last link parallel to the first. Measured on lavapipe: at most
/// 0.0012 rad apart with the tendon, 1.23 rad without; bounds 0.01 and 0.2.
#[test]
fn a_held_length_keeps_two_hinges_opposite() {
    let spread = |model: &Model| {
        trajectory(model)
            .iter()
            .map(|s| angle_about_y(&s[0], &s[2]).abs())
            .fold(0.0f32, f32::max)
    };
    let free = spread(&chain(|b| b));
    let held = spread(&chain(|b| {
        b.tendon("parallel", &[("h2", 1.0), ("h3", 1.0)], Some(0.0))
    }));
    eprintln!("largest angle between the first and last link: {held} held, {free} free");
    assert!(held < 0.01, "{held}");
    assert!(free > 0.2, "{free}");
}

/// h1 + h2 <= 0.5: the middle link's rotation from the start stops at the bound (the soft
/// row lets it 3% past). Measured on lavapipe: at most 0.5136 rad with the limit, 3.42 rad
/// without; bounds 0.53 and 1.0.
#[test]
fn a_tendon_limit_stops_the_sum_of_two_hinges() {
    let start = chain(|b| b);
    let reach = |model: &Model| {
        let first = Simulator::new(common::gpu(), &start, 1)
            .unwrap()
            .body_states()
            .unwrap();
        trajectory(model)
            .iter()
            .map(|s| angle_about_y(&first[1], &s[1]))
            .fold(f32::MIN, f32::max)
    };
    let free = reach(&start);
    let limited = reach(&chain(|b| {
        b.tendon("sum", &[("h1", 1.0), ("h2", 1.0)], None)
            .tendon_limits(-1.0, 0.5)
    }));
    eprintln!("largest h1 + h2: {limited} limited, {free} free");
    assert!(limited < 0.53, "{limited}");
    assert!(free > 1.0, "{free}");
}
