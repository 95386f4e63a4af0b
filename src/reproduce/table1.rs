//! The reference paper's Table 1, reproduced: seconds to simulate 10 s (1000 steps of 0.01 s)
//! of the quadruped with a neural controller in the loop, for 1 and 128 robots, with and
//! without the gradient of the distance travelled with respect to every controller parameter,
//! for a 1,296- and a 1,147,904-parameter controller.
//!
//! The paper's controllers have 81 inputs and 16 outputs without biases: 1,296 = 81 x 16 (a
//! linear map) and 1,147,904 = 1024 x (81 + 1024 + 16) (81-1024-1024-16). Our quadruped has 8
//! servos and our dense layers always carry biases, so we keep the parameter counts exact and
//! change the shapes: 47 sensor values (8 joint angles, 8 joint speeds, the torso's position,
//! velocity, orientation and angular velocity, the 1.5 Hz clock, the 4 shins' positions and 4
//! contact flags), then `47-23-8` ReLU (47 x 23 + 23 + 23 x 8 + 8 = 1,296) and
//! `47-975-1119-8` ReLU (47 x 975 + 975 + 975 x 1119 + 1119 + 1119 x 8 + 8 = 1,147,904). The
//! large network costs within 1% of the paper's multiply-adds per step.
//!
//! "With gradient" is one forward pass with checkpoints plus the adjoint pass (which
//! recomputes each segment); "without" is the forward pass alone. Timings exclude the creation
//! of buffers and pipelines (an untimed two-step warm-up compiles them). In quick mode the
//! horizon is [`QUICK_STEPS`] steps and the seconds are extrapolated linearly to 1000 steps;
//! the report says so.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::engine::gpu::Gpu;
use crate::error::Result;
use crate::grad::loss::{Loss, Quantity, When};
use crate::grad::rollout::{Rollout, RolloutOptions};
use crate::learn::policy::gpu::PolicyKernels;
use crate::learn::policy::{Activation, PolicyLayout, PolicySpec, Sensor};
use crate::model::Model;

/// Steps of the paper's measurement (10 s at 0.01 s).
pub const PAPER_STEPS: u32 = 1000;
/// Steps measured in quick mode (then extrapolated to [`PAPER_STEPS`]).
pub const QUICK_STEPS: u32 = 16;

/// The paper's seconds for (robots, parameters): CPU grad, GPU grad, CPU no grad, GPU no grad.
const PAPER: [(usize, usize, [f64; 4]); 4] = [
    (1, 1_296, [8.17, 69.6, 1.06, 9.69]),
    (1, 1_147_904, [13.2, 75.0, 2.04, 9.69]),
    (128, 1_296, [263.0, 128.0, 47.7, 17.8]),
    (128, 1_147_904, [311.0, 129.0, 50.4, 18.3]),
];

/// One controller of the table.
#[derive(Clone, Debug, Serialize)]
pub struct Controller {
    /// Parameters (exactly the paper's count).
    pub params: usize,
    /// Observation size.
    pub inputs: usize,
    /// Hidden widths.
    pub hidden: Vec<usize>,
    /// Outputs (the servos).
    pub outputs: usize,
}

/// One cell of the table.
#[derive(Clone, Debug, Serialize)]
pub struct Table1Cell {
    /// Robots simulated at once.
    pub robots: usize,
    /// Controller parameters.
    pub params: usize,
    /// Whether the gradient was computed (forward with checkpoints plus backward).
    pub gradient: bool,
    /// Steps actually simulated.
    pub measured_steps: u32,
    /// Seconds of the measured steps (forward plus backward with gradient).
    pub measured_seconds: f64,
    /// Of which the forward pass.
    pub forward_seconds: f64,
    /// Of which the backward pass (0 without gradient).
    pub backward_seconds: f64,
    /// Seconds for 1000 steps (measured, or extrapolated linearly in quick mode).
    pub seconds: f64,
    /// Whether `seconds` is extrapolated from a shorter horizon.
    pub extrapolated: bool,
    /// The paper's seconds on the CPU (i7-5930K).
    pub paper_cpu: f64,
    /// The paper's seconds on the GPU (GTX 1080).
    pub paper_gpu: f64,
}

impl Table1Cell {
    /// The paper's best (smallest) time for this cell.
    pub fn paper_best(&self) -> f64 {
        self.paper_cpu.min(self.paper_gpu)
    }
}

/// The reproduced table.
#[derive(Clone, Debug, Serialize)]
pub struct Table1Report {
    /// The adapter that ran it.
    pub adapter: String,
    /// Quick mode (short horizon, extrapolated).
    pub quick: bool,
    /// Steps measured per cell.
    pub measured_steps: u32,
    /// Steps reported (1000).
    pub reported_steps: u32,
    /// The two controllers.
    pub controllers: Vec<Controller>,
    /// Eight cells: robots (1, 128) x params (small, large) x (gradient, none).
    pub cells: Vec<Table1Cell>,
}

/// The 47 sensor values shared by both controllers (see the module docs).
pub fn sensors(model: &Model) -> Vec<Sensor> {
    let mut s: Vec<Sensor> = Vec::new();
    for a in &model.actuators {
        s.push(Sensor::JointAngle {
            joint: a.joint.clone(),
            axis: 0,
        });
    }
    for a in &model.actuators {
        s.push(Sensor::JointSpeed {
            joint: a.joint.clone(),
            axis: 0,
        });
    }
    let torso = "torso".to_string();
    s.extend([
        Sensor::BodyPosition {
            body: torso.clone(),
        },
        Sensor::BodyVelocity {
            body: torso.clone(),
        },
        Sensor::BodyOrientation {
            body: torso.clone(),
        },
        Sensor::BodyAngularVelocity { body: torso },
        Sensor::Clock { frequency: 1.5 },
    ]);
    for b in &model.bodies {
        if b.name.ends_with("shin") {
            s.push(Sensor::BodyPosition {
                body: b.name.clone(),
            });
        }
    }
    for point in 0..4 {
        s.push(Sensor::ContactFlag {
            point,
            threshold: 0.01,
        });
    }
    s
}

/// The policy spec of the 1,296-parameter (`large == false`) or 1,147,904-parameter
/// controller for the shipped quadruped.
pub fn policy_spec(model: &Model, large: bool) -> PolicySpec {
    PolicySpec {
        sensors: sensors(model),
        hidden: if large { vec![975, 1119] } else { vec![23] },
        activation: Activation::Relu,
        skip: false,
    }
}

/// The loss: distance travelled by the torso along x (its final x coordinate).
fn distance_loss() -> Loss {
    Loss::new().term(
        "torso",
        Quantity::Position {
            direction: [1.0, 0.0, 0.0],
        },
        1.0,
        When::Final,
    )
}

fn rollout_with_policy(
    gpu: &Arc<Gpu>,
    model: &Model,
    layout: &PolicyLayout,
    robots: usize,
    steps: u32,
    gradient: bool,
) -> Result<Rollout> {
    let mut options = RolloutOptions::new(steps);
    options.command_gradients = false;
    if !gradient {
        // No checkpoints beyond the initial state: one submission for the whole horizon.
        options.checkpoint_every = Some(steps);
    }
    let mut rollout = Rollout::new(gpu.clone(), model, robots, &distance_loss(), options)?;
    let kernels = PolicyKernels::new(gpu, layout, &rollout, &layout.init_params(1))?;
    rollout.set_hook(Box::new(kernels));
    Ok(rollout)
}

/// Runs the eight cells. `progress` receives a line of text before each measurement.
pub fn run(gpu: Arc<Gpu>, quick: bool, progress: &mut dyn FnMut(&str)) -> Result<Table1Report> {
    run_with_steps(gpu, if quick { QUICK_STEPS } else { PAPER_STEPS }, progress)
}

/// [`run`] with an explicit measured horizon (`steps < 1000` extrapolates linearly).
pub fn run_with_steps(
    gpu: Arc<Gpu>,
    steps: u32,
    progress: &mut dyn FnMut(&str),
) -> Result<Table1Report> {
    let steps = steps.max(1);
    let model = crate::io::models::builtin("quadruped")?;
    let mut controllers = Vec::new();
    let mut cells = Vec::new();
    for large in [false, true] {
        let layout = PolicyLayout::new(&policy_spec(&model, large), &model)?;
        controllers.push(Controller {
            params: layout.n_params,
            inputs: layout.n_obs,
            hidden: layout.spec.hidden.clone(),
            outputs: layout.n_out,
        });
        // Untimed warm-up: compiles every pipeline this controller uses.
        progress(&format!(
            "warm-up, {}-parameter controller",
            layout.n_params
        ));
        let mut warm = rollout_with_policy(&gpu, &model, &layout, 1, 2, true)?;
        warm.forward()?;
        warm.backward()?;
        drop(warm);
        for robots in [1usize, 128] {
            for gradient in [true, false] {
                progress(&format!(
                    "{robots} robot(s), {} parameters, {}, {steps} steps",
                    layout.n_params,
                    if gradient {
                        "with gradient"
                    } else {
                        "no gradient"
                    }
                ));
                let mut rollout =
                    rollout_with_policy(&gpu, &model, &layout, robots, steps, gradient)?;
                let t0 = Instant::now();
                rollout.forward()?;
                let forward = t0.elapsed().as_secs_f64();
                let backward = if gradient {
                    let t1 = Instant::now();
                    rollout.backward()?;
                    t1.elapsed().as_secs_f64()
                } else {
                    0.0
                };
                let measured = forward + backward;
                let paper = PAPER
                    .iter()
                    .find(|(r, p, _)| *r == robots && *p == layout.n_params)
                    .map(|(_, _, v)| *v)
                    .unwrap_or([f64::NAN; 4]);
                let (paper_cpu, paper_gpu) = if gradient {
                    (paper[0], paper[1])
                } else {
                    (paper[2], paper[3])
                };
                cells.push(Table1Cell {
                    robots,
                    params: layout.n_params,
                    gradient,
                    measured_steps: steps,
                    measured_seconds: measured,
                    forward_seconds: forward,
                    backward_seconds: backward,
                    seconds: measured * f64::from(PAPER_STEPS) / f64::from(steps),
                    extrapolated: steps != PAPER_STEPS,
                    paper_cpu,
                    paper_gpu,
                });
            }
        }
    }
    Ok(Table1Report {
        adapter: gpu.describe(),
        quick: steps != PAPER_STEPS,
        measured_steps: steps,
        reported_steps: PAPER_STEPS,
        controllers,
        cells,
    })
}

impl Table1Report {
    /// The cell for (robots, params, gradient).
    pub fn cell(&self, robots: usize, params: usize, gradient: bool) -> Option<&Table1Cell> {
        self.cells
            .iter()
            .find(|c| c.robots == robots && c.params == params && c.gradient == gradient)
    }

    /// The table as Markdown, ours beside the paper's, with a note on how it was measured.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "Table 1: seconds to simulate 10 s ({} steps) of the quadruped; adapter: {}\n\n",
            self.reported_steps, self.adapter
        ));
        s.push_str(
            "| robots, controller params | ours, grad | paper CPU, grad | paper GPU, grad | \
             ours, no grad | paper CPU, no grad | paper GPU, no grad |\n",
        );
        s.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
        for robots in [1usize, 128] {
            for c in &self.controllers {
                let g = self.cell(robots, c.params, true);
                let n = self.cell(robots, c.params, false);
                let ours = |x: Option<&Table1Cell>| {
                    x.map(|x| format!("{:.3}", x.seconds))
                        .unwrap_or_else(|| "-".into())
                };
                let paper = |x: Option<&Table1Cell>, cpu: bool| {
                    x.map(|x| format!("{}", if cpu { x.paper_cpu } else { x.paper_gpu }))
                        .unwrap_or_else(|| "-".into())
                };
                s.push_str(&format!(
                    "| {} robot{}, {} | {} | {} | {} | {} | {} | {} |\n",
                    robots,
                    if robots == 1 { "" } else { "s" },
                    group_digits(c.params),
                    ours(g),
                    paper(g, true),
                    paper(g, false),
                    ours(n),
                    paper(n, true),
                    paper(n, false),
                ));
            }
        }
        s.push('\n');
        for c in &self.controllers {
            let shape: Vec<String> = std::iter::once(c.inputs)
                .chain(c.hidden.iter().copied())
                .chain(std::iter::once(c.outputs))
                .map(|w| w.to_string())
                .collect();
            s.push_str(&format!(
                "- controller {}: {} ReLU MLP with biases (paper: 81 inputs, 16 outputs, no \
                 biases)\n",
                group_digits(c.params),
                shape.join("-")
            ));
        }
        if self.quick {
            s.push_str(&format!(
                "- QUICK: measured {} steps per cell and extrapolated linearly to {} steps \
                 (x{:.1}); run without --quick for the full measurement\n",
                self.measured_steps,
                self.reported_steps,
                f64::from(self.reported_steps) / f64::from(self.measured_steps)
            ));
        }
        s.push_str(
            "- with gradient: forward with the rollout's default checkpoints (every state when \
             the batch's trajectory fits in 64 MiB, otherwise every ceil(sqrt(T)) steps) plus \
             the adjoint pass; setup and shader compilation excluded\n",
        );
        let faster = self
            .cells
            .iter()
            .filter(|c| c.seconds < c.paper_best())
            .count();
        s.push_str(&format!(
            "- cells faster than the paper's best (CPU or GPU) time: {faster} of {}\n",
            self.cells.len()
        ));
        s
    }
}

fn group_digits(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_have_the_papers_parameter_counts() {
        let model = crate::io::models::builtin("quadruped").unwrap();
        let small = PolicyLayout::new(&policy_spec(&model, false), &model).unwrap();
        let large = PolicyLayout::new(&policy_spec(&model, true), &model).unwrap();
        assert_eq!(small.n_obs, 47);
        assert_eq!(small.n_params, 1_296);
        assert_eq!(large.n_params, 1_147_904);
        assert_eq!(group_digits(1_147_904), "1,147,904");
    }
}
