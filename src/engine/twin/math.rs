//! Small vector and quaternion helpers generic over `f32` and `f64`, mirroring the WGSL
//! built-ins the kernels use.

use num_traits::Float;
use std::ops::{Add, AddAssign, Mul, Neg, Sub};

/// Scalar type of the twins: `f32` to compare with the GPU, `f64` for finite differences.
pub trait Real: Float + Default + std::fmt::Debug + AddAssign + 'static {
    /// Converts a model constant.
    fn of(x: f32) -> Self;
}
impl Real for f32 {
    fn of(x: f32) -> Self {
        x
    }
}
impl Real for f64 {
    fn of(x: f32) -> Self {
        x as f64
    }
}

/// A 3-vector.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct V3<T> {
    pub x: T,
    pub y: T,
    pub z: T,
}

impl<T: Real> V3<T> {
    pub fn new(x: T, y: T, z: T) -> Self {
        V3 { x, y, z }
    }
    pub fn zero() -> Self {
        Self::new(T::zero(), T::zero(), T::zero())
    }
    pub fn dot(self, o: Self) -> T {
        self.x * o.x + self.y * o.y + self.z * o.z
    }
    pub fn cross(self, o: Self) -> Self {
        Self::new(
            self.y * o.z - self.z * o.y,
            self.z * o.x - self.x * o.z,
            self.x * o.y - self.y * o.x,
        )
    }
    pub fn length(self) -> T {
        self.dot(self).sqrt()
    }
    /// Component-wise product.
    pub fn mul_elem(self, o: Self) -> Self {
        Self::new(self.x * o.x, self.y * o.y, self.z * o.z)
    }
    /// Component `k` (0, 1, 2).
    pub fn get(self, k: usize) -> T {
        [self.x, self.y, self.z][k]
    }
}

impl<T: Real> Add for V3<T> {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self::new(self.x + o.x, self.y + o.y, self.z + o.z)
    }
}
impl<T: Real> Sub for V3<T> {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self::new(self.x - o.x, self.y - o.y, self.z - o.z)
    }
}
impl<T: Real> Neg for V3<T> {
    type Output = Self;
    fn neg(self) -> Self {
        Self::new(-self.x, -self.y, -self.z)
    }
}
impl<T: Real> Mul<T> for V3<T> {
    type Output = Self;
    fn mul(self, s: T) -> Self {
        Self::new(self.x * s, self.y * s, self.z * s)
    }
}

/// A quaternion (x, y, z, w).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Q<T> {
    pub v: V3<T>,
    pub w: T,
}

impl<T: Real> Q<T> {
    pub fn new(v: V3<T>, w: T) -> Self {
        Q { v, w }
    }
    pub fn compose(self, b: Self) -> Self {
        Q::new(
            b.v * self.w + self.v * b.w + self.v.cross(b.v),
            self.w * b.w - self.v.dot(b.v),
        )
    }
    pub fn conj(self) -> Self {
        Q::new(-self.v, self.w)
    }
    pub fn rotate(self, v: V3<T>) -> V3<T> {
        let two = T::of(2.0);
        let t = self.v.cross(v) * two;
        v + t * self.w + self.v.cross(t)
    }
    pub fn normalize(self) -> Self {
        let n = (self.v.dot(self.v) + self.w * self.w).sqrt();
        Q::new(self.v * (T::one() / n), self.w / n)
    }
    /// Rotation vector, the shorter way round (mirrors `quat_log` in common.wgsl).
    pub fn log(self) -> V3<T> {
        let s = if self.w < T::zero() {
            -T::one()
        } else {
            T::one()
        };
        let v = self.v * s;
        let w = self.w * s;
        let n = v.length();
        let eps = T::of(1.0e-6);
        let two = T::of(2.0);
        let scale = if n > eps {
            two * n.atan2(w) / n.max(eps)
        } else {
            two / w
        };
        v * scale
    }
}

/// `R diag(inv_inertia) R^T v` (mirrors `inverse_inertia_mul`).
pub fn inverse_inertia_mul<T: Real>(q: Q<T>, inv_inertia: V3<T>, v: V3<T>) -> V3<T> {
    q.rotate(inv_inertia.mul_elem(q.conj().rotate(v)))
}

/// WGSL `select(f, t, cond)`.
pub fn select<T>(f: T, t: T, cond: bool) -> T {
    if cond { t } else { f }
}

// ---- Adjoints (vector-Jacobian products) of the helpers above. Each returns the adjoints of
// the inputs given the adjoint `g` of the output; they mirror the `*_adjoint` WGSL helpers.

impl<T: Real> Q<T> {
    /// Adjoints of `a` and `b` in `a.compose(b)`.
    pub fn mul_adjoint(a: Self, b: Self, g: Self) -> (Self, Self) {
        let da = Q::new(
            g.v * b.w + b.v.cross(g.v) - b.v * g.w,
            b.v.dot(g.v) + b.w * g.w,
        );
        let db = Q::new(
            g.v * a.w + g.v.cross(a.v) - a.v * g.w,
            a.v.dot(g.v) + a.w * g.w,
        );
        (da, db)
    }

    /// Adjoints of `q` and `v` in `q.rotate(v)`.
    pub fn rotate_adjoint(q: Self, v: V3<T>, g: V3<T>) -> (Self, V3<T>) {
        let two = T::of(2.0);
        let u = q.v;
        let t = u.cross(v) * two;
        let dw = g.dot(t);
        let dt = g * q.w + g.cross(u);
        let du = t.cross(g) + v.cross(dt) * two;
        let dv = g + dt.cross(u) * two;
        (Q::new(du, dw), dv)
    }

    /// Adjoint of `q` in `q.log()`.
    pub fn log_adjoint(q: Self, g: V3<T>) -> Self {
        let s = if q.w < T::zero() { -T::one() } else { T::one() };
        let v = q.v * s;
        let w = q.w * s;
        let n = v.length();
        let eps = T::of(1.0e-6);
        let two = T::of(2.0);
        let (scale, dscale_dn, dscale_dw) = if n > eps {
            let at = n.atan2(w);
            let r2 = n * n + w * w;
            (
                two * at / n,
                two * (w / r2) / n - two * at / (n * n),
                two * (-n / r2) / n,
            )
        } else {
            (two / w, T::zero(), -two / (w * w))
        };
        let dscale = v.dot(g);
        let mut dv = g * scale;
        if n > eps {
            dv = dv + v * (dscale * dscale_dn / n);
        }
        let dw = dscale * dscale_dw;
        Q::new(dv * s, dw * s)
    }

    /// Adjoint of the input of `normalize`, given the normalised output `out`.
    pub fn normalize_adjoint(input: Self, out: Self, g: Self) -> Self {
        let n = (input.v.dot(input.v) + input.w * input.w).sqrt();
        let proj = out.v.dot(g.v) + out.w * g.w;
        Q::new(
            (g.v - out.v * proj) * (T::one() / n),
            (g.w - out.w * proj) / n,
        )
    }

    pub fn plus(self, o: Self) -> Self {
        Q::new(self.v + o.v, self.w + o.w)
    }
}

/// Adjoints of `q`, `inv_inertia` and `v` in [`inverse_inertia_mul`].
pub fn inverse_inertia_mul_adjoint<T: Real>(
    q: Q<T>,
    inv_inertia: V3<T>,
    v: V3<T>,
    g: V3<T>,
) -> (Q<T>, V3<T>, V3<T>) {
    let local = q.conj().rotate(v);
    let scaled = inv_inertia.mul_elem(local);
    let (dq_outer, dscaled) = Q::rotate_adjoint(q, scaled, g);
    let dinv = dscaled.mul_elem(local);
    let dlocal = dscaled.mul_elem(inv_inertia);
    let (dqc, dv) = Q::rotate_adjoint(q.conj(), v, dlocal);
    (dq_outer.plus(dqc.conj()), dinv, dv)
}
