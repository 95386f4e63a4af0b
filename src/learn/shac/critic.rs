//! The critic: a dense network on the host in f64, its Adam, and the state it reads.

use crate::engine::layout::BODY_STATE_LEN;
use crate::learn::random::unit_random;

/// A dense network on the host in f64: tanh hidden layers, one linear output. Parameters are
/// per layer the weights (outputs x inputs, row-major) and then the biases.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    /// Layer widths, input first, output (1) last.
    pub widths: Vec<usize>,
    /// Parameters.
    pub params: Vec<f64>,
}

impl Mlp {
    /// A network with Glorot-uniform weights keyed by `seed` and zero biases.
    pub fn new(inputs: usize, hidden: &[usize], seed: u64) -> Self {
        let mut widths = vec![inputs];
        widths.extend(hidden);
        widths.push(1);
        let mut params = Vec::new();
        for l in 0..widths.len() - 1 {
            let (i, o) = (widths[l], widths[l + 1]);
            let bound = (6.0 / (i + o) as f64).sqrt();
            params.extend(
                (0..i * o).map(|k| (2.0 * unit_random(seed, l as u64, k as u64) - 1.0) * bound),
            );
            params.extend(std::iter::repeat_n(0.0, o));
        }
        Mlp { widths, params }
    }

    /// Parameters in total.
    pub fn n_params(&self) -> usize {
        self.params.len()
    }

    /// Every layer's output (the input first) for input `x`, with parameters `params`.
    fn activations(&self, params: &[f64], x: &[f64]) -> Vec<Vec<f64>> {
        let mut acts = vec![x.to_vec()];
        let mut offset = 0;
        for l in 0..self.widths.len() - 1 {
            let (i, o) = (self.widths[l], self.widths[l + 1]);
            let input = &acts[l];
            let (w, b) = (
                &params[offset..offset + i * o],
                &params[offset + i * o..offset + i * o + o],
            );
            let last = l + 2 == self.widths.len();
            let y: Vec<f64> = (0..o)
                .map(|r| {
                    let z = b[r]
                        + w[r * i..(r + 1) * i]
                            .iter()
                            .zip(input)
                            .map(|(a, b)| a * b)
                            .sum::<f64>();
                    if last { z } else { z.tanh() }
                })
                .collect();
            offset += i * o + o;
            acts.push(y);
        }
        acts
    }

    /// The value of input `x` under parameters `params` (this network's or a copy's, such as a
    /// target network's).
    pub fn value_with(&self, params: &[f64], x: &[f64]) -> f64 {
        self.activations(params, x).last().expect("an output layer")[0]
    }

    /// The value of `x` and its gradients: `d_value * dV/dparams` added into `grads`, and
    /// `dV/dx` returned.
    pub fn backward_with(
        &self,
        params: &[f64],
        x: &[f64],
        d_value: f64,
        grads: &mut [f64],
    ) -> (f64, Vec<f64>) {
        let acts = self.activations(params, x);
        let layers = self.widths.len() - 1;
        let mut offsets = Vec::with_capacity(layers);
        let mut offset = 0;
        for l in 0..layers {
            offsets.push(offset);
            offset += self.widths[l] * self.widths[l + 1] + self.widths[l + 1];
        }
        let mut delta = vec![d_value];
        for l in (0..layers).rev() {
            let (i, o) = (self.widths[l], self.widths[l + 1]);
            let w0 = offsets[l];
            let input = &acts[l];
            for r in 0..o {
                grads[w0 + i * o + r] += delta[r];
                for k in 0..i {
                    grads[w0 + r * i + k] += delta[r] * input[k];
                }
            }
            let mut d_in = vec![0.0; i];
            for (r, d) in delta.iter().enumerate() {
                for k in 0..i {
                    d_in[k] += params[w0 + r * i + k] * d;
                }
            }
            if l > 0 {
                // The input of layer l is tanh's output a: the slope is 1 - a^2.
                for (d, a) in d_in.iter_mut().zip(input) {
                    *d *= 1.0 - a * a;
                }
            }
            delta = d_in;
        }
        (acts[layers][0], delta)
    }
}

/// Adam on the host, in f64 (the critic's optimiser).
#[derive(Clone, Debug, PartialEq)]
pub struct HostAdam {
    /// Learning rate.
    pub learning_rate: f64,
    /// First moments.
    pub m: Vec<f64>,
    /// Second moments.
    pub v: Vec<f64>,
    /// Updates done.
    pub step: u32,
}

impl HostAdam {
    /// Zero moments for `n` parameters.
    pub fn new(n: usize, learning_rate: f64) -> Self {
        HostAdam {
            learning_rate,
            m: vec![0.0; n],
            v: vec![0.0; n],
            step: 0,
        }
    }

    /// One update of `params` with gradient `grad` (beta1 0.9, beta2 0.999, epsilon 1e-8).
    pub fn update(&mut self, params: &mut [f64], grad: &[f64]) {
        const B1: f64 = 0.9;
        const B2: f64 = 0.999;
        self.step += 1;
        let c1 = 1.0 - B1.powi(self.step as i32);
        let c2 = 1.0 - B2.powi(self.step as i32);
        for k in 0..params.len() {
            self.m[k] = B1 * self.m[k] + (1.0 - B1) * grad[k];
            self.v[k] = B2 * self.v[k] + (1.0 - B2) * grad[k] * grad[k];
            params[k] -= self.learning_rate * (self.m[k] / c1) / ((self.v[k] / c2).sqrt() + 1e-8);
        }
    }
}

/// Indices into one instance's raw state of the critic's inputs: per body (slot 0 is the world)
/// its height, orientation, linear and angular velocity: 11 values, the horizontal position
/// left out so that the value does not depend on where the robot has got to.
pub fn critic_state_slots(n_bodies: usize) -> Vec<usize> {
    let mut slots = Vec::with_capacity(11 * n_bodies);
    for b in 1..=n_bodies {
        let base = b * BODY_STATE_LEN;
        slots.extend((2..BODY_STATE_LEN).map(|k| base + k));
    }
    slots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn critic_backward_matches_finite_differences() {
        let mut mlp = Mlp::new(5, &[7, 6], 3);
        for (k, p) in mlp.params.iter_mut().enumerate() {
            *p += 0.05 * (k as f64 * 0.31).cos();
        }
        let x: Vec<f64> = (0..5).map(|k| (k as f64 * 1.3).sin()).collect();
        let mut grads = vec![0.0; mlp.n_params()];
        let (v, dx) = mlp.backward_with(&mlp.params, &x, 1.0, &mut grads);
        assert_eq!(v, mlp.value_with(&mlp.params, &x));
        let h = 1e-6;
        for k in 0..mlp.n_params() {
            let (mut a, mut b) = (mlp.params.clone(), mlp.params.clone());
            a[k] += h;
            b[k] -= h;
            let fd = (mlp.value_with(&a, &x) - mlp.value_with(&b, &x)) / (2.0 * h);
            assert!(
                (fd - grads[k]).abs() < 1e-7 * (1.0 + fd.abs()),
                "param {k}: {} vs {fd}",
                grads[k]
            );
        }
        for k in 0..5 {
            let (mut a, mut b) = (x.clone(), x.clone());
            a[k] += h;
            b[k] -= h;
            let fd =
                (mlp.value_with(&mlp.params, &a) - mlp.value_with(&mlp.params, &b)) / (2.0 * h);
            assert!((fd - dx[k]).abs() < 1e-7 * (1.0 + fd.abs()), "input {k}");
        }
    }

    #[test]
    fn host_adam_fits_a_critic_to_a_smooth_function() {
        let mut mlp = Mlp::new(2, &[16], 5);
        let mut adam = HostAdam::new(mlp.n_params(), 1e-2);
        let data: Vec<([f64; 2], f64)> = (0..40)
            .map(|k| {
                let x = [(k as f64 * 0.37).sin(), (k as f64 * 0.61).cos()];
                (x, x[0] * x[1] + 0.5 * x[0])
            })
            .collect();
        let mse = |m: &Mlp| {
            data.iter()
                .map(|(x, y)| (m.value_with(&m.params, x) - y).powi(2))
                .sum::<f64>()
                / 40.0
        };
        let before = mse(&mlp);
        for _ in 0..400 {
            let mut g = vec![0.0; mlp.n_params()];
            for (x, y) in &data {
                let e = mlp.value_with(&mlp.params, x) - y;
                mlp.backward_with(&mlp.params.clone(), x, 2.0 * e / 40.0, &mut g);
            }
            adam.update(&mut mlp.params, &g);
        }
        assert!(mse(&mlp) < 0.05 * before, "{before} -> {}", mse(&mlp));
    }

    #[test]
    fn critic_slots_leave_out_the_horizontal_position() {
        let slots = critic_state_slots(2);
        assert_eq!(slots.len(), 22);
        assert_eq!(slots[0], BODY_STATE_LEN + 2);
        assert!(
            !slots.contains(&(2 * BODY_STATE_LEN)) && !slots.contains(&(2 * BODY_STATE_LEN + 1))
        );
        assert_eq!(*slots.last().unwrap(), 3 * BODY_STATE_LEN - 1);
    }
}
