//! Per-step Jacobians from the GPU adjoint against central differences of the f64 twin.

mod common;

use backdrive::engine::layout::Compiled;
use backdrive::engine::twin::Instance;
use backdrive::grad::jacobian::step_jacobians;
use backdrive::io::models;

#[test]
fn cartpole_step_jacobians_match_finite_differences() {
    let model = models::builtin("cartpole").unwrap();
    let c = Compiled::new(&model);
    let d = c.header.state_len as usize;
    // Two points along a pushed trajectory.
    let mut states = Vec::new();
    let mut commands = Vec::new();
    let mut x = Instance::<f64>::new(&c);
    for (steps, u) in [(5, 4.0f32), (30, -6.0)] {
        x.commands[0] = f64::from(u);
        for _ in 0..steps {
            x.step();
        }
        states.extend(x.state.iter().map(|&v| v as f32));
        commands.push(u);
    }
    let jac = step_jacobians(common::gpu(), &model, &states, &commands).unwrap();
    let mut worst: f64 = 0.0;
    for p in 0..2 {
        let base: Vec<f64> = states[p * d..(p + 1) * d]
            .iter()
            .map(|&v| v.into())
            .collect();
        let u = f64::from(commands[p]);
        let eval = |state: &[f64], u: f64| {
            let mut i = Instance::<f64>::new(&c);
            i.state = state.to_vec();
            i.commands[0] = u;
            i.step();
            i.state
        };
        let column = |input: Option<usize>| -> Vec<f64> {
            let h = 1e-6;
            let (mut sp, mut sm, mut up, mut um) = (base.clone(), base.clone(), u, u);
            match input {
                Some(j) => {
                    sp[j] += h;
                    sm[j] -= h;
                }
                None => {
                    up += h;
                    um -= h;
                }
            }
            let (fp, fm) = (eval(&sp, up), eval(&sm, um));
            fp.iter()
                .zip(&fm)
                .map(|(a, b)| (a - b) / (2.0 * h))
                .collect()
        };
        // Body columns (positions, orientations, velocities) and the command.
        for j in 13..(c.header.n_bodies as usize * 13) {
            let fd = column(Some(j));
            for (out, v) in fd.iter().enumerate() {
                let err = (f64::from(jac.dx(p, out, j)) - v).abs() / (1.0 + v.abs());
                worst = worst.max(err);
            }
        }
        let fd = column(None);
        for (out, v) in fd.iter().enumerate() {
            let err = (f64::from(jac.du(p, out, 0)) - v).abs() / (1.0 + v.abs());
            worst = worst.max(err);
        }
        for (a, b) in jac.next_state[p * d..(p + 1) * d]
            .iter()
            .zip(eval(&base, u))
        {
            assert!((f64::from(*a) - b).abs() < 1e-4 * (1.0 + b.abs()));
        }
    }
    println!("worst Jacobian entry error {worst:.2e}");
    assert!(worst < 1e-3, "{worst}");
}
