//! CPU twin of `shaders/loss.wgsl` (`loss_forward` and `loss_adjoint`): the loss terms of
//! [`crate::grad::loss::Loss`] on one instance, and their gradient.

use super::math::{Real, V3};
use super::{Adjoint, Instance};
use crate::engine::layout::BODY_STATE_LEN;
use crate::grad::loss::LOSS_TERM_LEN;

/// CPU twin of the loss kernels on one instance: the value of the terms at `step` of a rollout
/// of `horizon` steps, and (when `adj` is given) their gradient added into `adj`.
pub fn loss_twin<T: Real>(
    packed: &[u32],
    n_terms: usize,
    inst: &Instance<'_, T>,
    step: u32,
    horizon: u32,
    mut adj: Option<&mut Adjoint<T>>,
) -> T {
    let f = |t: usize, k: usize| T::of(f32::from_bits(packed[t * LOSS_TERM_LEN + k]));
    let mut total = T::zero();
    for t in 0..n_terms {
        let w = packed[t * LOSS_TERM_LEN + 3];
        let every = if w & 1 != 0 { T::one() } else { T::zero() };
        let last = if w & 2 != 0 && step == horizon {
            T::one()
        } else {
            T::zero()
        };
        let weight = f(t, 4) * (every + last);
        let kind = packed[t * LOSS_TERM_LEN];
        let index = packed[t * LOSS_TERM_LEN + 1];
        let target = V3::new(f(t, 5), f(t, 6), f(t, 7));
        let mask = V3::new(f(t, 9), f(t, 10), f(t, 11));
        let slot = index * BODY_STATE_LEN as u32;
        let vslot = match kind {
            1 | 6 => slot + 7,
            2 => slot + 10,
            _ => slot,
        };
        let two = T::of(2.0);
        match kind {
            0..=2 => {
                let v = inst.state_vec3(vslot);
                let d = v - target;
                total += weight * mask.mul_elem(d).dot(d);
                if let Some(a) = adj.as_deref_mut() {
                    a.state_add_vec3(vslot, mask.mul_elem(d) * (two * weight));
                }
            }
            3 => {
                let q = inst.body_orientation(index);
                let tq = [f(t, 5), f(t, 6), f(t, 7), f(t, 8)];
                let al = q.v.x * tq[0] + q.v.y * tq[1] + q.v.z * tq[2] + q.w * tq[3];
                total += weight * (T::one() - al * al);
                if let Some(a) = adj.as_deref_mut() {
                    let g = -two * weight * al;
                    for (k, v) in tq.iter().enumerate() {
                        a.state[(slot + 3) as usize + k] += g * *v;
                    }
                }
            }
            4 => {
                let axis = packed[t * LOSS_TERM_LEN + 2];
                let c = super::joint_axis(inst, index, axis).coordinate;
                let e = c - target.x;
                total += weight * e * e;
                if let Some(a) = adj.as_deref_mut() {
                    let zero = super::solver_zero_jacobian();
                    super::joint_axis_adjoint(inst, a, index, axis, zero, two * weight * e);
                }
            }
            7 => {
                // A step function of the height: no gradient (the kernel adds none either).
                let z = inst.state_vec3(slot).z;
                if z >= target.x && z <= target.y {
                    total += weight;
                }
            }
            8 => {
                // Depends on the commands only; its command adjoint is added by
                // `loss_command_adjoint_twin` after the step adjoint, as on the GPU.
                let norm = inst.commands.iter().fold(T::zero(), |s, &c| s + c * c);
                total += weight * norm;
            }
            _ => {
                let v = inst.state_vec3(vslot);
                total += weight * mask.dot(v);
                if let Some(a) = adj.as_deref_mut() {
                    a.state_add_vec3(vslot, mask * weight);
                }
            }
        }
    }
    total
}

/// Whether loss step `step` is paid for an instance whose last paid step is `last_step`: the
/// kernels' `loss_paid` (`loss_last_step` in f32, as on the GPU).
pub fn loss_step_is_paid(step: u32, last_step: f32) -> bool {
    step as f32 <= last_step
}

/// [`loss_twin`] for an instance paid up to loss step `last_step` (the kernels'
/// `loss_last_step`, [`crate::grad::rollout::Rollout::set_loss_last_steps`]): at a later step
/// neither the value nor the gradient counts.
pub fn paid_loss_twin<T: Real>(
    packed: &[u32],
    n_terms: usize,
    inst: &Instance<'_, T>,
    step: u32,
    horizon: u32,
    last_step: f32,
    adj: Option<&mut Adjoint<T>>,
) -> T {
    if loss_step_is_paid(step, last_step) {
        loss_twin(packed, n_terms, inst, step, horizon, adj)
    } else {
        T::zero()
    }
}

/// CPU twin of `loss_command_adjoint`: adds the control-cost terms' (kind 8) gradient with
/// respect to `inst.commands` (the commands of the step that led to loss step `step`) into
/// `adj.commands`. Call it after the step adjoint, which clears `adj.commands` first, and only
/// at paid steps ([`loss_step_is_paid`]), as the kernel adds nothing at the others.
pub fn loss_command_adjoint_twin<T: Real>(
    packed: &[u32],
    n_terms: usize,
    inst: &Instance<'_, T>,
    step: u32,
    horizon: u32,
    adj: &mut Adjoint<T>,
) {
    let mut weight = T::zero();
    for t in 0..n_terms {
        if packed[t * LOSS_TERM_LEN] != 8 {
            continue;
        }
        let w = packed[t * LOSS_TERM_LEN + 3];
        let every = if w & 1 != 0 { T::one() } else { T::zero() };
        let last = if w & 2 != 0 && step == horizon {
            T::one()
        } else {
            T::zero()
        };
        weight += T::of(f32::from_bits(packed[t * LOSS_TERM_LEN + 4])) * (every + last);
    }
    for (a, &c) in adj.commands.iter_mut().zip(&inst.commands) {
        *a += T::of(2.0) * weight * c;
    }
}
