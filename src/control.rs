//! Small optimal-control helpers on top of [`crate::jacobian`]: a discrete-time LQR gain by
//! Riccati iteration over the raw state.

use nalgebra::{DMatrix, DVector};

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
mod tests {
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
