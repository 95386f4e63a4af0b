//! Observation normalisation: running statistics, and the exact rewrite of the policy's first
//! layer that lets the GPU policy run on raw observations.

use crate::learn::policy::PolicyLayout;

/// Smallest standard deviation a normalised input is divided by: a constant input (a sensor
/// that never moves) would otherwise be scaled without bound.
pub const MIN_STD: f64 = 1e-2;

/// Running mean and variance of vectors, merged batch by batch (Chan et al.'s parallel
/// formula, so the order of the batches within one update does not matter).
#[derive(Clone, Debug, PartialEq)]
pub struct RunningStats {
    /// Samples seen.
    pub count: f64,
    /// Mean per component.
    pub mean: Vec<f64>,
    /// Population variance per component.
    pub var: Vec<f64>,
    /// The smallest standard deviation a component is divided by ([`MIN_STD`] or more).
    pub min_std: f64,
}

impl RunningStats {
    /// No samples yet: mean 0, variance 1 (normalising is then the identity).
    pub fn new(width: usize) -> Self {
        Self::with_min_std(width, MIN_STD)
    }

    /// [`RunningStats::new`] dividing by at least `min_std` (and at least [`MIN_STD`]): a
    /// component that has hardly varied yet, such as a joint angle while the untrained policy
    /// commands nothing, is not scaled up by its tiny spread.
    pub fn with_min_std(width: usize, min_std: f64) -> Self {
        RunningStats {
            count: 0.0,
            mean: vec![0.0; width],
            var: vec![1.0; width],
            min_std: if min_std > MIN_STD { min_std } else { MIN_STD },
        }
    }

    /// Merges the samples `rows` (each `mean.len()` wide, concatenated).
    pub fn update(&mut self, rows: &[f64]) {
        let w = self.mean.len();
        if w == 0 || rows.is_empty() {
            return;
        }
        let n = (rows.len() / w) as f64;
        let mut mean = vec![0.0; w];
        for r in rows.chunks_exact(w) {
            mean.iter_mut().zip(r).for_each(|(m, x)| *m += x);
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0; w];
        for r in rows.chunks_exact(w) {
            for k in 0..w {
                let d = r[k] - mean[k];
                var[k] += d * d;
            }
        }
        var.iter_mut().for_each(|v| *v /= n);
        if self.count == 0.0 {
            self.mean = mean;
            self.var = var;
            self.count = n;
            return;
        }
        let total = self.count + n;
        for k in 0..w {
            let delta = mean[k] - self.mean[k];
            let m2 = self.var[k] * self.count + var[k] * n + delta * delta * self.count * n / total;
            self.mean[k] += delta * n / total;
            self.var[k] = m2 / total;
        }
        self.count = total;
    }

    /// The standard deviation that component `k` is divided by.
    pub fn std(&self, k: usize) -> f64 {
        self.var[k].sqrt().max(self.min_std)
    }

    /// `(x - mean) / std`, component-wise.
    pub fn normalize(&self, x: &[f64]) -> Vec<f64> {
        x.iter()
            .enumerate()
            .map(|(k, v)| (v - self.mean[k]) / self.std(k))
            .collect()
    }
}

/// The parameters the GPU policy runs so that it sees raw observations and computes what the
/// policy `theta` computes on normalised ones: the first layer's weights divided by the
/// observations' standard deviations and its bias shifted by the means (the skip path likewise,
/// its shift going into the output layer's bias).
pub fn effective_params(layout: &PolicyLayout, theta: &[f32], stats: &RunningStats) -> Vec<f32> {
    let mut p: Vec<f64> = theta.iter().map(|&v| f64::from(v)).collect();
    let first = layout.layers[0];
    let last = *layout.layers.last().expect("a policy has an output layer");
    let mut rescale = |w_offset: usize, b_offset: usize, outputs: usize| {
        for o in 0..outputs {
            let mut shift = 0.0;
            for k in 0..layout.n_obs {
                let w = f64::from(theta[w_offset + o * layout.n_obs + k]);
                p[w_offset + o * layout.n_obs + k] = w / stats.std(k);
                shift += w * stats.mean[k] / stats.std(k);
            }
            p[b_offset + o] -= shift;
        }
    };
    rescale(first.w_offset, first.b_offset, first.outputs);
    if let Some(s) = layout.skip_offset {
        rescale(s, last.b_offset, layout.n_out);
    }
    p.iter().map(|&v| v as f32).collect()
}

/// The gradient with respect to the normalised-space parameters `theta`, given the gradient
/// `grad` with respect to [`effective_params`] (the chain rule through that map).
pub fn normalized_gradient(layout: &PolicyLayout, grad: &[f64], stats: &RunningStats) -> Vec<f64> {
    let mut g = grad.to_vec();
    let first = layout.layers[0];
    let last = *layout.layers.last().expect("a policy has an output layer");
    let mut map = |w_offset: usize, b_offset: usize, outputs: usize| {
        for o in 0..outputs {
            let gb = grad[b_offset + o];
            for k in 0..layout.n_obs {
                let i = w_offset + o * layout.n_obs + k;
                g[i] = (grad[i] - gb * stats.mean[k]) / stats.std(k);
            }
        }
    };
    map(first.w_offset, first.b_offset, first.outputs);
    if let Some(s) = layout.skip_offset {
        map(s, last.b_offset, layout.n_out);
    }
    g
}

/// Multiplies every parameter that feeds the policy's outputs linearly (the output layer's
/// weights and biases and the skip matrix) by `scale`, so that the policy's outputs are `scale`
/// times those of `params`. The map is diagonal, so the same call maps a gradient with respect
/// to the scaled parameters back to one with respect to `params` (the chain rule).
pub fn scale_outputs(layout: &PolicyLayout, params: &mut [f32], scale: f32) {
    let last = *layout.layers.last().expect("a policy has an output layer");
    let output_layer = last.w_offset..last.b_offset + last.outputs;
    let skip = layout
        .skip_offset
        .map_or(0..0, |s| s..s + layout.n_out * layout.n_obs);
    for range in [output_layer, skip] {
        params[range].iter_mut().for_each(|p| *p *= scale);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::policy::{Activation, PolicySpec, Sensor};

    #[test]
    fn running_stats_match_the_whole_sample() {
        let rows: Vec<f64> = (0..60)
            .map(|k| ((k as f64) * 0.77).sin() * (1.0 + (k % 3) as f64))
            .collect();
        let mut merged = RunningStats::new(3);
        merged.update(&rows[..21]);
        merged.update(&rows[21..]);
        let mut whole = RunningStats::new(3);
        whole.update(&rows);
        for k in 0..3 {
            let column: Vec<f64> = rows.iter().skip(k).step_by(3).copied().collect();
            let mean = column.iter().sum::<f64>() / column.len() as f64;
            let var = column.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / column.len() as f64;
            assert!((merged.mean[k] - mean).abs() < 1e-12 && (merged.var[k] - var).abs() < 1e-12);
            assert!((whole.mean[k] - mean).abs() < 1e-12 && (whole.var[k] - var).abs() < 1e-12);
        }
        assert_eq!(merged.count, 20.0);
    }

    fn layout(skip: bool) -> PolicyLayout {
        let model = crate::io::models::builtin("arm").unwrap();
        let spec = PolicySpec {
            sensors: vec![
                Sensor::JointAngle {
                    joint: model.joints[1].name.clone(),
                    axis: 0,
                },
                Sensor::Constant {
                    value: [0.5, -0.2, 0.1],
                },
            ],
            hidden: vec![6, 5],
            activation: Activation::Tanh,
            skip,
        };
        PolicyLayout::new(&spec, &model).unwrap()
    }

    #[test]
    fn effective_params_on_raw_observations_equal_the_policy_on_normalised_ones() {
        for skip in [false, true] {
            let l = layout(skip);
            let mut theta = l.init_params(9);
            for (k, v) in theta.iter_mut().enumerate() {
                *v += 0.2 * ((k as f32) * 0.41).sin();
            }
            let stats = RunningStats {
                count: 10.0,
                mean: (0..l.n_obs).map(|k| 0.3 * k as f64 - 0.4).collect(),
                var: (0..l.n_obs).map(|k| 0.5 + 0.7 * k as f64).collect(),
                min_std: MIN_STD,
            };
            let raw: Vec<f64> = (0..l.n_obs).map(|k| (k as f64 * 0.9).cos()).collect();
            let a = l.forward(&effective_params(&l, &theta, &stats), &raw);
            let b = l.forward(&theta, &stats.normalize(&raw));
            for (x, y) in a[l.n_activations - l.n_out..]
                .iter()
                .zip(&b[l.n_activations - l.n_out..])
            {
                assert!((x - y).abs() < 1e-5, "skip {skip}: {x} vs {y}");
            }
            // The mapped gradient is the gradient of the normalised-space policy.
            let w: Vec<f64> = (0..l.n_out).map(|k| 1.0 - 0.3 * k as f64).collect();
            let eff = effective_params(&l, &theta, &stats);
            let act = l.forward(&eff, &raw);
            let mut g_eff = vec![0.0; l.n_params];
            l.backward(&eff, &act, &w, &mut g_eff);
            let mapped = normalized_gradient(&l, &g_eff, &stats);
            let norm = stats.normalize(&raw);
            let act = l.forward(&theta, &norm);
            let mut g = vec![0.0; l.n_params];
            l.backward(&theta, &act, &w, &mut g);
            for k in 0..l.n_params {
                assert!(
                    (mapped[k] - g[k]).abs() < 1e-4 * (1.0 + g[k].abs()),
                    "skip {skip}, param {k}: {} vs {}",
                    mapped[k],
                    g[k]
                );
            }
        }
    }

    #[test]
    fn scaled_outputs_are_the_policy_s_outputs_times_the_scale_and_so_is_the_gradient() {
        for skip in [false, true] {
            let l = layout(skip);
            let mut theta = l.init_params(4);
            for (k, v) in theta.iter_mut().enumerate() {
                *v += 0.3 * ((k as f32) * 0.53).cos();
            }
            let stats = RunningStats {
                count: 5.0,
                mean: (0..l.n_obs).map(|k| 0.2 * k as f64 + 0.1).collect(),
                var: (0..l.n_obs).map(|k| 0.8 + 0.3 * k as f64).collect(),
                min_std: MIN_STD,
            };
            let scale = 150.0;
            let mut eff = effective_params(&l, &theta, &stats);
            scale_outputs(&l, &mut eff, scale);
            let raw: Vec<f64> = (0..l.n_obs).map(|k| (k as f64 * 1.3).sin()).collect();
            let out = l.n_activations - l.n_out;
            let scaled = l.forward(&eff, &raw);
            let plain = l.forward(&theta, &stats.normalize(&raw));
            for (x, y) in scaled[out..].iter().zip(&plain[out..]) {
                let expected = f64::from(scale) * y;
                assert!(
                    (x - expected).abs() < 1e-4 * (1.0 + expected.abs()),
                    "skip {skip}: {x} vs {expected}"
                );
            }
            // d(w . outputs)/d(theta) of the scaled policy is the unscaled policy's gradient
            // with the weights times the scale.
            let w: Vec<f64> = (0..l.n_out).map(|k| 0.7 - 0.2 * k as f64).collect();
            let mut g_eff = vec![0.0; l.n_params];
            l.backward(&eff, &scaled, &w, &mut g_eff);
            let mut g32: Vec<f32> = g_eff.iter().map(|&v| v as f32).collect();
            scale_outputs(&l, &mut g32, scale);
            let g_eff: Vec<f64> = g32.iter().map(|&v| f64::from(v)).collect();
            let mapped = normalized_gradient(&l, &g_eff, &stats);
            let ws: Vec<f64> = w.iter().map(|v| v * f64::from(scale)).collect();
            let mut g = vec![0.0; l.n_params];
            l.backward(&theta, &plain, &ws, &mut g);
            for k in 0..l.n_params {
                assert!(
                    (mapped[k] - g[k]).abs() < 1e-3 * (1.0 + g[k].abs()),
                    "skip {skip}, param {k}: {} vs {}",
                    mapped[k],
                    g[k]
                );
            }
        }
    }

    #[test]
    fn a_component_that_hardly_varied_is_divided_by_the_floor() {
        let rows = [0.50, 2.0, 0.501, -2.0, 0.499, 0.0];
        let mut plain = RunningStats::new(2);
        let mut floored = RunningStats::with_min_std(2, 0.1);
        plain.update(&rows);
        floored.update(&rows);
        assert_eq!(
            (plain.mean.clone(), plain.var.clone()),
            (floored.mean.clone(), floored.var.clone())
        );
        // The first component's spread (8e-4) is below both floors; the second's is above.
        assert_eq!(plain.std(0), MIN_STD);
        assert_eq!(floored.std(0), 0.1);
        assert_eq!(plain.std(1), floored.std(1));
        assert!(floored.std(1) > 1.0);
        // A floor below MIN_STD is MIN_STD.
        assert_eq!(RunningStats::with_min_std(1, 1e-6).min_std, MIN_STD);
        assert_eq!(
            RunningStats::with_min_std(1, f64::from(0.01f32)),
            RunningStats::new(1)
        );
    }
}
