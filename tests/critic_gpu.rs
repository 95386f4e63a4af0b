//! The actor-critic's GPU critic (`shaders/critic.wgsl`) against its CPU reference, the host f64
//! `Mlp` with the same weights and inputs: values, input gradients dV/dx, the regression's weight
//! gradient, Adam and the target network's averaging, to f32 tolerance.

mod common;

use backdrive::learn::shac::{GpuCritic, HostAdam, Mlp, Network};

/// A critic whose weights are moved off their initial values (non-zero biases, so that every
/// parameter's gradient is exercised), its host twin and rows of inputs of either sign.
fn critic_and_rows(rows: usize) -> (GpuCritic, Mlp, Vec<f32>) {
    critic_of_shape_and_rows(7, &[9, 5], rows)
}

/// [`critic_and_rows`] for a critic of `inputs` inputs and `hidden` layers.
fn critic_of_shape_and_rows(
    inputs: usize,
    hidden: &[usize],
    rows: usize,
) -> (GpuCritic, Mlp, Vec<f32>) {
    let mut critic = GpuCritic::new(common::gpu(), inputs, hidden, 21, 1e-2).unwrap();
    let mut host = Mlp::new(inputs, hidden, 21);
    let params: Vec<f32> = host
        .params
        .iter()
        .enumerate()
        .map(|(k, &p)| (p + 0.3 * (k as f64 * 0.37).sin()) as f32)
        .collect();
    let target: Vec<f32> = params.iter().map(|p| 0.5 * p).collect();
    let zeros = vec![0.0; params.len()];
    critic
        .restore(&params, &target, (&zeros, &zeros), 0)
        .unwrap();
    host.params = params.iter().map(|&p| f64::from(p)).collect();
    let x: Vec<f32> = (0..rows * inputs)
        .map(|k| (1.5 * (k as f64 * 0.71).sin()) as f32)
        .collect();
    (critic, host, x)
}

fn close(gpu: f32, host: f64, what: &str) {
    assert!(
        (f64::from(gpu) - host).abs() <= 2e-5 * (1.0 + host.abs()),
        "{what}: GPU {gpu} vs host {host}"
    );
}

fn row(x: &[f32], r: usize, w: usize) -> Vec<f64> {
    x[r * w..(r + 1) * w]
        .iter()
        .map(|&v| f64::from(v))
        .collect()
}

#[test]
fn values_and_input_gradients_match_the_host_critic() {
    let (mut critic, host, x) = critic_and_rows(70);
    let w = critic.n_inputs();
    let values = critic.values(Network::Critic, &x).unwrap();
    let (again, dx) = critic.value_gradients(Network::Critic, &x).unwrap();
    assert_eq!(values, again, "both passes compute the same forward");
    let mut scratch = vec![0.0; host.n_params()];
    for r in 0..70 {
        let (v, g) = host.backward_with(&host.params, &row(&x, r, w), 1.0, &mut scratch);
        close(values[r], v, &format!("value of row {r}"));
        for k in 0..w {
            close(dx[r * w + k], g[k], &format!("dV/dx[{k}] of row {r}"));
        }
    }
    // The target network is the one its parameters say.
    let target: Vec<f64> = critic
        .target_params()
        .unwrap()
        .iter()
        .map(|&p| f64::from(p))
        .collect();
    let target_values = critic.values(Network::Target, &x).unwrap();
    assert_eq!(target_values.len(), 70);
    for (r, &value) in target_values.iter().enumerate() {
        close(
            value,
            host.value_with(&target, &row(&x, r, w)),
            "target value",
        );
    }
}

#[test]
fn regression_gradient_and_adam_match_the_host_critic() {
    let (mut critic, mut host, x) = critic_and_rows(40);
    let w = critic.n_inputs();
    let targets: Vec<f32> = (0..40).map(|r| (r as f32 * 0.3).cos()).collect();
    let scale = 1.0 / 40.0;
    // Two calls of 25 and 15 rows sum onto one gradient, as one of 40 rows would.
    let sse = critic
        .add_regression_gradient(&x[..25 * w], &targets[..25], scale)
        .unwrap()
        + critic
            .add_regression_gradient(&x[25 * w..], &targets[25..], scale)
            .unwrap();
    let gradient = critic.gradient().unwrap();
    let mut expected = vec![0.0; host.n_params()];
    let mut host_sse = 0.0;
    for (r, &target) in targets.iter().enumerate() {
        let xr = row(&x, r, w);
        let e = host.value_with(&host.params, &xr) - f64::from(target);
        host_sse += e * e;
        host.backward_with(
            &host.params.clone(),
            &xr,
            2.0 * e * f64::from(scale),
            &mut expected,
        );
    }
    assert!(
        (sse - host_sse).abs() < 1e-4 * host_sse,
        "{sse} vs {host_sse}"
    );
    assert!(expected.iter().all(|g| *g != 0.0), "every parameter moves");
    for (k, (&g, &e)) in gradient.iter().zip(&expected).enumerate() {
        close(g, e, &format!("d loss / d param {k}"));
    }

    // One Adam step on the GPU is the host's Adam step from the same gradient.
    let mut adam = HostAdam::new(host.n_params(), 1e-2);
    adam.update(&mut host.params, &expected);
    critic.update().unwrap();
    assert_eq!(critic.updates(), 1);
    assert!(
        critic.gradient().unwrap().iter().all(|&g| g == 0.0),
        "the update leaves the gradient zero"
    );
    for (k, (&p, &e)) in critic
        .params()
        .unwrap()
        .iter()
        .zip(&host.params)
        .enumerate()
    {
        close(p, e, &format!("parameter {k} after Adam"));
    }

    // Polyak averaging of the target.
    let before = critic.target_params().unwrap();
    let now = critic.params().unwrap();
    critic.average_target(0.25);
    for ((t, b), c) in critic
        .target_params()
        .unwrap()
        .iter()
        .zip(&before)
        .zip(&now)
    {
        close(*t, 0.25 * f64::from(*b) + 0.75 * f64::from(*c), "target");
    }
}

/// Layers wider than the units a row keeps in private memory (`CRITIC_CACHE`, 256 in
/// `shaders/critic.wgsl`) beside narrow ones: values, dV/dx and the regression's weight
/// gradient are still the host's, whichever path each layer takes.
#[test]
fn layers_wider_than_the_private_cache_match_the_host_critic() {
    for (inputs, hidden) in [(99, vec![64, 64]), (40, vec![3, 300]), (270, vec![5, 2])] {
        wide_critic_matches_the_host(inputs, &hidden);
    }
}

fn wide_critic_matches_the_host(inputs: usize, hidden: &[usize]) {
    let rows = 12;
    eprintln!("critic {inputs} -> {hidden:?}");
    let (mut critic, host, x) = critic_of_shape_and_rows(inputs, hidden, rows);
    let w = critic.n_inputs();
    let (values, dx) = critic.value_gradients(Network::Critic, &x).unwrap();
    let targets: Vec<f32> = (0..rows).map(|r| (r as f32 * 0.7).sin()).collect();
    let scale = 1.0 / rows as f32;
    critic.add_regression_gradient(&x, &targets, scale).unwrap();
    let gradient = critic.gradient().unwrap();
    let mut scratch = vec![0.0; host.n_params()];
    let mut expected = vec![0.0; host.n_params()];
    for (r, &target) in targets.iter().enumerate() {
        let xr = row(&x, r, w);
        let (v, g) = host.backward_with(&host.params, &xr, 1.0, &mut scratch);
        close(values[r], v, &format!("value of row {r}"));
        for k in 0..w {
            close(dx[r * w + k], g[k], &format!("dV/dx[{k}] of row {r}"));
        }
        let e = v - f64::from(target);
        host.backward_with(&host.params, &xr, 2.0 * e * f64::from(scale), &mut expected);
    }
    for (k, (&g, &e)) in gradient.iter().zip(&expected).enumerate() {
        close(g, e, &format!("d loss / d param {k}"));
    }
}

#[test]
fn bad_rows_are_refused() {
    let (mut critic, _, x) = critic_and_rows(3);
    let e = critic.values(Network::Critic, &x[1..]).unwrap_err();
    assert!(e.to_string().contains("whole rows"), "{e}");
    let e = critic
        .add_regression_gradient(&x, &[0.0; 2], 1.0)
        .unwrap_err();
    assert!(e.to_string().contains("targets"), "{e}");
    let empty = critic.values(Network::Critic, &[]).unwrap();
    assert!(empty.is_empty());
}

/// A critic whose row would run past lavapipe's loop cap in one invocation (a 300 -> 260
/// layer alone is 78,000 multiply-adds) is refused, naming the setting, instead of returning
/// values from loops the driver silently left.
#[test]
fn a_critic_past_the_loop_budget_is_refused() {
    let e = GpuCritic::new(common::gpu(), 300, &[260, 3], 21, 1e-2)
        .err()
        .expect("refused");
    let message = e.to_string();
    assert!(
        message.contains("loop iterations") && message.contains("critic_hidden"),
        "{message}"
    );
}

/// The regression's weight gradient sums over the rows inside one invocation per parameter: a
/// call with more rows than one invocation may loop over (lavapipe leaves loops after 65,535
/// iterations) is split into chunks whose sums continue, so every row still counts.
#[test]
fn regression_gradients_over_more_rows_than_one_invocation_may_loop_match_the_host() {
    let rows = 70_000;
    let (mut critic, host, x) = critic_of_shape_and_rows(2, &[2], rows);
    let w = critic.n_inputs();
    // Targets far below every value: every row's error has the same sign, so the bias
    // gradients add up without cancelling and a dropped row shows.
    let targets = vec![-100.0f32; rows];
    let scale = 1.0 / rows as f32;
    critic.add_regression_gradient(&x, &targets, scale).unwrap();
    let gradient = critic.gradient().unwrap();
    let mut expected = vec![0.0; host.n_params()];
    for (r, &target) in targets.iter().enumerate() {
        let xr = row(&x, r, w);
        let e = host.value_with(&host.params, &xr) - f64::from(target);
        host.backward_with(
            &host.params.clone(),
            &xr,
            2.0 * e * f64::from(scale),
            &mut expected,
        );
    }
    // Parameters: hidden W (2 x 2), hidden b (2), output W (1 x 2), output b (1).
    for k in [4, 5, 8] {
        let (g, e) = (f64::from(gradient[k]), expected[k]);
        assert!(
            (g - e).abs() <= 1e-3 * e.abs(),
            "bias gradient {k}: GPU {g} vs host {e}"
        );
    }
}
