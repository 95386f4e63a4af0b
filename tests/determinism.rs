//! Bit-exact determinism: the same inputs give the same bits run to run, and an instance's
//! trajectory does not depend on the batch it runs in (its size, or its position in it).
//!
//! The model exercises every row kind that can branch or clamp: a cart on the floor (box
//! corners in frictional contact) on a limited slider pushed by a force actuator, a pole on a
//! hinge driven by a velocity servo that falls onto the ground (capsule-end contacts), and a
//! free ball with restitution that bounces and rolls (sphere contact, friction, restitution).
//! Every instance starts with different velocities and gets different, time-varying commands,
//! so that the instances' trajectories all differ (checked).

mod common;

use backdrive::model::{ActuatorKind, JointKind, ModelBuilder, ShapeKind};
use backdrive::{BodyState, Model, Simulator};

/// Steps per command update, and the number of updates.
const CHUNK: u32 = 10;
const UPDATES: u32 = 15;

fn model() -> Model {
    ModelBuilder::new("cart-pole on the floor")
        // The paper's step and sweep count.
        .with_settings(|s| {
            s.dt = 0.01;
            s.solver_iterations = 20;
        })
        .body("cart", 1.0, [0.0, 0.0, 0.05])
        .with_body(|b| b.friction = 0.8)
        .shape(
            ShapeKind::Box {
                half_extents: [0.2, 0.15, 0.05],
            },
            [0.0; 3],
        )
        .body("pole", 0.2, [0.0, 0.0, 0.55])
        .with_body(|b| b.friction = 0.5)
        .shape(
            ShapeKind::Capsule {
                radius: 0.03,
                half_length: 0.4,
            },
            [0.0; 3],
        )
        .body("ball", 0.5, [0.5, 0.3, 0.6])
        .with_body(|b| {
            b.friction = 0.6;
            b.restitution = 0.5;
        })
        .shape(ShapeKind::Sphere { radius: 0.1 }, [0.0; 3])
        .joint(
            "rail",
            JointKind::Slider,
            None,
            "cart",
            [0.0, 0.0, 0.05],
            [1.0, 0.0, 0.0],
        )
        .limits(-0.6, 0.6)
        .joint(
            "hinge",
            JointKind::Hinge,
            Some("cart"),
            "pole",
            [0.0, 0.0, 0.1],
            [0.0, 1.0, 0.0],
        )
        .actuator("push", "rail", ActuatorKind::Force, 0.0, 20.0, 1.0e3)
        .actuator("spin", "hinge", ActuatorKind::VelocityServo, 0.0, 0.3, 3.0)
        .build()
        .unwrap()
}

/// Initial bodies of the instance running trajectory `id`.
fn initial(model: &Model, id: usize) -> Vec<BodyState> {
    let f = id as f32;
    model
        .bodies
        .iter()
        .enumerate()
        .map(|(b, body)| {
            let mut s = BodyState {
                position: body.position,
                orientation: body.orientation,
                linear_velocity: [0.0; 3],
                angular_velocity: [0.0; 3],
            };
            match b {
                // The cart slides along the rail.
                0 => s.linear_velocity = [0.3 * (0.9 * f).sin(), 0.0, 0.0],
                // The pole tips over one way or the other.
                1 => s.angular_velocity = [0.0, 0.5 + 0.1 * (1.3 * f).cos(), 0.0],
                // The ball is thrown: it bounces and rolls.
                _ => {
                    s.linear_velocity = [0.5 * (0.7 * f).cos(), 0.4 * (1.1 * f).sin(), 1.0];
                    s.angular_velocity = [0.0, 0.0, 0.2 * f.sin()];
                }
            }
            s
        })
        .collect()
}

/// Commands of trajectory `id` during command update `k`.
fn commands(id: usize, k: u32) -> [f32; 2] {
    let (f, t) = (id as f32, k as f32);
    [8.0 * (0.8 * t + f).sin(), 2.0 * (0.5 * t - 0.3 * f).cos()]
}

/// Runs one batch in which instance `p` follows trajectory `ids[p]`. Returns, for every
/// command update, every instance's raw state (bodies and warm-start impulses) as bits.
fn run(model: &Model, ids: &[usize], steps_per_dispatch: u32) -> Vec<Vec<Vec<u32>>> {
    let n = ids.len();
    let mut sim = Simulator::new(common::gpu(), model, n).unwrap();
    sim.set_steps_per_dispatch(steps_per_dispatch);
    let bodies: Vec<BodyState> = ids.iter().flat_map(|&id| initial(model, id)).collect();
    sim.set_body_states(&bodies).unwrap();
    let len = sim.state_len();
    let mut out = Vec::new();
    for k in 0..UPDATES {
        let cmd: Vec<f32> = ids.iter().flat_map(|&id| commands(id, k)).collect();
        sim.set_commands(&cmd).unwrap();
        sim.step(CHUNK).unwrap();
        let raw = sim.read_state_raw().unwrap();
        out.push(
            (0..n)
                .map(|i| {
                    raw[i * len..(i + 1) * len]
                        .iter()
                        .map(|v| v.to_bits())
                        .collect()
                })
                .collect(),
        );
    }
    out
}

/// The trajectory of the instance at `position` of a run.
fn trajectory(run: &[Vec<Vec<u32>>], position: usize) -> Vec<Vec<u32>> {
    run.iter().map(|states| states[position].clone()).collect()
}

#[test]
fn same_inputs_give_identical_bits_run_to_run() {
    let model = model();
    let ids: Vec<usize> = (0..7).collect();
    let first = run(&model, &ids, 10);
    let second = run(&model, &ids, 10);
    assert!(first == second, "two identical runs differ");
    // Splitting the steps into more, shorter dispatches changes nothing either.
    let third = run(&model, &ids, 1);
    assert!(first == third, "one step per dispatch differs from ten");
    // The trajectories are all different (so the batch tests below are not vacuous), finite,
    // and they do touch the ground: the ball bounces and the pole falls.
    let last = first.last().unwrap();
    for a in 0..ids.len() {
        for b in a + 1..ids.len() {
            assert_ne!(last[a], last[b], "instances {a} and {b} ended identical");
        }
        assert!(last[a].iter().all(|&v| f32::from_bits(v).is_finite()));
    }
    let z = |state: &Vec<u32>, body: usize| f32::from_bits(state[13 * (body + 1) + 2]);
    let lowest_ball = first.iter().map(|s| z(&s[0], 2)).fold(f32::MAX, f32::min);
    let lowest_pole = first.iter().map(|s| z(&s[0], 1)).fold(f32::MAX, f32::min);
    println!("instance 0: lowest ball centre {lowest_ball} m, lowest pole centre {lowest_pole} m");
    assert!(lowest_ball < 0.11, "the ball should reach the ground");
    assert!(lowest_pole < 0.3, "the pole should fall over");
}

#[test]
fn an_instance_does_not_depend_on_its_batch() {
    let model = model();
    // Reference: each of a few trajectories alone in a batch of one.
    let tracked = [0usize, 3, 6];
    let alone: Vec<Vec<Vec<u32>>> = tracked
        .iter()
        .map(|&id| trajectory(&run(&model, &[id], 10), 0))
        .collect();

    // Batches of 7 in two orders, and of 300 where trajectory p sits at position
    // (7 p + 3) mod 300 (a permutation: 7 is prime to 300), so 0, 3 and 6 sit at 3, 24 and
    // 45.
    let forward: Vec<usize> = (0..7).collect();
    let reversed: Vec<usize> = (0..7).rev().collect();
    let mut big = vec![0usize; 300];
    for id in 0..300 {
        big[(7 * id + 3) % 300] = id;
    }
    // Put extra copies of trajectory 0 at the first and last positions, so that it also runs
    // at both ends of the batch and next to itself.
    big[0] = 0;
    big[299] = 0;
    let batches = [
        ("7 in order", run(&model, &forward, 10)),
        ("7 reversed", run(&model, &reversed, 10)),
        ("300 permuted", run(&model, &big, 10)),
    ];

    let mut compared = 0;
    for (name, result) in &batches {
        let ids: &[usize] = match *name {
            "7 in order" => &forward,
            "7 reversed" => &reversed,
            _ => &big,
        };
        for (position, id) in ids.iter().enumerate() {
            if let Some(t) = tracked.iter().position(|x| x == id) {
                assert!(
                    trajectory(result, position) == alone[t],
                    "trajectory {id} at position {position} of the batch '{name}' differs \
                     from the same trajectory alone"
                );
                compared += 1;
            }
        }
    }
    // Every trajectory 0..7 agrees between the two batches of 7 (at mirrored positions) and
    // the batch of 300.
    for id in 0..7 {
        let in_order = trajectory(&batches[0].1, id);
        assert!(
            in_order == trajectory(&batches[1].1, 6 - id),
            "trajectory {id}: 7 vs reversed 7"
        );
        let at = (7 * id + 3) % 300;
        assert!(
            in_order == trajectory(&batches[2].1, at),
            "trajectory {id}: 7 vs 300"
        );
    }
    println!("{compared} placements of 3 trajectories matched their runs alone bit for bit");
    assert_eq!(compared, 3 + 3 + 5);
}
