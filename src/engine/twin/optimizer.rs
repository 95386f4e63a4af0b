//! CPU twin of `shaders/optimizer.wgsl`: the global gradient norm with the kernel's lane
//! layout and reduction order, and the Adam / SGD update. It works in `f32` only, as the
//! kernel does: the optimiser is not differentiated, so there is no `f64` adjoint to check,
//! and `f32` keeps the twin's rounding next to the GPU's.

use crate::learn::optim::{Method, OptimizerConfig};

/// Invocations of the `gradient_norm` workgroup (its `@workgroup_size`).
const LANES: usize = 256;

/// The kernel's fixed-order reduction: every lane folds the entries `lane, lane + 256, ...`,
/// then a tree halves the lanes from 128 down to 1.
fn reduce(values: impl Fn(usize) -> f32, n: usize, start: f32, fold: fn(f32, f32) -> f32) -> f32 {
    let mut partial = [start; LANES];
    for (lane, slot) in partial.iter_mut().enumerate() {
        for k in (lane..n).step_by(LANES) {
            *slot = fold(*slot, values(k));
        }
    }
    let mut stride = LANES / 2;
    while stride > 0 {
        for lane in 0..stride {
            partial[lane] = fold(partial[lane], partial[lane + stride]);
        }
        stride /= 2;
    }
    partial[0]
}

/// Twin of the `gradient_norm` kernel: the global L2 norm of `grads * grad_scale`, taken as
/// `m |g / m|` with `m` the largest entry so that gradients past 1e19 do not overflow the sum
/// of squares. Zero for an all-zero gradient; not finite when an entry is not.
pub fn gradient_norm(grads: &[f32], grad_scale: f32) -> f32 {
    let n = grads.len();
    let scale = reduce(
        |k| (grads[k] * grad_scale).abs(),
        n,
        0.0,
        |a, b| {
            // WGSL's max of a NaN is the device's choice; keeping the NaN makes the norm non-finite
            // either way, as the sum below does on the device.
            if a.is_nan() || b.is_nan() {
                f32::NAN
            } else {
                a.max(b)
            }
        },
    );
    let inverse = if scale == 0.0 { 1.0 } else { 1.0 / scale };
    let sum = reduce(
        |k| {
            let g = grads[k] * grad_scale * inverse;
            g * g
        },
        n,
        0.0,
        |a, b| a + b,
    );
    if scale == 0.0 {
        0.0
    } else {
        scale * sum.sqrt()
    }
}

/// The optimiser's state on the CPU: parameters' moments and the update count, as
/// [`crate::learn::optim::GpuOptimizer`] keeps them on the device.
#[derive(Clone, Debug)]
pub struct OptimizerTwin {
    /// The settings.
    pub config: OptimizerConfig,
    /// First moment (Adam) or momentum buffer (SGD).
    pub first: Vec<f32>,
    /// Second moment (Adam; unused by SGD).
    pub second: Vec<f32>,
    /// Updates applied so far.
    pub step: u32,
}

impl OptimizerTwin {
    /// A fresh optimiser over `n_params` parameters.
    pub fn new(config: OptimizerConfig, n_params: usize) -> Self {
        OptimizerTwin {
            config,
            first: vec![0.0; n_params],
            second: vec![0.0; n_params],
            step: 0,
        }
    }

    /// Twin of one [`crate::learn::optim::GpuOptimizer::update`]: the `gradient_norm` kernel, then
    /// `apply_update` on every parameter (which also zeroes the gradient). Returns the norm.
    pub fn update(&mut self, theta: &mut [f32], grads: &mut [f32], grad_scale: f32) -> f32 {
        self.step += 1;
        let norm = gradient_norm(grads, grad_scale);
        let rate = self.config.rate_at(self.step);
        let max_norm = self.config.max_norm.unwrap_or(0.0);
        for k in 0..theta.len() {
            apply_update(
                &self.config.method,
                rate,
                self.step,
                max_norm,
                norm,
                grad_scale,
                (&mut theta[k], &mut grads[k]),
                (&mut self.first[k], &mut self.second[k]),
            );
        }
        norm
    }
}

/// Twin of the `apply_update` kernel on one parameter: the gradient scaled and clipped to
/// `max_norm` (0: no clipping) by the global `norm`, then one Adam or SGD step with the
/// `step`-th update's bias correction.
#[allow(clippy::too_many_arguments)]
pub fn apply_update(
    method: &Method,
    learning_rate: f32,
    step: u32,
    max_norm: f32,
    norm: f32,
    grad_scale: f32,
    (theta, grad): (&mut f32, &mut f32),
    (first, second): (&mut f32, &mut f32),
) {
    let clip = if max_norm > 0.0 && norm > max_norm {
        max_norm / norm
    } else {
        1.0
    };
    let g = *grad * grad_scale * clip;
    let t = step as f32;
    match *method {
        Method::Adam {
            beta1,
            beta2,
            epsilon,
        } => {
            let m = beta1 * *first + (1.0 - beta1) * g;
            let v = beta2 * *second + (1.0 - beta2) * g * g;
            *first = m;
            *second = v;
            let m_hat = m / (1.0 - beta1.powf(t));
            let v_hat = v / (1.0 - beta2.powf(t));
            *theta -= learning_rate * m_hat / (v_hat.sqrt() + epsilon);
        }
        Method::Sgd { momentum } => {
            let m = momentum * *first + g;
            *first = m;
            *theta -= learning_rate * m;
        }
    }
    *grad = 0.0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::optim::Schedule;

    #[test]
    fn the_norm_survives_huge_gradients_and_reports_bad_ones() {
        let huge: Vec<f32> = (0..1000)
            .map(|k| ((k as f32) * 0.7).sin() * 3.0e25)
            .collect();
        let want = huge
            .iter()
            .map(|g| f64::from(*g).powi(2))
            .sum::<f64>()
            .sqrt();
        let norm = gradient_norm(&huge, 1.0);
        assert!(
            (f64::from(norm) - want).abs() < 1e-5 * want,
            "{norm} vs {want}"
        );
        // A plain f32 sum of squares overflows here.
        assert!(!huge.iter().map(|g| g * g).sum::<f32>().is_finite());
        assert_eq!(gradient_norm(&[0.0; 10], 1.0), 0.0);
        let mut broken = huge.clone();
        broken[17] = f32::NAN;
        assert!(!gradient_norm(&broken, 1.0).is_finite());
        broken[17] = f32::INFINITY;
        assert!(!gradient_norm(&broken, 1.0).is_finite());
    }

    /// The twin against the textbook updates in f64.
    #[test]
    fn updates_follow_the_textbook() {
        let n = 300;
        let theta0: Vec<f32> = (0..n).map(|k| (k as f32 * 0.37).sin()).collect();
        for method in [
            Method::Adam {
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
            },
            Method::Sgd { momentum: 0.9 },
        ] {
            let config = OptimizerConfig {
                method,
                learning_rate: 0.01,
                schedule: Schedule::Constant,
                max_norm: Some(1.0),
            };
            let mut twin = OptimizerTwin::new(config, n);
            let mut theta = theta0.clone();
            let mut want: Vec<f64> = theta0.iter().map(|x| f64::from(*x)).collect();
            let (mut m, mut v) = (vec![0.0f64; n], vec![0.0f64; n]);
            for step in 1..=3 {
                let mut g: Vec<f32> = (0..n)
                    .map(|k| ((k * 7 + step * 13) as f32 * 0.11).cos() * 3.0)
                    .collect();
                let gs: Vec<f64> = g.iter().map(|x| f64::from(*x) * 0.5).collect();
                let norm = twin.update(&mut theta, &mut g, 0.5);
                assert!(
                    g.iter().all(|x| *x == 0.0),
                    "the update clears the gradient"
                );
                let cpu_norm = gs.iter().map(|x| x * x).sum::<f64>().sqrt();
                assert!((f64::from(norm) - cpu_norm).abs() < 1e-5 * cpu_norm);
                let clip = if cpu_norm > 1.0 { 1.0 / cpu_norm } else { 1.0 };
                for k in 0..n {
                    let g = gs[k] * clip;
                    match method {
                        Method::Adam { beta1, beta2, .. } => {
                            let (b1, b2) = (f64::from(beta1), f64::from(beta2));
                            m[k] = b1 * m[k] + (1.0 - b1) * g;
                            v[k] = b2 * v[k] + (1.0 - b2) * g * g;
                            let mh = m[k] / (1.0 - b1.powi(step as i32));
                            let vh = v[k] / (1.0 - b2.powi(step as i32));
                            want[k] -= 0.01 * mh / (vh.sqrt() + 1e-8);
                        }
                        Method::Sgd { momentum } => {
                            m[k] = f64::from(momentum) * m[k] + g;
                            want[k] -= 0.01 * m[k];
                        }
                    }
                }
            }
            for k in 0..n {
                assert!(
                    (f64::from(theta[k]) - want[k]).abs() < 1e-5,
                    "{method:?} {k}: {} vs {}",
                    theta[k],
                    want[k]
                );
            }
        }
    }
}
