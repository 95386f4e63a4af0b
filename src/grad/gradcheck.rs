//! Checking adjoint gradients against central finite differences on the same device.
//!
//! Every perturbed input gets two instances of one batch (plus one nominal instance that also
//! gives the adjoint gradient), so that a whole check is one forward pass.

use std::sync::Arc;

use crate::engine::gpu::Gpu;
use crate::engine::layout::{BODY_STATE_LEN, Compiled, ParamSlot};
use crate::engine::twin::Instance;
use crate::error::{Error, Result};
use crate::grad::loss::{Loss, loss_twin};
use crate::grad::rollout::{Rollout, RolloutOptions};
use crate::model::Model;

/// Which inputs a parameter group covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// Initial linear and angular velocities of every body.
    InitialVelocities,
    /// Initial positions of every body.
    InitialPositions,
    /// Every step's actuator commands.
    Commands,
    /// Physical parameters: inverse masses and inertias, friction, restitution, actuator
    /// gains and limits, joint anchors.
    Params,
}

impl Group {
    /// Name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Group::InitialVelocities => "initial velocities",
            Group::InitialPositions => "initial positions",
            Group::Commands => "commands",
            Group::Params => "parameters",
        }
    }
}

/// Comparison of one group.
#[derive(Clone, Debug)]
pub struct GroupReport {
    /// The group.
    pub group: Group,
    /// Adjoint gradient of the checked inputs.
    pub adjoint: Vec<f64>,
    /// Central finite differences of the same inputs.
    pub finite_difference: Vec<f64>,
}

impl GroupReport {
    /// `|adjoint - fd| / |fd|` (norms over the group).
    pub fn relative_error(&self) -> f64 {
        let diff = self
            .adjoint
            .iter()
            .zip(&self.finite_difference)
            .map(|(a, f)| (a - f).powi(2))
            .sum::<f64>()
            .sqrt();
        diff / norm(&self.finite_difference).max(1e-12)
    }

    /// Cosine similarity of the two gradients.
    pub fn cosine(&self) -> f64 {
        let dot: f64 = self
            .adjoint
            .iter()
            .zip(&self.finite_difference)
            .map(|(a, f)| a * f)
            .sum();
        dot / (norm(&self.adjoint) * norm(&self.finite_difference)).max(1e-300)
    }
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// What to check.
#[derive(Clone, Debug)]
pub struct GradcheckSetup {
    /// Rollout options (horizon, checkpoints...).
    pub options: RolloutOptions,
    /// The loss.
    pub loss: Loss,
    /// Initial raw state of the nominal instance (`None`: the model's).
    pub initial_state: Option<Vec<f32>>,
    /// Command sequence of the nominal instance (`horizon * actuators`; `None`: zeros).
    pub commands: Option<Vec<f32>>,
    /// Relative step of the central differences.
    pub relative_step: f32,
    /// Most inputs perturbed per group (at least 1): a group with more inputs is checked on
    /// an evenly spaced subset of them.
    pub max_inputs: usize,
}

enum Target {
    State(usize),
    Param(usize),
    Command(usize),
}

fn evenly(candidates: Vec<usize>, max: usize) -> Vec<usize> {
    if candidates.len() <= max {
        return candidates;
    }
    (0..max)
        .map(|k| candidates[k * candidates.len() / max])
        .collect()
}

struct Inputs {
    state: Vec<f32>,
    params: Vec<f32>,
    commands: Vec<f32>,
    targets: Vec<(Group, Vec<Target>)>,
}

fn inputs(
    compiled: &Compiled,
    model: &Model,
    setup: &GradcheckSetup,
    groups: &[Group],
) -> Result<Inputs> {
    let h = &compiled.header;
    let state_len = h.state_len as usize;
    let n_bodies = model.bodies.len();
    let command_len = setup.options.horizon as usize * h.n_commands as usize;
    let state = setup
        .initial_state
        .clone()
        .unwrap_or_else(|| compiled.initial_state.clone());
    let commands = setup
        .commands
        .clone()
        .unwrap_or_else(|| vec![0.0; command_len]);
    if state.len() != state_len || commands.len() != command_len {
        return Err(Error::InvalidInput(format!(
            "gradcheck: expected {state_len} state values and {command_len} commands"
        )));
    }
    if setup.max_inputs == 0 {
        return Err(Error::InvalidInput(
            "gradcheck: max_inputs must be at least 1 (0 would check nothing)".into(),
        ));
    }
    if !(setup.relative_step.is_finite() && setup.relative_step > 0.0) {
        return Err(Error::InvalidInput(format!(
            "gradcheck: the relative step must be a positive finite number, found {}",
            setup.relative_step
        )));
    }
    let mut targets: Vec<(Group, Vec<Target>)> = Vec::new();
    for &group in groups {
        let list: Vec<Target> = match group {
            Group::InitialVelocities => evenly(
                (1..=n_bodies)
                    .flat_map(|b| (7..13).map(move |k| b * BODY_STATE_LEN + k))
                    .collect(),
                setup.max_inputs,
            )
            .into_iter()
            .map(Target::State)
            .collect(),
            Group::InitialPositions => evenly(
                (1..=n_bodies)
                    .flat_map(|b| (0..3).map(move |k| b * BODY_STATE_LEN + k))
                    .collect(),
                setup.max_inputs,
            )
            .into_iter()
            .map(Target::State)
            .collect(),
            Group::Commands => evenly((0..command_len).collect(), setup.max_inputs)
                .into_iter()
                .map(Target::Command)
                .collect(),
            Group::Params => evenly(
                compiled
                    .param_slots
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| **s != ParamSlot::World)
                    .map(|(k, _)| k)
                    .collect(),
                setup.max_inputs,
            )
            .into_iter()
            .map(Target::Param)
            .collect(),
        };
        targets.push((group, list));
    }
    Ok(Inputs {
        state,
        params: compiled.default_params.clone(),
        commands,
        targets,
    })
}

impl Inputs {
    fn value(&self, target: &Target) -> f32 {
        match target {
            Target::State(k) => self.state[*k],
            Target::Param(k) => self.params[*k],
            Target::Command(k) => self.commands[*k],
        }
    }

    /// A copy of the inputs with `target` moved by `delta`.
    fn perturbed(&self, target: &Target, delta: f32) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (mut s, mut p, mut c) = (
            self.state.clone(),
            self.params.clone(),
            self.commands.clone(),
        );
        match target {
            Target::State(k) => s[*k] += delta,
            Target::Param(k) => p[*k] += delta,
            Target::Command(k) => c[*k] += delta,
        }
        (s, p, c)
    }
}

/// One batch that holds the nominal inputs (instance 0) and, for every checked input, a pair
/// of instances moved by `+h` and `-h`: one forward pass gives every central difference, and
/// a backward pass of the same batch gives the adjoint. Used by [`gradcheck`] and by the
/// finite-difference timings of [`crate::grad::measure`].
pub struct PerturbedBatch {
    rollout: Rollout,
    inputs: Inputs,
    steps: Vec<f32>,
}

impl PerturbedBatch {
    /// Builds the batch for `groups` (uploads the inputs; runs nothing).
    pub fn new(
        gpu: Arc<Gpu>,
        model: &Model,
        setup: &GradcheckSetup,
        groups: &[Group],
    ) -> Result<PerturbedBatch> {
        PerturbedBatch::with_compiled(gpu, model, Arc::new(Compiled::new(model)), setup, groups)
    }

    /// [`PerturbedBatch::new`] over a layout already compiled from `model`, so that a run
    /// that checks several times compiles its model once.
    pub fn with_compiled(
        gpu: Arc<Gpu>,
        model: &Model,
        compiled: Arc<Compiled>,
        setup: &GradcheckSetup,
        groups: &[Group],
    ) -> Result<PerturbedBatch> {
        let inp = inputs(&compiled, model, setup, groups)?;
        let n_inputs: usize = inp.targets.iter().map(|(_, l)| l.len()).sum();
        let n = 1 + 2 * n_inputs;
        let mut states = Vec::with_capacity(n * inp.state.len());
        let mut params = Vec::with_capacity(n * inp.params.len());
        let mut commands = Vec::with_capacity(n * inp.commands.len());
        let mut steps = Vec::with_capacity(n_inputs);
        states.extend_from_slice(&inp.state);
        params.extend_from_slice(&inp.params);
        commands.extend_from_slice(&inp.commands);
        for (_, list) in &inp.targets {
            for target in list {
                let step = setup.relative_step * inp.value(target).abs().max(1.0);
                steps.push(step);
                for sign in [1.0f32, -1.0] {
                    let (s, p, c) = inp.perturbed(target, sign * step);
                    states.extend_from_slice(&s);
                    params.extend_from_slice(&p);
                    commands.extend_from_slice(&c);
                }
            }
        }
        let mut options = setup.options.clone();
        options.command_gradients = groups.contains(&Group::Commands);
        options.param_gradients = groups.contains(&Group::Params);
        let mut rollout = Rollout::with_compiled(gpu, model, compiled, n, &setup.loss, options)?;
        rollout.set_initial_state(&states)?;
        rollout.set_params(&params)?;
        rollout.set_commands(&commands)?;
        Ok(PerturbedBatch {
            rollout,
            inputs: inp,
            steps,
        })
    }

    /// Instances in the batch: 1 + 2 per checked input.
    pub fn n_instances(&self) -> usize {
        self.rollout.n_instances()
    }

    /// Central differences of every checked input from per-instance losses, per group.
    fn differences(&self, loss: &[f32]) -> Vec<Vec<f64>> {
        let mut input = 0;
        let mut out = Vec::new();
        for (_, list) in &self.inputs.targets {
            let mut fd = Vec::with_capacity(list.len());
            for _ in list {
                let plus = f64::from(loss[1 + 2 * input]);
                let minus = f64::from(loss[2 + 2 * input]);
                fd.push((plus - minus) / (2.0 * f64::from(self.steps[input])));
                input += 1;
            }
            out.push(fd);
        }
        out
    }

    /// A forward pass of the batch: the central differences of every checked input, per group
    /// in the order they were asked for.
    pub fn finite_differences(&mut self) -> Result<Vec<Vec<f64>>> {
        let loss = self.rollout.forward()?;
        Ok(self.differences(&loss))
    }

    /// The entries of `grads` (gradients whose instance 0 has the nominal inputs, from this
    /// batch or from a rollout of the nominal robot alone) at the checked inputs, per group.
    pub fn adjoint_entries(&self, grads: &crate::grad::rollout::Gradients) -> Vec<Vec<f64>> {
        self.inputs
            .targets
            .iter()
            .map(|(_, list)| list.iter().map(|t| adjoint_of(grads, t)).collect())
            .collect()
    }

    /// A forward and a backward pass: adjoint and central differences, one report per group.
    pub fn check(&mut self) -> Result<Vec<GroupReport>> {
        self.rollout.forward()?;
        let grads = self.rollout.backward()?;
        let fd = self.differences(&grads.loss);
        let adjoint = self.adjoint_entries(&grads);
        Ok(self
            .inputs
            .targets
            .iter()
            .zip(fd.into_iter().zip(adjoint))
            .map(|((group, _), (finite_difference, adjoint))| GroupReport {
                group: *group,
                adjoint,
                finite_difference,
            })
            .collect())
    }
}

/// Runs the check for `groups` on the GPU: adjoint gradient and central differences from the
/// same device, in f32. Returns one report per group.
pub fn gradcheck(
    gpu: Arc<Gpu>,
    model: &Model,
    setup: &GradcheckSetup,
    groups: &[Group],
) -> Result<Vec<GroupReport>> {
    PerturbedBatch::new(gpu, model, setup, groups)?.check()
}

/// [`gradcheck`] over a layout already compiled from `model`.
pub fn gradcheck_with_compiled(
    gpu: Arc<Gpu>,
    model: &Model,
    compiled: Arc<Compiled>,
    setup: &GradcheckSetup,
    groups: &[Group],
) -> Result<Vec<GroupReport>> {
    PerturbedBatch::with_compiled(gpu, model, compiled, setup, groups)?.check()
}

fn adjoint_of(grads: &crate::grad::rollout::Gradients, target: &Target) -> f64 {
    f64::from(match target {
        Target::State(k) => grads.initial_state[*k],
        Target::Param(k) => grads.params[*k],
        Target::Command(k) => grads.commands.as_ref().map(|c| c[*k]).unwrap_or(0.0),
    })
}

/// The loss of one rollout computed by the CPU twins in f64.
pub fn twin_loss(
    compiled: &Compiled,
    packed_loss: &[u32],
    n_terms: usize,
    horizon: u32,
    state: &[f32],
    params: &[f32],
    commands: &[f32],
) -> f64 {
    let mut inst = Instance::<f64>::new(compiled);
    let conv = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
    inst.state = conv(state);
    inst.params = conv(params);
    let a = compiled.header.n_commands as usize;
    let mut total = 0.0;
    for t in 0..horizon {
        let at = t as usize * a;
        inst.commands = conv(&commands[at..at + a]);
        inst.step();
        total += loss_twin(packed_loss, n_terms, &inst, t + 1, horizon, None);
    }
    total
}

/// The GPU adjoint against central differences of the f64 CPU twin (step `h` relative): the
/// reference for tests, free of f32 rounding in the differences.
pub fn gradcheck_against_twin(
    gpu: Arc<Gpu>,
    model: &Model,
    setup: &GradcheckSetup,
    groups: &[Group],
    h: f32,
) -> Result<Vec<GroupReport>> {
    let compiled = Arc::new(Compiled::new(model));
    gradcheck_against_twin_with_compiled(gpu, model, compiled, setup, groups, h)
}

/// [`gradcheck_against_twin`] over a layout already compiled from `model`.
pub fn gradcheck_against_twin_with_compiled(
    gpu: Arc<Gpu>,
    model: &Model,
    compiled: Arc<Compiled>,
    setup: &GradcheckSetup,
    groups: &[Group],
    h: f32,
) -> Result<Vec<GroupReport>> {
    let inp = inputs(&compiled, model, setup, groups)?;
    let packed = setup.loss.pack(model)?;
    let n_terms = setup.loss.terms.len();
    let mut options = setup.options.clone();
    options.command_gradients = groups.contains(&Group::Commands);
    options.param_gradients = groups.contains(&Group::Params);
    let mut rollout =
        Rollout::with_compiled(gpu, model, compiled.clone(), 1, &setup.loss, options)?;
    rollout.set_initial_state(&inp.state)?;
    rollout.set_params(&inp.params)?;
    rollout.set_commands(&inp.commands)?;
    rollout.forward()?;
    let grads = rollout.backward()?;
    let horizon = setup.options.horizon;
    let mut reports = Vec::new();
    for (group, list) in &inp.targets {
        let mut adjoint = Vec::new();
        let mut fd = Vec::new();
        for target in list {
            let step = h * inp.value(target).abs().max(1.0);
            let eval = |sign: f32| {
                let (s, p, c) = inp.perturbed(target, sign * step);
                twin_loss(&compiled, &packed, n_terms, horizon, &s, &p, &c)
            };
            // The perturbed input is rounded to f32; divide by the step actually taken.
            let taken = f64::from(inp.value(target) + step) - f64::from(inp.value(target) - step);
            fd.push((eval(1.0) - eval(-1.0)) / taken);
            adjoint.push(adjoint_of(&grads, target));
        }
        reports.push(GroupReport {
            group: *group,
            adjoint,
            finite_difference: fd,
        });
    }
    Ok(reports)
}

/// The whole-rollout gradient computed by the f64 CPU twins alone (states stored, adjoint
/// composed step by step in reverse): dL/d(initial state), dL/d(params), dL/d(commands).
pub fn twin_rollout_gradient(
    compiled: &Compiled,
    packed_loss: &[u32],
    n_terms: usize,
    horizon: u32,
    state: &[f32],
    params: &[f32],
    commands: &[f32],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let conv = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
    let a = compiled.header.n_commands as usize;
    let mut inst = Instance::<f64>::new(compiled);
    inst.state = conv(state);
    inst.params = conv(params);
    let mut states = vec![inst.state.clone()];
    for t in 0..horizon as usize {
        inst.commands = conv(&commands[t * a..(t + 1) * a]);
        inst.step();
        states.push(inst.state.clone());
    }
    let mut adj = crate::engine::twin::Adjoint::<f64>::new(compiled);
    let mut command_grads = vec![0.0; commands.len()];
    for t in (0..horizon as usize).rev() {
        inst.state = states[t + 1].clone();
        inst.commands = conv(&commands[t * a..(t + 1) * a]);
        loss_twin(
            packed_loss,
            n_terms,
            &inst,
            t as u32 + 1,
            horizon,
            Some(&mut adj),
        );
        inst.state = states[t].clone();
        inst.commands = conv(&commands[t * a..(t + 1) * a]);
        adj.commands.fill(0.0);
        inst.step_adjoint(&mut adj);
        crate::engine::twin::loss::loss_command_adjoint_twin(
            packed_loss,
            n_terms,
            &inst,
            t as u32 + 1,
            horizon,
            &mut adj,
        );
        command_grads[t * a..(t + 1) * a].copy_from_slice(&adj.commands);
    }
    (adj.state, adj.params, command_grads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grad::loss::{Quantity, When};

    #[test]
    fn twin_rollout_gradient_matches_twin_finite_differences() {
        let model = crate::io::models::builtin("cartpole").unwrap();
        let c = Compiled::new(&model);
        let horizon = 50;
        let loss = Loss::new()
            .term(
                "pole",
                Quantity::PositionError {
                    target: [0.2, 0.0, 1.2],
                    mask: [1.0; 3],
                },
                0.1,
                When::EveryStep,
            )
            .term(
                "cart",
                Quantity::Velocity {
                    direction: [1.0, 0.0, 0.0],
                },
                1.0,
                When::Final,
            );
        let packed = loss.pack(&model).unwrap();
        let n = loss.terms.len();
        let commands: Vec<f32> = (0..horizon).map(|t| 4.0 * (t as f32 * 0.2).sin()).collect();
        let state = c.initial_state.clone();
        let params = c.default_params.clone();
        let (gs, gp, gc) =
            twin_rollout_gradient(&c, &packed, n, horizon, &state, &params, &commands);
        let fd = |which: usize, k: usize| {
            let h = 1e-4f32;
            let eval = |sign: f32| {
                let (mut s, mut p, mut u) = (state.clone(), params.clone(), commands.clone());
                [&mut s, &mut p, &mut u][which][k] += sign * h;
                twin_loss(&c, &packed, n, horizon, &s, &p, &u)
            };
            (eval(1.0) - eval(-1.0)) / (2.0 * f64::from(h))
        };
        for (which, k, g) in [
            (0, 20, gs[20]),
            (0, 36, gs[36]),
            (1, 4, gp[4]),
            (2, 10, gc[10]),
        ] {
            let f = fd(which, k);
            assert!(
                (g - f).abs() < 1e-4 * (1.0 + f.abs()),
                "input {which}/{k}: {g} vs {f}"
            );
        }
    }
}

#[cfg(test)]
mod input_tests {
    use super::*;

    fn setup(max_inputs: usize, relative_step: f32) -> GradcheckSetup {
        GradcheckSetup {
            options: RolloutOptions::new(5),
            loss: crate::grad::loss::Loss::new(),
            initial_state: None,
            commands: None,
            relative_step,
            max_inputs,
        }
    }

    const ALL: [Group; 4] = [
        Group::InitialVelocities,
        Group::InitialPositions,
        Group::Params,
        Group::Commands,
    ];

    #[test]
    fn max_inputs_limits_every_group() {
        let model = crate::io::models::builtin("quadruped").unwrap();
        let compiled = Compiled::new(&model);
        let all = inputs(&compiled, &model, &setup(usize::MAX, 1e-3), &ALL).unwrap();
        let few = inputs(&compiled, &model, &setup(3, 1e-3), &ALL).unwrap();
        for ((group, every), (_, some)) in all.targets.iter().zip(&few.targets) {
            assert!(every.len() > 3, "{group:?} has only {} inputs", every.len());
            assert_eq!(some.len(), 3, "{group:?}");
        }
    }

    #[test]
    fn nonsense_settings_are_refused() {
        let model = crate::io::models::builtin("ball").unwrap();
        let compiled = Compiled::new(&model);
        for (max_inputs, step) in [(0, 1e-3), (4, 0.0), (4, f32::NAN), (4, -1e-3)] {
            let r = inputs(&compiled, &model, &setup(max_inputs, step), &ALL);
            assert!(
                matches!(r, Err(Error::InvalidInput(_))),
                "max_inputs {max_inputs}, step {step} accepted"
            );
        }
    }
}
