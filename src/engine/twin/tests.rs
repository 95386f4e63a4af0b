//! Every adjoint against central finite differences of its forward twin, in f64.

use super::{Adjoint, Instance};
use crate::engine::layout::Compiled;
use crate::model::{ActuatorKind, JointKind, Model, ModelBuilder, ShapeKind};

/// A small deterministic generator for test inputs.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

/// Which inputs to perturb.
#[derive(Clone, Copy)]
enum Input {
    State,
    Params,
    Commands,
}

/// Scalar probe L = seed . f(input) for one step.
fn probe(inst: &Instance<'_, f64>, seed: &[f64]) -> f64 {
    let mut s = inst.clone();
    s.step();
    s.state.iter().zip(seed).map(|(a, b)| a * b).sum()
}

/// Checks the step adjoint of `inst` against central differences over every input of `which`;
/// returns the norm-wise relative error.
fn check(inst: &Instance<'_, f64>, compiled: &Compiled, seed: &[f64], which: Input) -> f64 {
    let mut adj = Adjoint::<f64>::new(compiled);
    adj.state.copy_from_slice(seed);
    let mut s = inst.clone();
    s.step_adjoint(&mut adj);
    assert_eq!(
        s.state, inst.state,
        "step_adjoint must leave the state unchanged"
    );
    let analytic = match which {
        Input::State => adj.state.clone(),
        Input::Params => adj.params.clone(),
        Input::Commands => adj.commands.clone(),
    };
    // Resting contacts put solver kinks within 1e-6 of typical states; 1e-7 keeps the
    // central difference on one side while its rounding noise stays near 1e-9.
    let h = 1e-7;
    let mut numeric = vec![0.0; analytic.len()];
    for (k, out) in numeric.iter_mut().enumerate() {
        let mut plus = inst.clone();
        let mut minus = inst.clone();
        let (p, m) = match which {
            Input::State => (&mut plus.state[k], &mut minus.state[k]),
            Input::Params => (&mut plus.params[k], &mut minus.params[k]),
            Input::Commands => (&mut plus.commands[k], &mut minus.commands[k]),
        };
        let scale = p.abs().max(1.0);
        *p += h * scale;
        *m -= h * scale;
        *out = (probe(&plus, seed) - probe(&minus, seed)) / (2.0 * h * scale);
    }
    let diff: f64 = analytic
        .iter()
        .zip(&numeric)
        .map(|(a, n)| (a - n).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = numeric.iter().map(|n| n * n).sum::<f64>().sqrt();
    // Gradients below 1e-3 in norm are compared absolutely: the finite differences carry
    // about 1e-9 of f64 rounding noise (1e-16 over h = 1e-7).
    let rel = diff / norm.max(1e-3);
    if rel > 1e-6 {
        eprintln!("  norm {norm:e} diff {diff:e}");
        for (k, (a, n)) in analytic.iter().zip(&numeric).enumerate() {
            if (a - n).abs() > 1e-8 * (1.0 + n.abs()) {
                eprintln!("  slot {k}: adjoint {a:e} vs finite difference {n:e}");
            }
        }
    }
    rel
}

/// Advances a model a few steps with varied commands so that warm starts, contacts and limits
/// are active, then checks the next step's adjoint for states, parameters and commands.
fn check_model(model: &Model, warmup: usize, seed_value: u64) {
    let compiled = Compiled::new(model);
    let mut rng = Lcg(seed_value);
    let mut inst = Instance::<f64>::new(&compiled);
    for c in inst.commands.iter_mut() {
        *c = 0.5 * rng.next();
    }
    for _ in 0..warmup {
        inst.step();
    }
    let seed: Vec<f64> = (0..inst.state.len()).map(|_| rng.next()).collect();
    for (which, name) in [
        (Input::State, "state"),
        (Input::Params, "params"),
        (Input::Commands, "commands"),
    ] {
        let rel = check(&inst, &compiled, &seed, which);
        assert!(
            rel <= 1e-6,
            "{}: {name} adjoint relative error {rel:e} after {warmup} steps",
            model.name
        );
    }
}

fn pendulum_with_everything() -> Model {
    // A chain with every joint kind, limits and every actuator kind, above the ground.
    ModelBuilder::new("chain")
        .with_settings(|s| s.solver_iterations = 4)
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
        .body("d", 0.3, [0.8, 0.0, 1.6])
        .joint(
            "root",
            JointKind::Ball,
            None,
            "a",
            [0.0, 0.0, 2.2],
            [0.0, 1.0, 0.0],
        )
        .limits(-0.3, 0.3)
        .joint(
            "elbow",
            JointKind::Hinge,
            Some("a"),
            "b",
            [0.2, 0.0, 2.0],
            [0.0, 1.0, 0.0],
        )
        .limits(-0.5, 0.4)
        .joint(
            "wrist",
            JointKind::Slider,
            Some("b"),
            "c",
            [0.6, 0.0, 2.0],
            [1.0, 0.0, 0.0],
        )
        .limits(-0.05, 0.05)
        .joint(
            "weld",
            JointKind::Fixed,
            Some("c"),
            "d",
            [0.8, 0.0, 1.8],
            [1.0, 0.0, 0.0],
        )
        .actuator("m1", "elbow", ActuatorKind::PositionServo, 5.0, 3.0, 2.0)
        .actuator("m2", "wrist", ActuatorKind::VelocityServo, 0.0, 5.0, 0.5)
        .actuator("m3", "elbow", ActuatorKind::Force, 0.0, 2.0, 1.0)
        .build()
        .unwrap()
}

#[test]
fn step_adjoint_matches_finite_differences_for_joints_limits_and_actuators() {
    let model = pendulum_with_everything();
    for (warmup, seed) in [(0, 1), (5, 2), (30, 3)] {
        check_model(&model, warmup, seed);
    }
}

#[test]
fn step_adjoint_matches_finite_differences_for_ground_contacts() {
    // A box tumbling onto the ground: corners on both sides of the contact threshold.
    let model = ModelBuilder::new("box")
        .with_settings(|s| s.solver_iterations = 3)
        .body("box", 1.0, [0.0, 0.0, 0.3])
        .shape(
            ShapeKind::Box {
                half_extents: [0.3, 0.2, 0.1],
            },
            [0.0; 3],
        )
        .with_body(|b| {
            b.linear_velocity = [0.5, 0.2, -1.0];
            b.angular_velocity = [1.0, 2.0, 0.5];
            b.restitution = 0.3;
            b.friction = 0.6;
        })
        .build()
        .unwrap();
    for (warmup, seed) in [(0, 4), (10, 5), (16, 6), (40, 7)] {
        check_model(&model, warmup, seed);
    }
}

#[test]
fn step_adjoint_matches_finite_differences_for_sphere_pairs() {
    let model = ModelBuilder::new("pair")
        .with_settings(|s| {
            s.solver_iterations = 3;
            s.sphere_collisions = true;
            s.gravity = [0.0, 0.0, 0.0];
        })
        .body("a", 1.0, [0.0, 0.0, 1.0])
        .shape(ShapeKind::Sphere { radius: 0.2 }, [0.0; 3])
        .with_body(|b| b.linear_velocity = [1.0, 0.1, 0.05])
        .body("b", 2.0, [0.5, 0.05, 1.02])
        .shape(ShapeKind::Sphere { radius: 0.2 }, [0.0; 3])
        .with_body(|b| {
            b.angular_velocity = [0.3, -0.2, 1.0];
            b.restitution = 0.5;
        })
        .build()
        .unwrap();
    for (warmup, seed) in [(0, 8), (5, 9), (12, 10)] {
        check_model(&model, warmup, seed);
    }
}

#[test]
fn step_adjoint_matches_finite_differences_on_shipped_models() {
    for name in crate::io::models::names() {
        let model = crate::io::models::builtin(name).unwrap();
        check_model(&model, 20, 11);
    }
}

#[test]
fn hinge_adjoint_is_smooth_through_half_a_turn() {
    // The cart-pole's pole standing up: its hinge is half a turn from the initial pose.
    let model = crate::io::models::builtin("cartpole").unwrap();
    let compiled = Compiled::new(&model);
    for (tilt, seed_value) in [(0.1f32, 21u64), (-0.05, 22), (0.0, 23)] {
        let mut inst = Instance::<f64>::new(&compiled);
        let q = glam::Quat::from_rotation_y(std::f32::consts::PI + tilt);
        let centre = glam::Vec3::new(0.0, 0.0, 1.5) + q * glam::Vec3::new(0.0, 0.0, -0.5);
        for k in 0..3 {
            inst.state[26 + k] = f64::from(centre[k]);
        }
        for (k, v) in q.to_array().iter().enumerate() {
            inst.state[29 + k] = f64::from(*v);
        }
        inst.commands[0] = 2.0;
        for _ in 0..3 {
            inst.step();
        }
        let mut rng = Lcg(seed_value);
        let seed: Vec<f64> = (0..inst.state.len()).map(|_| rng.next()).collect();
        for which in [Input::State, Input::Params, Input::Commands] {
            let rel = check(&inst, &compiled, &seed, which);
            assert!(rel <= 1e-6, "tilt {tilt}: relative error {rel:e}");
        }
    }
}

/// A body of `shape` thrown with a spin at a world shape of `kind`, without the ground.
fn thrown_at_world_shape(
    shape: ShapeKind,
    position: [f32; 3],
    kind: crate::model::WorldShapeKind,
    rotation: [f32; 4],
) -> Model {
    ModelBuilder::new("world shape")
        .with_settings(|s| {
            s.solver_iterations = 3;
            s.ground = false;
        })
        .body("thrown", 1.0, position)
        .shape(shape, [0.0; 3])
        .with_body(|b| {
            b.linear_velocity = [0.3, -0.2, -1.5];
            b.angular_velocity = [1.0, -2.0, 0.5];
            b.restitution = 0.3;
            b.friction = 0.6;
        })
        .world_shape(kind, [0.0, 0.0, 0.0], rotation)
        .build()
        .unwrap()
}

#[test]
fn step_adjoint_matches_finite_differences_for_every_world_shape() {
    use crate::model::WorldShapeKind;
    let tilt = glam::Quat::from_rotation_x(0.4) * glam::Quat::from_rotation_y(-0.2);
    let tilt = tilt.to_array();
    let upright = [0.0, 0.0, 0.0, 1.0];
    let small_box = ShapeKind::Box {
        half_extents: [0.15, 0.1, 0.05],
    };
    let ball = ShapeKind::Sphere { radius: 0.1 };
    let capsule = ShapeKind::Capsule {
        radius: 0.05,
        half_length: 0.1,
    };
    let cases = [
        (
            "tilted plane",
            small_box.clone(),
            [0.1, 0.0, 0.35],
            WorldShapeKind::Plane,
            tilt,
        ),
        (
            "sphere",
            capsule.clone(),
            [0.12, 0.05, 0.55],
            WorldShapeKind::Sphere { radius: 0.3 },
            upright,
        ),
        (
            "capsule",
            ball.clone(),
            [0.05, 0.3, 0.4],
            WorldShapeKind::Capsule {
                radius: 0.15,
                half_length: 0.4,
            },
            tilt,
        ),
        (
            "box face and edge",
            small_box.clone(),
            [0.45, 0.1, 0.45],
            WorldShapeKind::Box {
                half_extents: [0.5, 0.4, 0.2],
            },
            tilt,
        ),
        (
            "cylinder rim",
            ball.clone(),
            [0.32, 0.1, 0.55],
            WorldShapeKind::Cylinder {
                radius: 0.3,
                half_length: 0.3,
            },
            upright,
        ),
        (
            "cylinder side",
            capsule.clone(),
            [0.1, 0.2, 0.5],
            WorldShapeKind::Cylinder {
                radius: 0.2,
                half_length: 0.5,
            },
            glam::Quat::from_rotation_x(1.4).to_array(),
        ),
    ];
    for (k, (name, shape, position, kind, rotation)) in cases.into_iter().enumerate() {
        let model = thrown_at_world_shape(shape, position, kind, rotation);
        let compiled = Compiled::new(&model);
        assert!(compiled.header.n_world_contacts > 0, "{name}");
        assert_eq!(compiled.header.n_contacts, 0, "{name}: the ground is off");
        // The checked states must include touching ones: some normal row pushes by step 30.
        let mut inst = Instance::<f64>::new(&compiled);
        let mut touched = false;
        for _ in 0..30 {
            inst.step();
            let h = compiled.header;
            touched |= (0..h.n_world_contacts)
                .any(|c| inst.state[(h.state_lambda + h.row_world_contact + 3 * c) as usize] > 0.0);
        }
        assert!(touched, "{name}: the body never touches the world shape");
        for (warmup, seed) in [(0, 40), (8, 41), (15, 42), (30, 43)] {
            eprintln!("{name}: {warmup} steps");
            check_model(&model, warmup, seed + 10 * k as u64);
        }
    }
}
