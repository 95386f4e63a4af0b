//! CPU twins of `shaders/policy.wgsl`: the observation kernel (`policy_observe_forward`) and
//! the dense layers forward and backward, for one instance in `f64`.

use super::Instance;
use super::math::V3;
use crate::engine::layout::{BODY_STATE_LEN, stride};
use crate::learn::policy::{PolicyLayout, SENSOR_LEN};

/// Twin of `noise_hash` in `shaders/policy.wgsl` (a PCG output permutation of a u32).
pub fn noise_hash(x: u32) -> u32 {
    let h = x.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    let w = ((h >> ((h >> 28) + 4)) ^ h).wrapping_mul(277_803_737);
    (w >> 22) ^ w
}

/// Twin of `action_noise` in `shaders/policy.wgsl`: the noise added to output `output`'s
/// command of `instance` (its index in the whole batch, whatever the chunking) at the rollout's step `step` (`n_commands` commands per step), in
/// f64: `std` times a standard normal (Box-Muller on two uniforms of 24 bits hashed from
/// `key`, `instance`, `step` and `output`).
pub fn action_noise_twin(
    std: f64,
    key: u32,
    instance: u32,
    step: u32,
    n_commands: u32,
    output: u32,
) -> f64 {
    let h = noise_hash(
        key ^ noise_hash(instance ^ noise_hash(step.wrapping_mul(n_commands).wrapping_add(output))),
    );
    let h2 = noise_hash(h ^ 0x9e37_79b9);
    let u1 = (f64::from(h >> 8) + 1.0) / 16_777_216.0;
    let u2 = f64::from(h2 >> 8) / 16_777_216.0;
    std * ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos())
}

/// CPU twin of the dense layers: all activations (observation first) for one instance.
pub fn dense_forward(layout: &PolicyLayout, params: &[f32], obs: &[f64]) -> Vec<f64> {
    let mut act = vec![0.0; layout.n_activations];
    act[..layout.n_obs].copy_from_slice(obs);
    let last = layout.layers.len() - 1;
    for (l, layer) in layout.layers.iter().enumerate() {
        for o in 0..layer.outputs {
            let mut z = f64::from(params[layer.b_offset + o]);
            for k in 0..layer.inputs {
                z += f64::from(params[layer.w_offset + o * layer.inputs + k])
                    * act[layer.x_offset + k];
            }
            if l == last
                && let Some(s) = layout.skip_offset
            {
                for k in 0..layout.n_obs {
                    z += f64::from(params[s + o * layout.n_obs + k]) * act[k];
                }
            }
            act[layer.y_offset + o] = match layer.activation {
                1 => z.max(0.0),
                2 => z.tanh(),
                _ => z,
            };
        }
    }
    act
}

/// CPU twin of the backward pass for one instance: adds the parameter gradient into `grads`
/// and returns d(loss)/d(observation), given d(loss)/d(output).
pub fn dense_backward(
    layout: &PolicyLayout,
    params: &[f32],
    act: &[f64],
    d_out: &[f64],
    grads: &mut [f64],
) -> Vec<f64> {
    let mut delta = vec![0.0; layout.n_activations];
    let last_layer = layout.layers[layout.layers.len() - 1];
    delta[last_layer.y_offset..last_layer.y_offset + layout.n_out].copy_from_slice(d_out);
    for (l, layer) in layout.layers.iter().enumerate().rev() {
        let in_activation = if l == 0 {
            0
        } else {
            layout.layers[l - 1].activation
        };
        for o in 0..layer.outputs {
            let d = delta[layer.y_offset + o];
            grads[layer.b_offset + o] += d;
            for k in 0..layer.inputs {
                grads[layer.w_offset + o * layer.inputs + k] += d * act[layer.x_offset + k];
            }
        }
        for k in 0..layer.inputs {
            let mut d = 0.0;
            for o in 0..layer.outputs {
                d += f64::from(params[layer.w_offset + o * layer.inputs + k])
                    * delta[layer.y_offset + o];
            }
            let a = act[layer.x_offset + k];
            let slope = match in_activation {
                1 => f64::from(u8::from(a > 0.0)),
                2 => 1.0 - a * a,
                _ => 1.0,
            };
            delta[layer.x_offset + k] = d * slope;
        }
    }
    if let Some(s) = layout.skip_offset {
        for o in 0..layout.n_out {
            let d = delta[last_layer.y_offset + o];
            for k in 0..layout.n_obs {
                grads[s + o * layout.n_obs + k] += d * act[k];
                delta[k] += f64::from(params[s + o * layout.n_obs + k]) * d;
            }
        }
    }
    delta[..layout.n_obs].to_vec()
}

/// CPU twin of `policy_observe_forward`: the observation of one instance at step `t`.
pub fn observe_twin(layout: &PolicyLayout, inst: &Instance<'_, f64>, t: u32) -> Vec<f64> {
    let mut obs = vec![0.0; layout.n_obs];
    let packed = &layout.sensors_packed;
    let dt = f64::from(inst.hdr.dt);
    for s in 0..packed.len() / SENSOR_LEN {
        let word = |k: usize| packed[s * SENSOR_LEN + k];
        let float = |k: usize| f64::from(f32::from_bits(packed[s * SENSOR_LEN + k]));
        let (kind, index, axis, out) = (word(0), word(1), word(2), word(3) as usize);
        let slot = index * BODY_STATE_LEN as u32;
        match kind {
            0 => obs[out] = super::joint_axis(inst, index, axis).coordinate,
            1 => {
                let ax = super::joint_axis(inst, index, axis);
                let rec = inst.hdr.off_joint + index * stride::JOINT as u32;
                let (a, b) = (inst.model[rec as usize], inst.model[rec as usize + 1]);
                let v = |b: u32, k: u32| inst.state_vec3(b * BODY_STATE_LEN as u32 + k);
                obs[out] = ax.jac.lin_a.dot(v(a, 7))
                    + ax.jac.ang_a.dot(v(a, 10))
                    + ax.jac.lin_b.dot(v(b, 7))
                    + ax.jac.ang_b.dot(v(b, 10));
            }
            2 | 3 | 5 => {
                let base = match kind {
                    3 => slot + 7,
                    5 => slot + 10,
                    _ => slot,
                };
                let v = inst.state_vec3(base);
                obs[out..out + 3].copy_from_slice(&[v.x, v.y, v.z]);
            }
            4 => {
                let q = inst.body_orientation(index);
                obs[out..out + 4].copy_from_slice(&[q.v.x, q.v.y, q.v.z, q.w]);
            }
            6 => {
                let phase = 2.0 * std::f64::consts::PI * float(4) * f64::from(t) * dt;
                obs[out] = phase.sin();
                obs[out + 1] = phase.cos();
            }
            7 => obs[out..out + 3].copy_from_slice(&[float(4), float(5), float(6)]),
            _ => {
                let rec = (inst.hdr.off_contact + index * stride::CONTACT as u32) as usize;
                let b = inst.model[rec];
                let offset = V3::new(
                    f64::from(f32::from_bits(inst.model[rec + 1])),
                    f64::from(f32::from_bits(inst.model[rec + 2])),
                    f64::from(f32::from_bits(inst.model[rec + 3])),
                );
                let centre = inst.state_vec3(b * BODY_STATE_LEN as u32)
                    + inst.body_orientation(b).rotate(offset);
                let gap = centre.z - f64::from(f32::from_bits(inst.model[rec + 4]));
                obs[out] = if gap < float(4) { 1.0 } else { 0.0 };
            }
        }
    }
    obs
}
