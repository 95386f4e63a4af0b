//! Training tasks: a model, a policy shape, a loss, a horizon and the physical randomisation of
//! the batch, read from task files ([`crate::learn::task_file`], `tasks/README.md`). The shipped
//! ones ([`BUILTIN`], the files under `tasks/`) are compiled in; `backdrive train <task>` runs
//! one of them or any task file ([`load`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::layout::{Compiled, ParamSlot};
use crate::error::{Error, Result};
use crate::grad::loss::Loss;
use crate::learn::algorithm::Algorithm;
use crate::learn::optim::OptimizerConfig;
use crate::learn::policy::PolicySpec;
use crate::learn::random::unit_random;
use crate::learn::task_file::{self, ModelBase};
use crate::model::{JointKind, Model};

/// Ranges from which every instance draws its physical parameters, per iteration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Randomization {
    /// Each body's mass is scaled by a factor in `1 +- mass` (inertia with it).
    pub mass: f32,
    /// Each contact's friction is drawn in `[friction.0, friction.1]`; `None` keeps the model's.
    pub friction: Option<(f32, f32)>,
    /// The whole robot (its initial state and the anchors of the joints that attach it to the
    /// world) is moved by a vector drawn per axis in `[shift.0, shift.1]`. With a fixed loss
    /// target this is a random target in the robot's frame (`arm-reach-random`).
    #[serde(default)]
    pub shift: Option<([f32; 3], [f32; 3])>,
    /// Added to every hinge's angle (rad) and slider's position (m) in the initial state, drawn
    /// per joint in `[joint_angle.0, joint_angle.1]` (and kept within the joint's limits), for
    /// every start and reset of a robot by the actor-critic, so that the batch does not start,
    /// and fall, in lock-step. `None`: the model's initial pose.
    #[serde(default)]
    pub joint_angle: Option<(f32, f32)>,
    /// The same for every hinge's and slider's initial speed (rad/s or m/s): the child's whole
    /// subtree moves with it.
    #[serde(default)]
    pub joint_speed: Option<(f32, f32)>,
}

impl Randomization {
    /// Instance `instance`'s parameters at `iteration`, drawn with a counter-based generator
    /// keyed by (seed, instance, iteration) so that any batch split gives the same draws.
    pub fn apply(&self, compiled: &Compiled, seed: u64, instance: u64, iteration: u64) -> Vec<f32> {
        let mut p = compiled.default_params.clone();
        let key = seed ^ iteration.wrapping_mul(0x2545_F491_4F6C_DD1D);
        for (k, slot) in compiled.param_slots.iter().enumerate() {
            let u = unit_random(key, instance, k as u64) as f32;
            match slot {
                ParamSlot::InverseMass(b) | ParamSlot::InverseInertia(b, _) if self.mass > 0.0 => {
                    // One factor per body: draw with the body's mass slot as counter.
                    let body_slot = compiled
                        .param_slots
                        .iter()
                        .position(|s| *s == ParamSlot::InverseMass(*b))
                        .unwrap_or(k);
                    let u = unit_random(key, instance, body_slot as u64) as f32;
                    p[k] /= 1.0 + self.mass * (2.0 * u - 1.0);
                }
                ParamSlot::ContactFriction(_) | ParamSlot::WorldContactFriction(_) => {
                    if let Some((lo, hi)) = self.friction {
                        p[k] = lo + (hi - lo) * u;
                    }
                }
                _ => {}
            }
        }
        p
    }

    /// The displacement of instance `instance` at `iteration` (zero without [`Self::shift`]),
    /// drawn like [`Self::apply`] but from its own stream.
    pub fn displacement(&self, seed: u64, instance: u64, iteration: u64) -> [f32; 3] {
        let Some((lo, hi)) = self.shift else {
            return [0.0; 3];
        };
        let key = (seed ^ 0x05EE_D0F5_B1F7) ^ iteration.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        std::array::from_fn(|k| {
            let u = unit_random(key, instance, k as u64) as f32;
            lo[k] + (hi[k] - lo[k]) * u
        })
    }
}

impl Randomization {
    /// Whether [`Self::initial_state`] changes the model's initial state.
    pub fn moves_initial_state(&self) -> bool {
        self.joint_angle.is_some() || self.joint_speed.is_some()
    }

    /// Per joint of `model`, the (coordinate, speed) offsets [`Self::initial_state`] applies
    /// for instance `instance` and draw `key`: counter-based, keyed by (seed, instance, key,
    /// joint), so a resumed run draws the same. Zero for a joint that is neither a hinge nor a
    /// slider, and for a range that is absent.
    pub fn joint_offsets(
        &self,
        model: &Model,
        seed: u64,
        instance: u64,
        key: u64,
    ) -> Vec<[f32; 2]> {
        let key = (seed ^ 0x1A17_57A7_E0F5_0001) ^ key.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        let draw = |range: Option<(f32, f32)>, counter: u64| {
            range.map_or(0.0, |(lo, hi)| {
                lo + (hi - lo) * unit_random(key, instance, counter) as f32
            })
        };
        model
            .joints
            .iter()
            .enumerate()
            .map(|(j, joint)| {
                if !matches!(joint.kind, JointKind::Hinge | JointKind::Slider) {
                    return [0.0; 2];
                }
                let mut angle = draw(self.joint_angle, 2 * j as u64);
                if let Some([lo, hi]) = joint.limits {
                    // Inside the limits (measured from the reference), without a panic on a
                    // malformed range.
                    angle = angle.max(lo - joint.reference).min(hi - joint.reference);
                }
                [angle, draw(self.joint_speed, 2 * j as u64 + 1)]
            })
            .collect()
    }

    /// One instance's initial raw state ([`Compiled`]'s layout): `initial` with every hinge
    /// and slider moved by [`Self::joint_offsets`]. Each joint turns (or slides) its child's
    /// whole subtree about its anchor and axis, the joints farthest from the world first, so
    /// that each is applied in its own initial frame and every joint stays assembled; a joint
    /// speed adds the subtree's rigid velocity about the axis. `initial` itself when neither
    /// range is set.
    pub fn initial_state(
        &self,
        model: &Model,
        initial: &[f32],
        seed: u64,
        instance: u64,
        key: u64,
    ) -> Vec<f32> {
        use crate::engine::layout::BODY_STATE_LEN;
        use crate::engine::twin::math::{Q, V3};
        let mut state = initial.to_vec();
        if !self.moves_initial_state() {
            return state;
        }
        let offsets = self.joint_offsets(model, seed, instance, key);
        let bodies = model.bodies.len();
        // Each body's parent through its first joint (None: attached to the world).
        let mut parent: Vec<Option<usize>> = vec![None; bodies];
        for joint in model.joints.iter().rev() {
            if let Some(child) = model.body_index(&joint.child) {
                parent[child] = joint.parent.as_deref().and_then(|p| model.body_index(p));
            }
        }
        // Depth in the tree, bounded so that a loop ends.
        let depth = |mut b: usize| {
            let mut d = 0;
            while let Some(p) = parent[b]
                && d <= bodies
            {
                b = p;
                d += 1;
            }
            d
        };
        let in_subtree = |mut b: usize, root: usize| {
            for _ in 0..=bodies {
                if b == root {
                    return true;
                }
                match parent[b] {
                    Some(p) => b = p,
                    None => return false,
                }
            }
            false
        };
        let mut order: Vec<(usize, usize, usize)> = model
            .joints
            .iter()
            .enumerate()
            .filter_map(|(j, joint)| {
                let child = model.body_index(&joint.child)?;
                Some((depth(child), j, child))
            })
            .collect();
        // Deepest first; of a body's several joints the last first (the innermost).
        order.sort_unstable_by(|a, b| b.cmp(a));
        let v3 = |s: &[f32], k: usize| {
            V3::new(f64::from(s[k]), f64::from(s[k + 1]), f64::from(s[k + 2]))
        };
        let put = |s: &mut [f32], k: usize, v: V3<f64>| {
            s[k] = v.x as f32;
            s[k + 1] = v.y as f32;
            s[k + 2] = v.z as f32;
        };
        for (_, j, child) in order {
            let joint = &model.joints[j];
            let [angle, speed] = offsets[j];
            if angle == 0.0 && speed == 0.0 {
                continue;
            }
            let axis = V3::new(
                f64::from(joint.axis[0]),
                f64::from(joint.axis[1]),
                f64::from(joint.axis[2]),
            );
            let norm = axis.dot(axis).sqrt();
            if !(norm > 0.0 && norm.is_finite()) {
                continue;
            }
            let axis = axis * (1.0 / norm);
            let anchor = V3::new(
                f64::from(joint.anchor[0]),
                f64::from(joint.anchor[1]),
                f64::from(joint.anchor[2]),
            );
            let hinge = joint.kind == JointKind::Hinge;
            let half = f64::from(angle) / 2.0;
            let turn = Q::new(axis * half.sin(), half.cos());
            for b in (0..bodies).filter(|&b| in_subtree(b, child)) {
                let base = (b + 1) * BODY_STATE_LEN;
                let s = &mut state[base..base + BODY_STATE_LEN];
                let (p, v, w) = (v3(s, 0), v3(s, 7), v3(s, 10));
                let q = Q::new(v3(s, 3), f64::from(s[6]));
                let speed = f64::from(speed);
                if hinge {
                    // The subtree's rigid velocity about the axis, then the turn.
                    let v = v + axis.cross(p - anchor) * speed;
                    let w = w + axis * speed;
                    put(s, 0, anchor + turn.rotate(p - anchor));
                    let q = turn.compose(q).normalize();
                    put(s, 3, q.v);
                    s[6] = q.w as f32;
                    put(s, 7, turn.rotate(v));
                    put(s, 10, turn.rotate(w));
                } else {
                    put(s, 0, p + axis * f64::from(angle));
                    put(s, 7, v + axis * speed);
                }
            }
        }
        state
    }
}

/// When a robot's episode ends early (Gymnasium's "unhealthy" termination): the first step after
/// which the body's height is outside the range. What follows that step earns no reward, its
/// value is not bootstrapped, and the robot is reset at the next window (the actor-critic;
/// `tasks/README.md`, "Termination").
#[derive(Clone, Debug, PartialEq)]
pub struct Termination {
    /// Index of the watched body in the model's body list.
    pub body: usize,
    /// The healthy range `[low, high]` of the body's height z (m); outside it, or not finite,
    /// the robot is terminated.
    pub height: [f32; 2],
    /// The smallest healthy cosine between the body's z axis and the world's up (1 upright, 0
    /// on its side, -1 upside down); below it the robot is terminated. `None`: any tilt.
    pub min_upright: Option<f32>,
}

impl Termination {
    /// Whether a robot whose raw state (one instance, [`Compiled`]'s layout) is `state` has
    /// left the healthy range.
    pub fn terminated(&self, state: &[f32]) -> bool {
        let base = (self.body + 1) * crate::engine::layout::BODY_STATE_LEN;
        let z = state[base + 2];
        let (qx, qy) = (state[base + 3], state[base + 4]);
        // The world z component of the body's z axis, from the unit quaternion [x, y, z, w].
        let upright = 1.0 - 2.0 * (qx * qx + qy * qy);
        // Written as containment so that a NaN is outside.
        let tilted = self.min_upright.is_some_and(|m| !(m..).contains(&upright));
        !(self.height[0]..=self.height[1]).contains(&z) || tilted
    }
}

/// A training task.
#[derive(Clone, Debug)]
pub struct Task {
    /// Name.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// The robot.
    pub model: Model,
    /// The controller.
    pub policy: PolicySpec,
    /// What training minimises (per instance; the batch mean is reported).
    pub loss: Loss,
    /// Steps per episode.
    pub horizon: u32,
    /// Default batch size.
    pub instances: usize,
    /// Default number of iterations.
    pub iterations: u32,
    /// Optimiser.
    pub optimizer: OptimizerConfig,
    /// Per-step gradient decay (the paper's alpha).
    pub gradient_decay: f32,
    /// Truncated backpropagation through time: the state adjoint is cut every this many steps
    /// (`None`: the whole episode; see [`crate::grad::rollout::RolloutOptions::truncation`]).
    pub truncation: Option<u32>,
    /// Physical randomisation of the batch.
    pub randomization: Randomization,
    /// The learning algorithm and its settings.
    pub algorithm: Algorithm,
    /// The early termination of a robot's episode, if the task has one.
    pub termination: Option<Termination>,
}

/// The shipped task files (`tasks/*.toml`): name and text.
pub const BUILTIN: &[(&str, &str)] = &[
    ("quadruped", include_str!("../../tasks/quadruped.toml")),
    ("arm-reach", include_str!("../../tasks/arm-reach.toml")),
    (
        "arm-reach-random",
        include_str!("../../tasks/arm-reach-random.toml"),
    ),
    (
        "cartpole-balance",
        include_str!("../../tasks/cartpole-balance.toml"),
    ),
    (
        "cartpole-swingup",
        include_str!("../../tasks/cartpole-swingup.toml"),
    ),
    (
        "quadruped-run",
        include_str!("../../tasks/quadruped-run.toml"),
    ),
    ("ant-run", include_str!("../../tasks/ant-run.toml")),
];

/// Names of the built-in tasks.
pub fn names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// A built-in task by name, read from its embedded task file.
pub fn builtin(name: &str) -> Result<Task> {
    match BUILTIN.iter().find(|(n, _)| *n == name) {
        Some((_, text)) => {
            let shown = PathBuf::from(format!("tasks/{name}.toml"));
            task_file::parse(text, Some(&shown), &ModelBase::Embedded)
        }
        None => {
            // A model file or a shipped model's name is the most likely mistake: every other
            // command takes one, so say what `train` takes instead.
            let lower = name.to_ascii_lowercase();
            let hint = if lower.ends_with(".xml") {
                " (train takes a task, not a model file: a task file names its model, sensors, \
                 loss and policy; see tasks/README.md)"
            } else if lower.ends_with(".toml")
                || name.contains(std::path::MAIN_SEPARATOR)
                || name.contains('/')
            {
                " (no such task file)"
            } else if crate::io::models::names().contains(&name) {
                " (train takes a task, not a model name)"
            } else {
                ""
            };
            Err(Error::InvalidInput(format!(
                "unknown task '{name}'{hint}: expected a task file (.toml) or one of {}",
                names().join(", ")
            )))
        }
    }
}

/// Reads a task file; the model's relative path is resolved against the file's directory.
pub fn from_file(path: impl AsRef<Path>) -> Result<Task> {
    let path = path.as_ref();
    let text = crate::model::read_model_text(path)?;
    let dir = path.parent().map_or_else(PathBuf::new, Path::to_path_buf);
    task_file::parse(&text, Some(path), &ModelBase::Dir(dir))
}

/// A task argument: a task file if `spec` ends in `.toml` or names an existing file, else a
/// built-in task's name.
pub fn load(spec: &str) -> Result<Task> {
    let path = Path::new(spec);
    let is_toml = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    if (is_toml && path.exists()) || path.is_file() && !spec.to_ascii_lowercase().ends_with(".xml")
    {
        from_file(path)
    } else {
        builtin(spec)
    }
}

/// The world target of `arm-reach-random` (`tasks/arm-reach-random.toml`); each robot is moved
/// by a random vector instead.
pub const ARM_RANDOM_TARGET: [f32; 3] = [0.35, 0.2, 0.75];

/// Initial angular speed (rad/s) of the hanging pole in `cartpole-swingup`
/// (`tasks/cartpole-swingup.toml`). At rest straight down the pole sits on a saddle of every
/// loss that depends on its angle (the gradient of `cos(theta)` vanishes at `theta = 0`), so the
/// episode starts with a small swing.
pub const SWINGUP_NUDGE: f32 = 0.5;

#[cfg(test)]
mod tests {
    use super::*;

    /// A randomised initial state keeps every joint assembled (anchor points, hinge axes and
    /// the anchor's velocity agree between parent and child) and the twin's joint sensors read
    /// back the drawn angle and speed of every hinge, on the quadruped and on the MJCF ant.
    #[test]
    fn randomised_initial_joints_stay_assembled_and_read_back_as_drawn() {
        use crate::engine::layout::BODY_STATE_LEN;
        use crate::engine::twin::Instance;
        use crate::engine::twin::math::{Q, V3};
        use crate::learn::policy::{Activation, PolicyLayout, Sensor, observe_twin};
        let ranges = Randomization {
            joint_angle: Some((-0.3, 0.3)),
            joint_speed: Some((-0.8, 0.8)),
            ..Randomization::default()
        };
        for name in ["quadruped", "ant-run"] {
            let model = builtin(name).unwrap().model;
            let compiled = Compiled::new(&model);
            let initial = &compiled.initial_state;
            assert_eq!(
                &Randomization::default().initial_state(&model, initial, 7, 0, 2),
                initial
            );
            let hinges: Vec<usize> = (0..model.joints.len())
                .filter(|&j| model.joints[j].kind == JointKind::Hinge)
                .collect();
            assert!(hinges.len() >= 8, "{name}");
            let sensors = hinges
                .iter()
                .flat_map(|&j| {
                    let joint = model.joints[j].name.clone();
                    [
                        Sensor::JointAngle {
                            joint: joint.clone(),
                            axis: 0,
                        },
                        Sensor::JointSpeed { joint, axis: 0 },
                    ]
                })
                .collect();
            let spec = PolicySpec {
                sensors,
                hidden: vec![],
                activation: Activation::Tanh,
                skip: false,
            };
            let layout = PolicyLayout::new(&spec, &model).unwrap();
            let read = |state: &[f32]| {
                let mut inst = Instance::<f64>::new(&compiled);
                inst.state = state.iter().map(|&v| f64::from(v)).collect();
                observe_twin(&layout, &inst, 0)
            };
            let at_rest = read(initial);
            // A body's pose and velocities (the world, None, at rest at the origin).
            let body = |s: &[f32], b: Option<usize>| {
                let f = |k: usize| b.map_or(0.0, |b| f64::from(s[(b + 1) * BODY_STATE_LEN + k]));
                let v = |k: usize| V3::new(f(k), f(k + 1), f(k + 2));
                let w = if b.is_some() { f(6) } else { 1.0 };
                (v(0), Q::new(v(3), w), v(7), v(10))
            };
            let mut first_angles = Vec::new();
            for instance in 0..3 {
                let state = ranges.initial_state(&model, initial, 7, instance, 2);
                let offsets = ranges.joint_offsets(&model, 7, instance, 2);
                let reading = read(&state);
                for (k, &j) in hinges.iter().enumerate() {
                    let [angle, speed] = offsets[j];
                    let turned = reading[2 * k] - at_rest[2 * k];
                    assert!(
                        (turned - f64::from(angle)).abs() < 1e-5,
                        "{name}, joint {j}: turned {turned}, drawn {angle}"
                    );
                    let spun = reading[2 * k + 1] - at_rest[2 * k + 1];
                    assert!(
                        (spun - f64::from(speed)).abs() < 1e-5,
                        "{name}, joint {j}: speed {spun}, drawn {speed}"
                    );
                    if instance == 0 {
                        first_angles.push(angle);
                    }
                }
                for joint in &model.joints {
                    let parent = joint.parent.as_deref().and_then(|p| model.body_index(p));
                    let child = model.body_index(&joint.child);
                    let anchor = V3::new(
                        f64::from(joint.anchor[0]),
                        f64::from(joint.anchor[1]),
                        f64::from(joint.anchor[2]),
                    );
                    let axis = V3::new(
                        f64::from(joint.axis[0]),
                        f64::from(joint.axis[1]),
                        f64::from(joint.axis[2]),
                    );
                    // Where the anchor and axis are now, seen from each side: body frame
                    // coordinates at rest, mapped by the body's pose now.
                    let seen = |b: Option<usize>| {
                        let (p0, q0, _, _) = body(initial, b);
                        let (p, q, v, w) = body(&state, b);
                        let arm = q.rotate(q0.conj().rotate(anchor - p0));
                        let point = p + arm;
                        (point, q.rotate(q0.conj().rotate(axis)), v + w.cross(arm))
                    };
                    let (pa, aa, va) = seen(parent);
                    let (pb, ab, vb) = seen(child);
                    let gap = |a: V3<f64>, b: V3<f64>| (a - b).dot(a - b).sqrt();
                    if joint.kind == JointKind::Hinge {
                        assert!(gap(pa, pb) < 1e-5, "{name}, {}: anchors apart", joint.name);
                        assert!(gap(aa, ab) < 1e-5, "{name}, {}: axes apart", joint.name);
                        assert!(gap(va, vb) < 1e-4, "{name}, {}: anchor speeds", joint.name);
                    }
                }
            }
            let second = ranges.joint_offsets(&model, 7, 1, 2);
            assert!(
                hinges
                    .iter()
                    .enumerate()
                    .any(|(k, &j)| second[j][0] != first_angles[k]),
                "{name}: two robots drew the same pose"
            );
        }
    }

    /// The constants other code relies on are what the task files say.
    #[test]
    fn the_shipped_task_files_agree_with_the_public_constants() {
        use crate::grad::loss::Quantity;
        let reach = builtin("arm-reach-random").unwrap();
        assert_eq!(
            reach.loss.terms[0].quantity,
            Quantity::PositionError {
                target: ARM_RANDOM_TARGET,
                mask: [1.0; 3]
            }
        );
        let swingup = builtin("cartpole-swingup").unwrap();
        let pole = swingup.model.body_index("pole").unwrap();
        let cartpole = crate::io::models::builtin("cartpole").unwrap();
        assert_eq!(
            swingup.model.bodies[pole].angular_velocity,
            [0.0, SWINGUP_NUDGE, 0.0]
        );
        // The hinge is 0.5 m above the pole's centre: v = w x r with r = (0, 0, -0.5).
        assert_eq!(
            swingup.model.bodies[pole].linear_velocity,
            [-0.5 * SWINGUP_NUDGE, 0.0, 0.0]
        );
        assert_eq!(cartpole.bodies[pole].angular_velocity, [0.0; 3]);
    }

    /// Ant-v5 pays `0.5 |ctrl|^2` per step on actions `ctrl` that MuJoCo multiplies by the
    /// motors' gear (150); a backdrive command is the torque `gear * ctrl` itself, so
    /// `ant-run`'s control cost must be 0.5 per `ctrl^2`, not per (N m)^2.
    #[test]
    fn ant_run_pays_ant_v5_s_control_cost() {
        use crate::grad::loss::Quantity;
        let task = builtin("ant-run").unwrap();
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/mjcf/gymnasium_ant.xml"
        );
        let options = crate::io::mjcf::MjcfOptions {
            ignore_unsupported: true,
            ..Default::default()
        };
        let gears = crate::io::mjcf::load_mjcf_with(path, &options)
            .unwrap()
            .gears;
        assert_eq!(gears.len(), 8);
        let costs: Vec<f32> = task
            .loss
            .terms
            .iter()
            .filter(|t| t.quantity == Quantity::ControlCost)
            .map(|t| t.weight)
            .collect();
        assert_eq!(costs.len(), 1);
        for gear in gears {
            // The weight on a command u = gear * ctrl, per unit ctrl squared.
            let per_ctrl_squared = f64::from(costs[0]) * f64::from(gear).powi(2);
            assert!(
                (per_ctrl_squared - 0.5).abs() < 1e-5,
                "ant-run pays {per_ctrl_squared} per ctrl^2, Ant-v5 0.5"
            );
        }
    }

    #[test]
    fn a_model_file_or_name_given_as_a_task_says_what_train_takes_and_lists_the_tasks() {
        let root = env!("CARGO_MANIFEST_DIR");
        let cases = [
            (
                format!("{root}/tests/fixtures/mjcf/quadruped.xml"),
                "train takes a task, not a model file",
            ),
            (
                format!("{root}/models/arm.toml"),
                "this looks like a model file",
            ),
            ("ball".to_string(), "train takes a task, not a model name"),
            ("no/such/task.toml".to_string(), "no such task file"),
        ];
        for (spec, expected) in cases {
            let Err(error) = load(&spec) else {
                panic!("'{spec}' is not a task")
            };
            let message = error.to_string();
            assert!(message.contains(expected), "{message}");
        }
        for spec in ["ball", "hopscotch"] {
            let message = load(spec).unwrap_err().to_string();
            for name in names() {
                assert!(message.contains(name), "{name} not listed: {message}");
            }
        }
        let message = builtin("hopscotch").unwrap_err().to_string();
        assert!(!message.contains("not a model"), "{message}");
    }

    #[test]
    fn every_task_builds_a_policy_layout() {
        for name in names() {
            let t = builtin(name).unwrap();
            let l = crate::learn::policy::PolicyLayout::new(&t.policy, &t.model).unwrap();
            assert!(l.n_params > 0, "{name}");
            t.loss.pack(&t.model).unwrap();
        }
        assert!(builtin("nope").is_err());
    }

    #[test]
    fn randomization_is_keyed_and_bounded() {
        let t = builtin("quadruped").unwrap();
        let c = Compiled::new(&t.model);
        let a = t.randomization.apply(&c, 7, 3, 11);
        assert_eq!(a, t.randomization.apply(&c, 7, 3, 11));
        assert_ne!(a, t.randomization.apply(&c, 7, 4, 11));
        for (k, slot) in c.param_slots.iter().enumerate() {
            if let ParamSlot::InverseMass(_) = slot {
                let ratio = a[k] / c.default_params[k];
                assert!((1.0 / 1.1..=1.0 / 0.9).contains(&ratio), "{ratio}");
            }
        }
    }

    #[test]
    fn displacement_is_keyed_bounded_and_zero_without_shift() {
        let t = builtin("arm-reach-random").unwrap();
        let (lo, hi) = t.randomization.shift.unwrap();
        let mut seen = Vec::new();
        for i in 0..64 {
            let d = t.randomization.displacement(1, i, 5);
            assert_eq!(d, t.randomization.displacement(1, i, 5));
            for k in 0..3 {
                assert!(d[k] >= lo[k] && d[k] <= hi[k], "{d:?}");
            }
            seen.push(d);
        }
        assert_ne!(seen[0], seen[1]);
        assert_ne!(seen[0], t.randomization.displacement(1, 0, 6));
        assert_eq!(
            builtin("quadruped")
                .unwrap()
                .randomization
                .displacement(1, 3, 4),
            [0.0; 3]
        );
    }
}
