//! The standard (mu/mu_w, lambda)-CMA-ES (Hansen, "The CMA Evolution Strategy: A Tutorial",
//! 2016): weighted recombination, cumulative step-size adaptation, rank-one and rank-mu updates
//! of the covariance matrix, with an eigendecomposition (nalgebra) after every generation.
//!
//! Ask-and-tell interface, so that a whole population can be evaluated at once (for example as
//! the instances of one [`crate::grad::rollout::Rollout`]). Written here rather than taken from the
//! `cmaes` crate (0.2.2): that crate pins its own nalgebra and plotting stack and has had no
//! release in years; the algorithm is short and is tested below on known functions.

use nalgebra::{DMatrix, DVector, SymmetricEigen};

pub use crate::learn::random::Rng;

/// The state of a CMA-ES run.
#[derive(Clone, Debug)]
pub struct CmaEs {
    n: usize,
    lambda: usize,
    mu: usize,
    weights: Vec<f64>,
    mueff: f64,
    cc: f64,
    cs: f64,
    c1: f64,
    cmu: f64,
    damps: f64,
    chi_n: f64,
    mean: DVector<f64>,
    sigma: f64,
    pc: DVector<f64>,
    ps: DVector<f64>,
    c: DMatrix<f64>,
    b: DMatrix<f64>,
    d: DVector<f64>,
    inv_sqrt_c: DMatrix<f64>,
    generation: u32,
    evaluations: u64,
    rng: Rng,
    asked: Vec<DVector<f64>>,
    best: Option<(Vec<f64>, f64)>,
}

impl CmaEs {
    /// Starts from `mean` with step size `sigma`, the default population
    /// `4 + floor(3 ln n)`, and a generator seeded with `seed`.
    pub fn new(mean: &[f64], sigma: f64, seed: u64) -> Self {
        let n = mean.len().max(1);
        let lambda = 4 + (3.0 * (n as f64).ln()).floor() as usize;
        Self::with_population(mean, sigma, lambda, seed)
    }

    /// Like [`CmaEs::new`] with `lambda` candidates per generation (at least 2).
    pub fn with_population(mean: &[f64], sigma: f64, lambda: usize, seed: u64) -> Self {
        let n = mean.len();
        assert!(n > 0, "CMA-ES needs at least one dimension");
        let lambda = lambda.max(2);
        let mu = lambda / 2;
        let raw: Vec<f64> = (1..=mu)
            .map(|i| (mu as f64 + 0.5).ln() - (i as f64).ln())
            .collect();
        let sum: f64 = raw.iter().sum();
        let weights: Vec<f64> = raw.iter().map(|w| w / sum).collect();
        let mueff = 1.0 / weights.iter().map(|w| w * w).sum::<f64>();
        let nf = n as f64;
        let cc = (4.0 + mueff / nf) / (nf + 4.0 + 2.0 * mueff / nf);
        let cs = (mueff + 2.0) / (nf + mueff + 5.0);
        let c1 = 2.0 / ((nf + 1.3).powi(2) + mueff);
        let cmu = (1.0 - c1).min(2.0 * (mueff - 2.0 + 1.0 / mueff) / ((nf + 2.0).powi(2) + mueff));
        let damps = 1.0 + 2.0 * (((mueff - 1.0) / (nf + 1.0)).sqrt() - 1.0).max(0.0) + cs;
        let chi_n = nf.sqrt() * (1.0 - 1.0 / (4.0 * nf) + 1.0 / (21.0 * nf * nf));
        CmaEs {
            n,
            lambda,
            mu,
            weights,
            mueff,
            cc,
            cs,
            c1,
            cmu,
            damps,
            chi_n,
            mean: DVector::from_column_slice(mean),
            sigma,
            pc: DVector::zeros(n),
            ps: DVector::zeros(n),
            c: DMatrix::identity(n, n),
            b: DMatrix::identity(n, n),
            d: DVector::from_element(n, 1.0),
            inv_sqrt_c: DMatrix::identity(n, n),
            generation: 0,
            evaluations: 0,
            rng: Rng::new(seed),
            asked: Vec::new(),
            best: None,
        }
    }

    /// Candidates per generation.
    pub fn population(&self) -> usize {
        self.lambda
    }

    /// The current mean.
    pub fn mean(&self) -> Vec<f64> {
        self.mean.iter().copied().collect()
    }

    /// Candidates evaluated so far (told).
    pub fn evaluations(&self) -> u64 {
        self.evaluations
    }

    /// The best candidate told so far and its fitness.
    pub fn best(&self) -> Option<(&[f64], f64)> {
        self.best.as_ref().map(|(x, f)| (x.as_slice(), *f))
    }

    /// Samples a generation: `lambda` candidates `m + sigma B D z`.
    pub fn ask(&mut self) -> Vec<Vec<f64>> {
        self.asked.clear();
        let mut out = Vec::with_capacity(self.lambda);
        for _ in 0..self.lambda {
            let z = DVector::from_fn(self.n, |_, _| self.rng.normal());
            let y = &self.b * z.component_mul(&self.d);
            out.push((&self.mean + &y * self.sigma).iter().copied().collect());
            self.asked.push(y);
        }
        out
    }

    /// Updates the distribution from the fitness (to minimise) of the candidates of the last
    /// [`CmaEs::ask`], in the same order. A non-finite fitness ranks last.
    pub fn tell(&mut self, fitness: &[f64]) {
        assert_eq!(
            fitness.len(),
            self.asked.len(),
            "tell needs one fitness per asked candidate"
        );
        let key = |f: f64| if f.is_finite() { f } else { f64::INFINITY };
        let mut order: Vec<usize> = (0..fitness.len()).collect();
        order.sort_by(|&a, &b| key(fitness[a]).total_cmp(&key(fitness[b])));
        let best = order[0];
        if fitness[best].is_finite() && self.best.as_ref().is_none_or(|(_, f)| fitness[best] < *f) {
            let x = &self.mean + &self.asked[best] * self.sigma;
            self.best = Some((x.iter().copied().collect(), fitness[best]));
        }
        self.evaluations += fitness.len() as u64;
        self.generation += 1;

        let n = self.n as f64;
        let mut ymean = DVector::zeros(self.n);
        for (w, &i) in self.weights.iter().zip(&order[..self.mu]) {
            ymean += &self.asked[i] * *w;
        }
        self.mean += &ymean * self.sigma;

        // Cumulation: evolution paths.
        let cs = self.cs;
        self.ps = &self.ps * (1.0 - cs)
            + (&self.inv_sqrt_c * &ymean) * (cs * (2.0 - cs) * self.mueff).sqrt();
        let ps_norm = self.ps.norm();
        let hsig =
            ps_norm / (1.0 - (1.0 - cs).powi(2 * self.generation as i32)).sqrt() / self.chi_n
                < 1.4 + 2.0 / (n + 1.0);
        let hsig = if hsig { 1.0 } else { 0.0 };
        let cc = self.cc;
        self.pc = &self.pc * (1.0 - cc) + &ymean * (hsig * (cc * (2.0 - cc) * self.mueff).sqrt());

        // Covariance: rank-one and rank-mu updates.
        let mut rank_mu = DMatrix::zeros(self.n, self.n);
        for (w, &i) in self.weights.iter().zip(&order[..self.mu]) {
            let y = &self.asked[i];
            rank_mu += y * y.transpose() * *w;
        }
        let rank_one = &self.pc * self.pc.transpose();
        self.c = &self.c * (1.0 - self.c1 - self.cmu)
            + (rank_one + &self.c * ((1.0 - hsig) * cc * (2.0 - cc))) * self.c1
            + rank_mu * self.cmu;

        // Step size.
        self.sigma *= ((cs / self.damps) * (ps_norm / self.chi_n - 1.0)).exp();

        self.decompose();
    }

    fn decompose(&mut self) {
        // Enforce symmetry, then C = B diag(D^2) B^T.
        let c = (&self.c + self.c.transpose()) * 0.5;
        self.c = c.clone();
        let eig = SymmetricEigen::new(c);
        let d2 = eig.eigenvalues.map(|v| v.max(1e-300));
        self.d = d2.map(f64::sqrt);
        self.b = eig.eigenvectors;
        let inv_d = self.d.map(|v| 1.0 / v);
        self.inv_sqrt_c = &self.b * DMatrix::from_diagonal(&inv_d) * self.b.transpose();
    }

    /// Minimises `f` (one candidate at a time) until the best fitness is below `target` or
    /// `max_evaluations` candidates were evaluated; returns the best candidate and fitness.
    pub fn minimize(
        &mut self,
        mut f: impl FnMut(&[f64]) -> f64,
        target: f64,
        max_evaluations: u64,
    ) -> (Vec<f64>, f64) {
        while self.evaluations < max_evaluations {
            let xs = self.ask();
            let fit: Vec<f64> = xs.iter().map(|x| f(x)).collect();
            self.tell(&fit);
            if self.best().is_some_and(|(_, b)| b < target) {
                break;
            }
        }
        self.best
            .clone()
            .unwrap_or_else(|| (self.mean(), f64::INFINITY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sphere(x: &[f64]) -> f64 {
        x.iter().map(|v| v * v).sum()
    }

    fn rosenbrock(x: &[f64]) -> f64 {
        x.windows(2)
            .map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2))
            .sum()
    }

    #[test]
    fn sphere_reaches_1e_8() {
        for n in [2, 5, 10] {
            let mut es = CmaEs::new(&vec![3.0; n], 1.0, 7);
            let (x, f) = es.minimize(sphere, 1e-8, 20_000);
            assert!(f < 1e-8, "n = {n}: f = {f} after {}", es.evaluations());
            assert!(x.iter().all(|v| v.abs() < 1e-3));
        }
    }

    #[test]
    fn rosenbrock_reaches_1e_8() {
        for (n, seed) in [(2, 1), (4, 2), (6, 3)] {
            let mut es = CmaEs::new(&vec![0.0; n], 0.5, seed);
            let (x, f) = es.minimize(rosenbrock, 1e-8, 100_000);
            assert!(f < 1e-8, "n = {n}: f = {f} after {}", es.evaluations());
            assert!(x.iter().all(|v| (v - 1.0).abs() < 1e-3), "{x:?}");
        }
    }

    #[test]
    fn ill_conditioned_ellipsoid_is_learned() {
        // The covariance must adapt to a condition number of 1e6.
        let n = 6;
        let ellipsoid = |x: &[f64]| {
            x.iter()
                .enumerate()
                .map(|(i, v)| 1e6f64.powf(i as f64 / (n - 1) as f64) * v * v)
                .sum::<f64>()
        };
        let mut es = CmaEs::new(&vec![1.0; n], 1.0, 11);
        let (_, f) = es.minimize(ellipsoid, 1e-8, 50_000);
        assert!(f < 1e-8, "f = {f} after {}", es.evaluations());
    }

    #[test]
    fn seeded_runs_repeat_and_weights_sum_to_one() {
        let mut a = CmaEs::new(&[1.0, 2.0, 3.0], 0.3, 5);
        let mut b = CmaEs::new(&[1.0, 2.0, 3.0], 0.3, 5);
        assert_eq!(a.ask(), b.ask());
        assert!((a.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(a.population(), 7);
        let mut r = Rng::new(3);
        let xs: Vec<f64> = (0..20_000).map(|_| r.normal()).collect();
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(m.abs() < 0.03 && (v - 1.0).abs() < 0.05, "{m} {v}");
    }
}
