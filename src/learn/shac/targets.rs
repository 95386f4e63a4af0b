//! The critic's regression targets.

/// TD(lambda) returns of one window: `rewards[t]` is the reward of step `t` (reaching state
/// `t + 1`), `next_values[t]` the value of state `t + 1`. The last return bootstraps from the
/// window's end: `G_{H-1} = r_{H-1} + gamma V(s_H)`, and before it
/// `G_t = r_t + gamma ((1 - lambda) V(s_{t+1}) + lambda G_{t+1})`.
pub fn td_lambda_targets(
    rewards: &[f64],
    next_values: &[f64],
    gamma: f64,
    lambda: f64,
) -> Vec<f64> {
    let h = rewards.len();
    let mut g = vec![0.0; h];
    let mut next = 0.0;
    for t in (0..h).rev() {
        let v = next_values[t];
        g[t] = if t + 1 == h {
            rewards[t] + gamma * v
        } else {
            rewards[t] + gamma * ((1.0 - lambda) * v + lambda * next)
        };
        next = g[t];
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn td_lambda_targets_match_the_mixture_of_n_step_returns() {
        let rewards = [0.3, -0.1, 0.7, 0.2, 0.5];
        let values = [1.1, 0.4, -0.3, 0.9, 0.6];
        let (gamma, lambda): (f64, f64) = (0.9, 0.7);
        let h = rewards.len();
        let n_step = |t: usize, n: usize| {
            (0..n)
                .map(|k| gamma.powi(k as i32) * rewards[t + k])
                .sum::<f64>()
                + gamma.powi(n as i32) * values[t + n - 1]
        };
        let g = td_lambda_targets(&rewards, &values, gamma, lambda);
        for (t, &got) in g.iter().enumerate() {
            let m = h - t;
            let mut expected = (1..m)
                .map(|n| (1.0 - lambda) * lambda.powi(n as i32 - 1) * n_step(t, n))
                .sum::<f64>();
            expected += lambda.powi(m as i32 - 1) * n_step(t, m);
            assert!((got - expected).abs() < 1e-12, "t {t}: {got} vs {expected}");
        }
        // lambda 1 is the Monte-Carlo return with a bootstrap, lambda 0 one-step TD.
        let mc = td_lambda_targets(&rewards, &values, gamma, 1.0);
        assert!((mc[0] - n_step(0, h)).abs() < 1e-12);
        let td = td_lambda_targets(&rewards, &values, gamma, 0.0);
        assert!((td[2] - (rewards[2] + gamma * values[2])).abs() < 1e-12);
    }
}
