//! LQR balancing of the cart-pole from per-step Jacobians.
//!
//! Linearises the step map at the upright equilibrium with `step_jacobians` (one GPU adjoint
//! batch), computes an LQR gain over the raw state, then balances the pole from a tilted start
//! on the GPU and compares with doing nothing.
//!
//! Run: `cargo run --release --example cartpole_lqr`

use std::sync::Arc;

use backdrive::engine::gpu::Gpu;
use backdrive::engine::layout::{BODY_STATE_LEN, Compiled};
use backdrive::grad::jacobian::step_jacobians;
use backdrive::{Model, Simulator, io::models};
use nalgebra::{DMatrix, DVector};

/// Slots of the raw state: cart is body slot 1, pole body slot 2.
const CART: usize = BODY_STATE_LEN;
const POLE: usize = 2 * BODY_STATE_LEN;

/// The pole's raw state rotated by `tilt` about the hinge (y axis) from upright.
fn upright_state(compiled: &Compiled, tilt: f32) -> Vec<f32> {
    let mut s = compiled.initial_state.clone();
    let anchor = glam::Vec3::new(0.0, 0.0, 1.5);
    let q = glam::Quat::from_rotation_y(std::f32::consts::PI + tilt);
    let centre = anchor + q * glam::Vec3::new(0.0, 0.0, -0.5);
    s[POLE..POLE + 3].copy_from_slice(&centre.to_array());
    s[POLE + 3..POLE + 7].copy_from_slice(&q.to_array());
    s
}

/// Result of a balancing run.
pub struct Outcome {
    /// Largest pole tilt from upright over the run (rad), with LQR.
    pub max_tilt_lqr: f32,
    /// Largest pole tilt from upright without control (rad).
    pub max_tilt_uncontrolled: f32,
    /// Final cart position with LQR (m).
    pub final_cart_lqr: f32,
}

fn tilt_of(state: &[f32]) -> f32 {
    // Upright: the pole centre is 0.5 m above the hinge.
    let dx = state[POLE] - state[CART];
    let dz = state[POLE + 2] - state[CART + 2];
    dx.atan2(dz)
}

fn simulate(
    gpu: Arc<Gpu>,
    model: &Model,
    start: &[f32],
    reference: &[f32],
    gain: Option<&DMatrix<f64>>,
    steps: usize,
) -> backdrive::Result<(f32, f32, f32)> {
    let mut sim = Simulator::new(gpu, model, 1)?;
    sim.write_state_raw(start)?;
    let mut max_tilt = 0.0f32;
    let mut state = start.to_vec();
    for _ in 0..steps {
        let u = match gain {
            Some(k) => {
                let dx = DVector::from_iterator(
                    state.len(),
                    state.iter().zip(reference).map(|(a, b)| f64::from(a - b)),
                );
                (-(k * dx))[0] as f32
            }
            None => 0.0,
        };
        sim.set_commands(&[u.clamp(-20.0, 20.0)])?;
        sim.step(1)?;
        state = sim.read_state_raw()?;
        max_tilt = max_tilt.max(tilt_of(&state).abs());
    }
    Ok((max_tilt, tilt_of(&state), state[CART]))
}

/// Linearises, designs the gain and runs both simulations.
pub fn run(gpu: Arc<Gpu>, verbose: bool) -> backdrive::Result<Outcome> {
    let model = models::builtin("cartpole")?;
    let compiled = Compiled::new(&model);
    let d = compiled.header.state_len as usize;

    // The equilibrium, with the solver's impulses settled by a few steps from exact upright.
    let mut sim = Simulator::new(gpu.clone(), &model, 1)?;
    sim.write_state_raw(&upright_state(&compiled, 0.0))?;
    sim.step(20)?;
    let reference = sim.read_state_raw()?;

    let t0 = std::time::Instant::now();
    let jac = step_jacobians(gpu.clone(), &model, &reference, &[0.0])?;
    if verbose {
        println!("  ({:.2} s for the Jacobians)", t0.elapsed().as_secs_f32());
    }
    let a = DMatrix::from_fn(d, d, |i, j| f64::from(jac.dx(0, i, j)));
    let b = DMatrix::from_fn(d, 1, |i, _| f64::from(jac.du(0, i, 0)));
    let mut q = DVector::zeros(d);
    for (slot, weight) in [
        (CART, 1.0),
        (CART + 7, 0.1),
        (POLE, 10.0),
        (POLE + 7, 1.0),
        (POLE + 11, 1.0),
    ] {
        q[slot] = weight;
    }
    let r = DVector::from_element(1, 0.01);
    let gain = lqr_gain(&a, &b, &q, &r, 400).ok_or_else(|| {
        backdrive::Error::InvalidInput("Riccati recursion became singular".into())
    })?;

    let start = upright_state(&compiled, 0.15);
    let steps = 400;
    let (max_tilt, _, cart) =
        simulate(gpu.clone(), &model, &start, &reference, Some(&gain), steps)?;
    let t0 = std::time::Instant::now();
    let (tilt_free, _, _) = simulate(gpu, &model, &start, &reference, None, steps)?;
    if verbose {
        println!(
            "  ({:.2} s for {steps} uncontrolled steps)",
            t0.elapsed().as_secs_f32()
        );
    }
    if verbose {
        println!("cart-pole LQR over the raw state ({d} dimensions), start tilted 0.15 rad");
        println!("  with LQR:   largest tilt {max_tilt:.3} rad, cart ends at {cart:.3} m");
        println!("  no control: largest tilt {tilt_free:.3} rad");
    }
    Ok(Outcome {
        max_tilt_lqr: max_tilt,
        max_tilt_uncontrolled: tilt_free,
        final_cart_lqr: cart,
    })
}

fn main() -> anyhow::Result<()> {
    let gpu = Arc::new(Gpu::from_env()?);
    println!("adapter: {}", gpu.describe());
    run(gpu, true)?;
    Ok(())
}

/// The LQR feedback gain `K` (`u = -K x`) for `x' = A x + B u` with cost
/// `sum x^T Q x + u^T R u`, from `iterations` steps of the Riccati recursion (the gain of a
/// finite horizon of that length, which converges to the infinite-horizon gain). `q` and `r`
/// are the diagonals of Q and R. Returns `None` if `R + B^T P B` becomes singular.
pub fn lqr_gain(
    a: &DMatrix<f64>,
    b: &DMatrix<f64>,
    q: &DVector<f64>,
    r: &DVector<f64>,
    iterations: usize,
) -> Option<DMatrix<f64>> {
    let q = DMatrix::from_diagonal(q);
    let r = DMatrix::from_diagonal(r);
    let mut p = q.clone();
    let mut gain = DMatrix::zeros(b.ncols(), a.ncols());
    for _ in 0..iterations {
        let s = &r + b.transpose() * &p * b;
        gain = s.lu().solve(&(b.transpose() * &p * a))?;
        p = &q + a.transpose() * &p * (a - b * &gain);
    }
    Some(gain)
}

#[cfg(test)]
mod lqr_tests {
    use super::*;

    #[test]
    fn double_integrator_gain_stabilises() {
        // x = (position, velocity), dt = 0.1.
        let a = DMatrix::from_row_slice(2, 2, &[1.0, 0.1, 0.0, 1.0]);
        let b = DMatrix::from_row_slice(2, 1, &[0.005, 0.1]);
        let k = lqr_gain(
            &a,
            &b,
            &DVector::from_element(2, 1.0),
            &DVector::from_element(1, 0.1),
            500,
        )
        .unwrap();
        let mut x = DVector::from_vec(vec![1.0, 0.0]);
        for _ in 0..200 {
            let u = -(&k * &x);
            x = &a * &x + &b * u;
        }
        assert!(x.norm() < 1e-3, "{x}");
        assert!(k[(0, 0)] > 0.0 && k[(0, 1)] > 0.0);
    }
}
