//! Twin of `shaders/fluid.wgsl`: MuJoCo's inertia-box fluid forces (the formulas are written
//! out there).

use super::math::{Q, Real, V3};
use super::{Adjoint, Instance};
use crate::engine::layout::{BODY_PARAM_LEN, stride};

/// The drag coefficients of a box with these sides in the header's fluid.
struct FluidCoefficients<T> {
    linear: T,
    angular: T,
    quadratic_force: V3<T>,
    quadratic_torque: V3<T>,
}

fn fluid_coefficients<T: Real>(s: &Instance<'_, T>, sides: V3<T>) -> FluidCoefficients<T> {
    let rho = T::of(s.hdr.fluid_density);
    let beta = T::of(s.hdr.fluid_viscosity);
    let d = (sides.x + sides.y + sides.z) / T::of(3.0);
    let pi = T::of(std::f32::consts::PI);
    let s4 = sides.mul_elem(sides).mul_elem(sides).mul_elem(sides);
    let half_rho = T::of(0.5) * rho;
    FluidCoefficients {
        linear: T::of(3.0) * pi * beta * d,
        angular: pi * beta * d * d * d,
        quadratic_force: V3::new(sides.y * sides.z, sides.x * sides.z, sides.x * sides.y)
            * half_rho,
        quadratic_torque: sides.mul_elem(V3::new(s4.y + s4.z, s4.x + s4.z, s4.x + s4.y))
            * (rho / T::of(64.0)),
    }
}

/// `-(linear + quadratic |u|) u`, component by component.
fn drag<T: Real>(linear: T, quadratic: V3<T>, u: V3<T>) -> V3<T> {
    let abs = V3::new(u.x.abs(), u.y.abs(), u.z.abs());
    -(u.mul_elem(quadratic.mul_elem(abs) + V3::new(linear, linear, linear)))
}

/// Its derivative times `g`: `-(linear + 2 quadratic |u|) g`.
fn drag_adjoint<T: Real>(linear: T, quadratic: V3<T>, u: V3<T>, g: V3<T>) -> V3<T> {
    let abs = V3::new(u.x.abs(), u.y.abs(), u.z.abs());
    -(g.mul_elem(quadratic.mul_elem(abs) * T::of(2.0) + V3::new(linear, linear, linear)))
}

struct FluidBody<T> {
    b: u32,
    c: FluidCoefficients<T>,
    q: Q<T>,
    v: V3<T>,
    w: V3<T>,
    v_local: V3<T>,
    w_local: V3<T>,
}

fn fluid_body<T: Real>(s: &Instance<'_, T>, k: u32) -> FluidBody<T> {
    let rec = s.hdr.off_fluid + k * stride::FLUID as u32;
    let b = s.model_u32(rec);
    let c = fluid_coefficients(s, s.model_vec3(rec + 1));
    let q = s.body_orientation(b);
    let v = s.body_velocity(b);
    let w = s.body_angular_velocity(b);
    FluidBody {
        b,
        c,
        q,
        v,
        w,
        v_local: q.conj().rotate(v),
        w_local: q.conj().rotate(w),
    }
}

pub fn fluid_forces_forward<T: Real>(s: &mut Instance<'_, T>) {
    let dt = T::of(s.hdr.dt);
    for k in 0..s.hdr.n_fluid {
        let f = fluid_body(s, k);
        let force = drag(f.c.linear, f.c.quadratic_force, f.v_local);
        let torque = drag(f.c.angular, f.c.quadratic_torque, f.w_local);
        let slot = Instance::<T>::body_slot(f.b);
        let dv = f.q.rotate(force) * (dt * s.body_inverse_mass(f.b));
        let dw = f.q.rotate(s.body_inverse_inertia(f.b).mul_elem(torque)) * dt;
        s.state_set_vec3(slot + 7, f.v + dv);
        s.state_set_vec3(slot + 10, f.w + dw);
    }
}

/// Adjoint; `s` holds the stage's input (the step's start).
pub fn fluid_forces_adjoint<T: Real>(s: &mut Instance<'_, T>, adj: &mut Adjoint<T>) {
    let dt = T::of(s.hdr.dt);
    for k in 0..s.hdr.n_fluid {
        let f = fluid_body(s, k);
        let force = drag(f.c.linear, f.c.quadratic_force, f.v_local);
        let torque = drag(f.c.angular, f.c.quadratic_torque, f.w_local);
        let slot = Instance::<T>::body_slot(f.b);
        let inv_mass = s.body_inverse_mass(f.b);
        let inv_inertia = s.body_inverse_inertia(f.b);
        let g_v = adj.state_vec3(slot + 7);
        let g_w = adj.state_vec3(slot + 10);

        // v' = v + dt m^-1 R f(R^T v)
        let force_world = f.q.rotate(force);
        let (outer_vq, outer_v) = Q::rotate_adjoint(f.q, force, g_v * (dt * inv_mass));
        let g_v_local = drag_adjoint(f.c.linear, f.c.quadratic_force, f.v_local, outer_v);
        let (inner_vq, inner_v) = Q::rotate_adjoint(f.q.conj(), f.v, g_v_local);
        // w' = w + dt R I^-1 t(R^T w)
        let scaled = inv_inertia.mul_elem(torque);
        let (outer_wq, outer_w) = Q::rotate_adjoint(f.q, scaled, g_w * dt);
        let g_w_local = drag_adjoint(
            f.c.angular,
            f.c.quadratic_torque,
            f.w_local,
            outer_w.mul_elem(inv_inertia),
        );
        let (inner_wq, inner_w) = Q::rotate_adjoint(f.q.conj(), f.w, g_w_local);

        adj.state_add_vec3(slot + 7, inner_v);
        adj.state_add_vec3(slot + 10, inner_w);
        let dq = outer_vq
            .plus(inner_vq.conj())
            .plus(outer_wq)
            .plus(inner_wq.conj());
        adj.state_add_quat(slot + 3, dq);
        let p = f.b * BODY_PARAM_LEN as u32;
        adj.param_add(p, dt * g_v.dot(force_world));
        adj.param_add_vec3(p + 1, outer_w.mul_elem(torque));
    }
}
