//! Neural controllers inside the simulation: observations assembled from named sensors, an MLP
//! (ReLU or tanh, optional skip connection from input to output, output layer initialised to
//! zero), and its commands fed to the actuators at every step.
//!
//! The GPU kernels are in `shaders/policy.wgsl` ([`gpu::PolicyKernels`] runs them around each
//! step of a [`crate::grad::rollout::Rollout`]); [`PolicyLayout::forward`] and
//! [`PolicyLayout::backward`] are their CPU twins.

pub mod gpu;

use serde::{Deserialize, Serialize};

pub use crate::engine::twin::policy::observe_twin;
use crate::error::{Error, Result};
pub use crate::learn::random::unit_random;
use crate::model::Model;

/// Words per packed sensor record: kind, index, axis, output offset, then four floats.
/// Emitted into the WGSL prelude as `SENSOR_LEN`.
pub const SENSOR_LEN: usize = 8;

/// Hidden-layer activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// max(x, 0).
    Relu,
    /// tanh(x).
    Tanh,
}

impl Activation {
    fn code(self) -> u32 {
        match self {
            Activation::Relu => 1,
            Activation::Tanh => 2,
        }
    }
}

/// A sensor: what one part of the observation vector reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Sensor {
    /// Coordinate of a joint's free axis (`axis` 0 for hinges and sliders).
    JointAngle { joint: String, axis: u32 },
    /// Speed of a joint's free axis.
    JointSpeed { joint: String, axis: u32 },
    /// Body position (3 values).
    BodyPosition { body: String },
    /// Body linear velocity (3).
    BodyVelocity { body: String },
    /// Body orientation quaternion (4).
    BodyOrientation { body: String },
    /// Body angular velocity (3).
    BodyAngularVelocity { body: String },
    /// sin and cos of 2 pi f t (2).
    Clock { frequency: f32 },
    /// A constant such as a task target (3).
    Constant { value: [f32; 3] },
    /// 1 when ground contact point `point` is within `threshold` of the ground, else 0.
    ContactFlag { point: u32, threshold: f32 },
}

impl Sensor {
    /// Number of observation values.
    pub fn size(&self) -> usize {
        match self {
            Sensor::JointAngle { .. } | Sensor::JointSpeed { .. } | Sensor::ContactFlag { .. } => 1,
            Sensor::Clock { .. } => 2,
            Sensor::BodyOrientation { .. } => 4,
            _ => 3,
        }
    }
}

/// A policy: sensors and network shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicySpec {
    /// Observation, in order.
    pub sensors: Vec<Sensor>,
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// A linear path from the observation straight to the output.
    pub skip: bool,
}

/// One dense layer's place in the parameter and activation arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// Inputs.
    pub inputs: usize,
    /// Outputs.
    pub outputs: usize,
    /// Offset of W (outputs x inputs, row-major) in the parameters.
    pub w_offset: usize,
    /// Offset of b.
    pub b_offset: usize,
    /// Offset of the input in the activations.
    pub x_offset: usize,
    /// Offset of the output in the activations.
    pub y_offset: usize,
    /// Output activation code: 0 identity, 1 ReLU, 2 tanh.
    pub activation: u32,
}

/// The parameter and activation layout of a policy for a model.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyLayout {
    /// The spec.
    pub spec: PolicySpec,
    /// Observation size.
    pub n_obs: usize,
    /// Outputs (one per actuator).
    pub n_out: usize,
    /// Layers, input to output.
    pub layers: Vec<LayerInfo>,
    /// Offset of the skip matrix (outputs x observations) when present.
    pub skip_offset: Option<usize>,
    /// Total parameters.
    pub n_params: usize,
    /// Activation slots per instance.
    pub n_activations: usize,
    /// Packed sensor records ([`SENSOR_LEN`] words each) for `shaders/policy.wgsl`.
    pub sensors_packed: Vec<u32>,
}

impl PolicyLayout {
    /// Lays out `spec` for `model` (its actuators are the outputs).
    pub fn new(spec: &PolicySpec, model: &Model) -> Result<PolicyLayout> {
        let n_out = model.actuators.len();
        if n_out == 0 {
            return Err(Error::InvalidInput(format!(
                "model '{}' has no actuators for a policy to drive",
                model.name
            )));
        }
        if spec.sensors.is_empty() {
            return Err(Error::InvalidInput(
                "a policy needs at least one sensor".into(),
            ));
        }
        if spec.hidden.contains(&0) {
            return Err(Error::InvalidInput(
                "hidden layer widths must be positive".into(),
            ));
        }
        let mut packed = Vec::new();
        let mut offset = 0usize;
        for (k, s) in spec.sensors.iter().enumerate() {
            let joint = |name: &str, axis: u32| -> Result<(u32, u32)> {
                let j = model.joint_index(name).ok_or_else(|| {
                    Error::InvalidInput(format!("sensor {k}: unknown joint '{name}'"))
                })?;
                let free = model.joints[j].free_axes();
                let a = *free.get(axis as usize).ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "sensor {k}: joint '{name}' has no free axis {axis}"
                    ))
                })?;
                Ok((j as u32, a))
            };
            let body = |name: &str| -> Result<u32> {
                model.body_index(name).map(|b| b as u32 + 1).ok_or_else(|| {
                    Error::InvalidInput(format!("sensor {k}: unknown body '{name}'"))
                })
            };
            let (kind, index, axis, floats): (u32, u32, u32, [f32; SENSOR_LEN - 4]) = match s {
                Sensor::JointAngle { joint: j, axis } => {
                    let (j, a) = joint(j, *axis)?;
                    (0, j, a, [0.0; 4])
                }
                Sensor::JointSpeed { joint: j, axis } => {
                    let (j, a) = joint(j, *axis)?;
                    (1, j, a, [0.0; 4])
                }
                Sensor::BodyPosition { body: b } => (2, body(b)?, 0, [0.0; 4]),
                Sensor::BodyVelocity { body: b } => (3, body(b)?, 0, [0.0; 4]),
                Sensor::BodyOrientation { body: b } => (4, body(b)?, 0, [0.0; 4]),
                Sensor::BodyAngularVelocity { body: b } => (5, body(b)?, 0, [0.0; 4]),
                Sensor::Clock { frequency } => (6, 0, 0, [*frequency, 0.0, 0.0, 0.0]),
                Sensor::Constant { value } => (7, 0, 0, [value[0], value[1], value[2], 0.0]),
                Sensor::ContactFlag { point, threshold } => {
                    (8, *point, 0, [*threshold, 0.0, 0.0, 0.0])
                }
            };
            packed.extend_from_slice(&[kind, index, axis, offset as u32]);
            packed.extend(floats.iter().map(|f| f.to_bits()));
            offset += s.size();
        }
        let n_obs = offset;
        let mut layers = Vec::new();
        let mut params = 0usize;
        let mut x_offset = 0usize;
        let mut act_end = n_obs;
        let widths: Vec<usize> = spec
            .hidden
            .iter()
            .copied()
            .chain(std::iter::once(n_out))
            .collect();
        let mut inputs = n_obs;
        for (l, &outputs) in widths.iter().enumerate() {
            let last = l + 1 == widths.len();
            layers.push(LayerInfo {
                inputs,
                outputs,
                w_offset: params,
                b_offset: params + inputs * outputs,
                x_offset,
                y_offset: act_end,
                activation: if last { 0 } else { spec.activation.code() },
            });
            params += inputs * outputs + outputs;
            x_offset = act_end;
            act_end += outputs;
            inputs = outputs;
        }
        let skip_offset = spec.skip.then_some(params);
        if spec.skip {
            params += n_out * n_obs;
        }
        Ok(PolicyLayout {
            spec: spec.clone(),
            n_obs,
            n_out,
            layers,
            skip_offset,
            n_params: params,
            n_activations: act_end,
            sensors_packed: packed,
        })
    }

    /// Initial parameters: hidden layers uniform in +-sqrt(6 / (in + out)) (Glorot) from a
    /// counter-based generator keyed by `seed`; the output layer and the skip path zero, so
    /// that the untrained policy commands zero (the paper's initialisation).
    pub fn init_params(&self, seed: u64) -> Vec<f32> {
        let mut p = vec![0.0f32; self.n_params];
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            if l == last {
                continue;
            }
            let bound = (6.0 / (layer.inputs + layer.outputs) as f64).sqrt();
            for k in 0..layer.inputs * layer.outputs {
                let u = unit_random(seed, l as u64, k as u64);
                p[layer.w_offset + k] = ((2.0 * u - 1.0) * bound) as f32;
            }
        }
        p
    }

    /// CPU twin of the dense layers: all activations (observation first) for one instance
    /// ([`crate::engine::twin::policy::dense_forward`]).
    pub fn forward(&self, params: &[f32], obs: &[f64]) -> Vec<f64> {
        crate::engine::twin::policy::dense_forward(self, params, obs)
    }

    /// CPU twin of the backward pass for one instance: adds the parameter gradient into `grads`
    /// and returns d(loss)/d(observation), given d(loss)/d(output)
    /// ([`crate::engine::twin::policy::dense_backward`]).
    pub fn backward(
        &self,
        params: &[f32],
        act: &[f64],
        d_out: &[f64],
        grads: &mut [f64],
    ) -> Vec<f64> {
        crate::engine::twin::policy::dense_backward(self, params, act, d_out, grads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(skip: bool, activation: Activation) -> PolicyLayout {
        let model = crate::io::models::builtin("arm").unwrap();
        let spec = PolicySpec {
            sensors: vec![
                Sensor::JointAngle {
                    joint: model.joints[1].name.clone(),
                    axis: 0,
                },
                Sensor::Clock { frequency: 1.5 },
                Sensor::Constant {
                    value: [0.5, 0.5, 0.5],
                },
            ],
            hidden: vec![7, 5],
            activation,
            skip,
        };
        PolicyLayout::new(&spec, &model).unwrap()
    }

    #[test]
    fn parameter_count_matches_the_paper_formula() {
        let l = layout(true, Activation::Relu);
        // 6 inputs, 7 and 5 hidden, 4 outputs, skip 6 x 4.
        assert_eq!(l.n_params, 6 * 7 + 7 + 7 * 5 + 5 + 5 * 4 + 4 + 6 * 4);
        let p = l.init_params(3);
        let last = l.layers.last().unwrap();
        assert!(
            p[last.w_offset..].iter().all(|v| *v == 0.0),
            "output layer and skip start at zero"
        );
        assert!(p[..last.w_offset].iter().any(|v| *v != 0.0));
    }

    #[test]
    fn cpu_backward_matches_finite_differences() {
        for (skip, act) in [(true, Activation::Relu), (false, Activation::Tanh)] {
            let l = layout(skip, act);
            let mut p = l.init_params(5);
            for (k, v) in p.iter_mut().enumerate() {
                *v += 0.1 * ((k as f32) * 0.37).sin();
            }
            let obs: Vec<f64> = (0..l.n_obs).map(|k| (k as f64 * 0.9).cos()).collect();
            let w: Vec<f64> = (0..l.n_out).map(|k| 1.0 + k as f64).collect();
            let f = |p: &[f32], obs: &[f64]| {
                let a = l.forward(p, obs);
                a[l.n_activations - l.n_out..]
                    .iter()
                    .zip(&w)
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
            };
            let act_values = l.forward(&p, &obs);
            let mut grads = vec![0.0; l.n_params];
            let d_obs = l.backward(&p, &act_values, &w, &mut grads);
            for k in (0..l.n_params).step_by(7) {
                let h = 1e-3f32;
                let (mut a, mut b) = (p.clone(), p.clone());
                a[k] += h;
                b[k] -= h;
                let fd = (f(&a, &obs) - f(&b, &obs)) / (f64::from(a[k]) - f64::from(b[k]));
                assert!(
                    (fd - grads[k]).abs() < 1e-4 * (1.0 + fd.abs()),
                    "param {k}: {} vs {fd}",
                    grads[k]
                );
            }
            for k in 0..l.n_obs {
                let (mut a, mut b) = (obs.clone(), obs.clone());
                a[k] += 1e-6;
                b[k] -= 1e-6;
                let fd = (f(&p, &a) - f(&p, &b)) / 2e-6;
                assert!((fd - d_obs[k]).abs() < 1e-5 * (1.0 + fd.abs()), "obs {k}");
            }
        }
    }
}
