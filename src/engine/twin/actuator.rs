//! Twin of `shaders/actuator.wgsl`.

use super::Instance;
use super::joint::{joint_axis, joint_record};
use super::math::{Real, inverse_inertia_mul, select};
use super::solver::{RowJacobian, row_write};

pub fn servo_rows_forward<T: Real>(s: &mut Instance<'_, T>) {
    let h = s.hdr;
    let dt = T::of(h.dt);
    for sv in 0..h.n_servo {
        let rec = h.off_servo + sv * 4;
        let a = s.model_u32(rec);
        let ax = joint_axis(s, s.model_u32(rec + 1), s.model_u32(rec + 2));
        let velocity_servo = s.model_u32(rec + 3) == 1;
        let p = h.p_actuator + a * 3;
        let gain = s.param(p);
        let max_force = s.param(p + 1);
        let max_velocity = s.param(p + 2);
        let u = s.commands[a as usize];
        let target = select(gain * (u - ax.coordinate), u, velocity_servo)
            .max(-max_velocity)
            .min(max_velocity);
        let bound = max_force * dt;
        row_write(
            s,
            h.row_servo + sv,
            ax.jac,
            -target,
            -bound,
            bound,
            T::zero(),
            T::one(),
            T::zero(),
        );
    }
}

/// Twin of `apply_joint_impulse`.
fn apply_joint_impulse<T: Real>(s: &mut Instance<'_, T>, j: u32, jac: RowJacobian<T>, impulse: T) {
    let jrec = joint_record(s, j);
    let ba = s.model_u32(jrec);
    let bb = s.model_u32(jrec + 1);
    let sa = Instance::<T>::body_slot(ba) + 7;
    let sb = Instance::<T>::body_slot(bb) + 7;
    let qa = s.body_orientation(ba);
    let qb = s.body_orientation(bb);
    let v = s.state_vec3(sa) + jac.lin_a * (impulse * s.body_inverse_mass(ba));
    s.state_set_vec3(sa, v);
    let w = s.state_vec3(sa + 3)
        + inverse_inertia_mul(qa, s.body_inverse_inertia(ba), jac.ang_a) * impulse;
    s.state_set_vec3(sa + 3, w);
    let v = s.state_vec3(sb) + jac.lin_b * (impulse * s.body_inverse_mass(bb));
    s.state_set_vec3(sb, v);
    let w = s.state_vec3(sb + 3)
        + inverse_inertia_mul(qb, s.body_inverse_inertia(bb), jac.ang_b) * impulse;
    s.state_set_vec3(sb + 3, w);
}

/// Mirrors `AFFINE_LAW_HEAD`: the words of an affine law before its terms.
const AFFINE_LAW_HEAD: u32 = 13;
/// Mirrors `NO_ACTIVATION`: the activation word of a law without activation.
const NO_ACTIVATION: u32 = u32::MAX;

/// Mirrors `struct AffineForce`: the command, the force before and after its clamp.
struct AffineForce<T> {
    u: T,
    raw: T,
    force: T,
}

fn affine_force<T: Real>(s: &Instance<'_, T>, law: u32, a: u32) -> AffineForce<T> {
    let mut length = T::zero();
    for t in 0..s.model_u32(law) {
        let term = law + AFFINE_LAW_HEAD + t * 3;
        let q = joint_axis(s, s.model_u32(term), s.model_u32(term + 1)).coordinate;
        length += s.model_f32(term + 2) * q;
    }
    // A tendon spring's record has no command (a = n_commands).
    let u = s.commands.get(a as usize).copied().unwrap_or(T::zero());
    let clamped = u.max(s.model_f32(law + 4)).min(s.model_f32(law + 5));
    let activation = s.model_u32(law + 8);
    let drive = if activation != NO_ACTIVATION {
        s.state[activation as usize]
    } else {
        clamped
    };
    let raw = s.model_f32(law + 1) * drive + s.model_f32(law + 2) + s.model_f32(law + 3) * length;
    let force = raw.max(s.model_f32(law + 6)).min(s.model_f32(law + 7));
    AffineForce { u, raw, force }
}

/// Mirrors `struct ForceTerm`: a force record's transmission term.
struct ForceTerm<T> {
    j: u32,
    k: u32,
    c: T,
}

/// Twin of `force_term`.
fn force_term<T: Real>(s: &Instance<'_, T>, rec: u32, law: u32, t: u32) -> ForceTerm<T> {
    if law == 0 {
        return ForceTerm {
            j: s.model_u32(rec + 1),
            k: s.model_u32(rec + 2),
            c: T::one(),
        };
    }
    let term = law + AFFINE_LAW_HEAD + t * 3;
    ForceTerm {
        j: s.model_u32(term),
        k: s.model_u32(term + 1),
        c: s.model_f32(term + 2),
    }
}

/// Twin of `force_record_force`.
fn force_record_force<T: Real>(s: &Instance<'_, T>, a: u32, law: u32) -> AffineForce<T> {
    if law == 0 {
        let max_force = s.param(s.hdr.p_actuator + a * 3 + 1);
        let u = s.commands[a as usize];
        return AffineForce {
            u,
            raw: u,
            force: u.max(-max_force).min(max_force),
        };
    }
    affine_force(s, law, a)
}

/// The number of terms of a force record.
fn force_terms<T: Real>(s: &Instance<'_, T>, law: u32) -> u32 {
    if law == 0 { 1 } else { s.model_u32(law) }
}

pub fn force_actuators_forward<T: Real>(s: &mut Instance<'_, T>) {
    let h = s.hdr;
    let dt = T::of(h.dt);
    for f in 0..h.n_force {
        let rec = h.off_force + f * 4;
        let a = s.model_u32(rec);
        let law = s.model_u32(rec + 3);
        let force = force_record_force(s, a, law).force;
        for t in 0..force_terms(s, law) {
            let term = force_term(s, rec, law, t);
            let ax = joint_axis(s, term.j, term.k);
            apply_joint_impulse(s, term.j, ax.jac, term.c * force * dt);
        }
    }
}

pub fn servo_rows_adjoint<T: Real>(s: &mut Instance<'_, T>, adj: &mut super::Adjoint<T>) {
    use super::joint::joint_axis_adjoint;
    use super::solver::row_write_adjoint;
    let h = s.hdr;
    let dt = T::of(h.dt);
    for sv in (0..h.n_servo).rev() {
        let rec = h.off_servo + sv * 4;
        let a = s.model_u32(rec);
        let (j, k) = (s.model_u32(rec + 1), s.model_u32(rec + 2));
        let ax = joint_axis(s, j, k);
        let velocity_servo = s.model_u32(rec + 3) == 1;
        let p = h.p_actuator + a * 3;
        let gain = s.param(p);
        let max_velocity = s.param(p + 2);
        let u = s.commands[a as usize];
        let (d_jac, [d_bias, d_lo, d_hi, _]) =
            row_write_adjoint(s, adj, h.row_servo + sv, ax.jac, T::one(), T::zero());
        // bound = max_force * dt; lo = -bound, hi = bound
        adj.param_add(p + 1, (d_hi - d_lo) * dt);
        // target = clamp(raw, -max_velocity, max_velocity); bias = -target
        let raw = select(gain * (u - ax.coordinate), u, velocity_servo);
        let d_target = -d_bias;
        let above = raw.max(-max_velocity);
        let d_above = select(T::zero(), d_target, above < max_velocity);
        let d_raw = select(T::zero(), d_above, raw > -max_velocity);
        adj.param_add(p + 2, (d_target - d_above) - (d_above - d_raw));
        let position = select(T::one(), T::zero(), velocity_servo);
        adj.param_add(p, d_raw * (u - ax.coordinate) * position);
        adj.commands[a as usize] += d_raw * select(gain, T::one(), velocity_servo);
        let d_coordinate = -d_raw * gain * position;
        joint_axis_adjoint(s, adj, j, k, d_jac, d_coordinate);
    }
}

/// Twin of `apply_joint_impulse_adjoint`: returns the impulse's adjoint.
fn apply_joint_impulse_adjoint<T: Real>(
    s: &Instance<'_, T>,
    adj: &mut super::Adjoint<T>,
    j: u32,
    k: u32,
    impulse: T,
) -> T {
    use super::joint::joint_axis_adjoint;
    use super::math::inverse_inertia_mul_adjoint;
    use crate::engine::layout::BODY_PARAM_LEN;
    let ax = joint_axis(s, j, k);
    let jrec = joint_record(s, j);
    let ba = s.model_u32(jrec);
    let bb = s.model_u32(jrec + 1);
    let sa = Instance::<T>::body_slot(ba) + 7;
    let sb = Instance::<T>::body_slot(bb) + 7;
    let (qa, qb) = (s.body_orientation(ba), s.body_orientation(bb));
    let (ia, ib) = (s.body_inverse_inertia(ba), s.body_inverse_inertia(bb));
    let (ma, mb) = (s.body_inverse_mass(ba), s.body_inverse_mass(bb));
    let (gva, gwa) = (adj.state_vec3(sa), adj.state_vec3(sa + 3));
    let (gvb, gwb) = (adj.state_vec3(sb), adj.state_vec3(sb + 3));
    let d_impulse = ax.jac.lin_a.dot(gva) * ma
        + inverse_inertia_mul(qa, ia, ax.jac.ang_a).dot(gwa)
        + ax.jac.lin_b.dot(gvb) * mb
        + inverse_inertia_mul(qb, ib, ax.jac.ang_b).dot(gwb);
    adj.param_add(ba * BODY_PARAM_LEN as u32, impulse * ax.jac.lin_a.dot(gva));
    adj.param_add(bb * BODY_PARAM_LEN as u32, impulse * ax.jac.lin_b.dot(gvb));
    let (dqa, dia, dja) = inverse_inertia_mul_adjoint(qa, ia, ax.jac.ang_a, gwa * impulse);
    let (dqb, dib, djb) = inverse_inertia_mul_adjoint(qb, ib, ax.jac.ang_b, gwb * impulse);
    adj.param_add_vec3(ba * BODY_PARAM_LEN as u32 + 1, dia);
    adj.param_add_vec3(bb * BODY_PARAM_LEN as u32 + 1, dib);
    adj.state_add_quat(Instance::<T>::body_slot(ba) + 3, dqa);
    adj.state_add_quat(Instance::<T>::body_slot(bb) + 3, dqb);
    let d_jac = RowJacobian {
        lin_a: gva * (impulse * ma),
        ang_a: dja,
        lin_b: gvb * (impulse * mb),
        ang_b: djb,
    };
    joint_axis_adjoint(s, adj, j, k, d_jac, T::zero());
    d_impulse
}

/// Twin of `affine_force_adjoint`.
fn affine_force_adjoint<T: Real>(
    s: &Instance<'_, T>,
    adj: &mut super::Adjoint<T>,
    law: u32,
    a: u32,
    f: &AffineForce<T>,
    d_force: T,
) {
    use super::joint::joint_axis_adjoint;
    use super::math::V3;
    let d_raw = select(
        T::zero(),
        d_force,
        f.raw > s.model_f32(law + 6) && f.raw < s.model_f32(law + 7),
    );
    let inside = f.u > s.model_f32(law + 4) && f.u < s.model_f32(law + 5);
    let activation = s.model_u32(law + 8);
    if activation != NO_ACTIVATION {
        adj.state[activation as usize] += d_raw * s.model_f32(law + 1);
    } else if let Some(d_u) = adj.commands.get_mut(a as usize) {
        *d_u += select(T::zero(), d_raw * s.model_f32(law + 1), inside);
    }
    let d_length = d_raw * s.model_f32(law + 3);
    let no_jac = RowJacobian {
        lin_a: V3::zero(),
        ang_a: V3::zero(),
        lin_b: V3::zero(),
        ang_b: V3::zero(),
    };
    for t in 0..s.model_u32(law) {
        let term = law + AFFINE_LAW_HEAD + t * 3;
        let (j, k) = (s.model_u32(term), s.model_u32(term + 1));
        joint_axis_adjoint(s, adj, j, k, no_jac, d_length * s.model_f32(term + 2));
    }
}

pub fn force_actuators_adjoint<T: Real>(s: &mut Instance<'_, T>, adj: &mut super::Adjoint<T>) {
    let h = s.hdr;
    let dt = T::of(h.dt);
    for f in (0..h.n_force).rev() {
        let rec = h.off_force + f * 4;
        let a = s.model_u32(rec);
        let law = s.model_u32(rec + 3);
        let forward = force_record_force(s, a, law);
        let mut d_force = T::zero();
        for t in (0..force_terms(s, law)).rev() {
            let term = force_term(s, rec, law, t);
            let impulse = term.c * forward.force * dt;
            d_force += term.c * dt * apply_joint_impulse_adjoint(s, adj, term.j, term.k, impulse);
        }
        if law == 0 {
            // force = clamp(u, -max_force, max_force)
            let p_max = h.p_actuator + a * 3 + 1;
            let max_force = s.param(p_max);
            let u = forward.u;
            let above = u.max(-max_force);
            let d_above = select(T::zero(), d_force, above < max_force);
            let d_u = select(T::zero(), d_above, u > -max_force);
            adj.commands[a as usize] += d_u;
            adj.param_add(p_max, (d_force - d_above) - (d_above - d_u));
        } else {
            affine_force_adjoint(s, adj, law, a, &forward, d_force);
        }
    }
}

/// Mirrors `struct ActivationUpdate`.
struct ActivationUpdate<T> {
    law: u32,
    a: u32,
    u: T,
    raw: T,
}

/// Twin of `force_record_activation`.
fn force_record_activation<T: Real>(s: &Instance<'_, T>, f: u32) -> u32 {
    let rec = s.hdr.off_force + f * 4;
    let law = s.model_u32(rec + 3);
    if law == 0 {
        NO_ACTIVATION
    } else {
        s.model_u32(law + 8)
    }
}

/// Twin of `activation_update`.
fn activation_update<T: Real>(s: &Instance<'_, T>, f: u32, act: T) -> ActivationUpdate<T> {
    let rec = s.hdr.off_force + f * 4;
    let law = s.model_u32(rec + 3);
    let a = s.model_u32(rec);
    let u = s.commands[a as usize];
    let clamped = u.max(s.model_f32(law + 4)).min(s.model_f32(law + 5));
    let dt = T::of(s.hdr.dt);
    let raw = act + dt * (s.model_f32(law + 9) * clamped - s.model_f32(law + 10) * act);
    ActivationUpdate { law, a, u, raw }
}

pub fn actuator_activation_forward<T: Real>(s: &mut Instance<'_, T>) {
    for f in 0..s.hdr.n_force {
        let slot = force_record_activation(s, f);
        if slot == NO_ACTIVATION {
            continue;
        }
        let up = activation_update(s, f, s.state[slot as usize]);
        let next = up
            .raw
            .max(s.model_f32(up.law + 11))
            .min(s.model_f32(up.law + 12));
        s.state[slot as usize] = next;
    }
}

/// Twin of `actuator_activation_adjoint`: the activation before the update comes from the
/// state saved after the force actuators (`adj.velocity_before_solve`).
pub fn actuator_activation_adjoint<T: Real>(s: &mut Instance<'_, T>, adj: &mut super::Adjoint<T>) {
    let dt = T::of(s.hdr.dt);
    for f in (0..s.hdr.n_force).rev() {
        let slot = force_record_activation(s, f);
        if slot == NO_ACTIVATION {
            continue;
        }
        let up = activation_update(s, f, adj.velocity_before_solve[slot as usize]);
        let g = adj.state[slot as usize];
        let held = up.raw > s.model_f32(up.law + 11) && up.raw < s.model_f32(up.law + 12);
        let d_raw = select(T::zero(), g, held);
        let inside = up.u > s.model_f32(up.law + 4) && up.u < s.model_f32(up.law + 5);
        adj.commands[up.a as usize] +=
            select(T::zero(), d_raw * dt * s.model_f32(up.law + 9), inside);
        adj.state[slot as usize] = d_raw * (T::one() - dt * s.model_f32(up.law + 10));
    }
}
