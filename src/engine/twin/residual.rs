//! The constraint residual the projected Gauss-Seidel sweeps leave, so that the sweep count,
//! the row order and relaxation are chosen by measurement rather than by habit.
//!
//! A row's residual is the natural-map residual of its projected problem, in velocity units
//! (m/s for a linear row, rad/s for an angular one):
//! `|lambda - clamp(lambda - m_c r, lo, hi)| / m_c` with `r = J v' + bias + cfm lambda`, at the
//! velocities `v'` and impulses `lambda` the sweeps left (`lo` and `hi` widened by the friction
//! cone of the reference row's impulse, as in `solve_row`). For a row that no bound holds
//! (every lock row, a servo below its force limit) it is `|J v' + bias + cfm lambda|`; for a
//! row held at a bound it is the complementarity violation, the part of `r` that the bound
//! cannot absorb (zero when the bound holds the row correctly). It is zero exactly at a fixed
//! point of the sweeps.
//!
//! [`measure_rollout`] sweeps with a [`SweepPlan`]: the kernel's plan
//! ([`SweepPlan::kernel`]: the model's own relaxation, `settings.solver_relaxation` on its lock
//! and servo rows) reproduces [`Instance::step`] bit for bit; the other row orders, and
//! relaxation factors on other row kinds, exist only here, to be measured before a kernel
//! adopts one.

use std::collections::BTreeMap;

use super::Instance;
use super::math::Real;
use super::solver::{
    row_block, row_bodies, row_relaxation, row_velocity, solve_row_or_block, solve_row_relaxed,
    solve_warm_start,
};
use super::{actuator_activation_forward, integrate_position_forward};
use crate::engine::layout::{Compiled, Header};

/// What a constraint row constrains, from the row sections of the compiled layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RowKind {
    /// A joint's locked degree of freedom.
    Lock,
    /// A joint limit.
    Limit,
    /// A position or velocity servo.
    Servo,
    /// A contact's normal or friction row (ground, sphere pairs, world shapes).
    Contact,
    /// A tendon's held length or limit.
    Tendon,
    /// A joint's passive row (damping, springs, dry friction, armature).
    Passive,
}

impl RowKind {
    /// Every kind, in the order the layout packs them.
    pub const ALL: [RowKind; 6] = [
        RowKind::Lock,
        RowKind::Limit,
        RowKind::Servo,
        RowKind::Contact,
        RowKind::Tendon,
        RowKind::Passive,
    ];

    /// The kind of row `r` of a compiled model.
    pub fn of_row(h: &Header, r: u32) -> RowKind {
        if r < h.row_limit {
            RowKind::Lock
        } else if r < h.row_servo {
            RowKind::Limit
        } else if r < h.row_contact {
            RowKind::Servo
        } else if r < h.row_tendon {
            RowKind::Contact
        } else if r < h.row_world_contact {
            RowKind::Tendon
        } else if r < h.row_passive {
            RowKind::Contact
        } else {
            RowKind::Passive
        }
    }

    /// Position in [`RowKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name, for tables.
    pub fn name(self) -> &'static str {
        match self {
            RowKind::Lock => "lock",
            RowKind::Limit => "limit",
            RowKind::Servo => "servo",
            RowKind::Contact => "contact",
            RowKind::Tendon => "tendon",
            RowKind::Passive => "passive",
        }
    }
}

/// The residual of row `r` (see the module documentation) at the instance's current
/// velocities, impulses and row scratch.
pub fn row_residual<T: Real>(s: &Instance<'_, T>, r: u32) -> T {
    let h = s.hdr;
    let [a, b, reference] = row_bodies(s, r);
    let lambda = s.state[(h.state_lambda + r) as usize];
    let lambda_ref = s.state[(h.state_lambda + reference) as usize];
    let mu = s.row_get(r, 29);
    let lo = s.row_get(r, 27) - mu * lambda_ref;
    let hi = s.row_get(r, 28) + mu * lambda_ref;
    let m_c = s.row_get(r, 24);
    let r_velocity = row_velocity(s, r, a, b) + s.row_get(r, 26) + s.row_get(r, 25) * lambda;
    let projected = (lambda - m_c * r_velocity).max(lo).min(hi);
    ((lambda - projected) / m_c).abs()
}

/// The order in which a sweep visits the rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowOrder {
    /// Row index order, every sweep: what `solve_forward` does.
    Kernel,
    /// Reverse row index order, every sweep (contacts, then servos, limits and locks, the
    /// locks from the last joint, a leaf, towards the root).
    Reversed,
    /// Index order on even sweeps, reverse order on odd ones (symmetric Gauss-Seidel).
    Symmetric,
    /// Contact rows first, then the others in index order, every sweep.
    ContactsFirst,
}

impl RowOrder {
    /// Every order, for tables.
    pub const ALL: [RowOrder; 4] = [
        RowOrder::Kernel,
        RowOrder::Reversed,
        RowOrder::Symmetric,
        RowOrder::ContactsFirst,
    ];

    /// Name as the example `solver_residual` takes it.
    pub fn name(self) -> &'static str {
        match self {
            RowOrder::Kernel => "kernel",
            RowOrder::Reversed => "reversed",
            RowOrder::Symmetric => "symmetric",
            RowOrder::ContactsFirst => "contacts-first",
        }
    }

    /// The rows of sweep `sweep` in visiting order.
    fn rows(self, h: &Header, sweep: u32) -> Vec<u32> {
        let forward = 0..h.n_rows;
        match self {
            RowOrder::Kernel => forward.collect(),
            RowOrder::Reversed => forward.rev().collect(),
            RowOrder::Symmetric if sweep % 2 == 1 => forward.rev().collect(),
            RowOrder::Symmetric => forward.collect(),
            RowOrder::ContactsFirst => {
                let is_contact = |&r: &u32| RowKind::of_row(h, r) == RowKind::Contact;
                let mut rows: Vec<u32> = forward.clone().filter(is_contact).collect();
                rows.extend(forward.filter(|r| !is_contact(r)));
                rows
            }
        }
    }
}

/// How the rows of one step are swept.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SweepPlan {
    /// Gauss-Seidel sweeps over all rows.
    pub sweeps: u32,
    /// Order of the rows within each sweep.
    pub order: RowOrder,
    /// Over-relaxation factor of the rows of the kinds in `relaxed_kinds`, in place of the
    /// model's own (1: plain projected Gauss-Seidel).
    pub relaxation: f64,
    /// Which row kinds take `relaxation`, by [`RowKind::index`]; the others keep the model's
    /// own factor (`settings.solver_relaxation` on locks and servos, 1 elsewhere).
    pub relaxed_kinds: [bool; RowKind::ALL.len()],
}

impl SweepPlan {
    /// The kernel's plan: `sweeps` sweeps in row order, each row with the model's own
    /// relaxation.
    pub fn kernel(sweeps: u32) -> SweepPlan {
        SweepPlan {
            sweeps,
            order: RowOrder::Kernel,
            relaxation: 1.0,
            relaxed_kinds: [false; RowKind::ALL.len()],
        }
    }
}

/// Solves the rows the instance has written with `plan` (warm start included).
pub fn solve_with_plan<T: Real>(s: &mut Instance<'_, T>, plan: &SweepPlan) {
    solve_warm_start(s);
    let omega = T::from(plan.relaxation).unwrap_or_else(T::one);
    for sweep in 0..plan.sweeps {
        for r in plan.order.rows(s.hdr, sweep) {
            let relaxed = plan.relaxed_kinds[RowKind::of_row(s.hdr, r).index()];
            // A block's rows are solved exactly, never relaxed.
            if row_block(s, r) != 0 {
                solve_row_or_block(s, r);
            } else {
                let factor = if relaxed { omega } else { row_relaxation(s, r) };
                solve_row_relaxed(s, r, factor);
            }
        }
    }
}

/// Residual of one row kind over a rollout.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct KindResidual {
    /// Rows of this kind in the model.
    pub rows: u32,
    /// Mean row residual over every row of the kind and every step.
    pub mean: f64,
    /// Largest row residual of the kind over the rollout.
    pub max: f64,
}

/// What [`measure_rollout`] measured.
#[derive(Clone, Debug, PartialEq)]
pub struct ResidualReport {
    /// The plan the rows were swept with.
    pub plan: SweepPlan,
    /// Steps of the rollout.
    pub steps: u32,
    /// Residual per row kind present in the model.
    pub kinds: BTreeMap<RowKind, KindResidual>,
    /// Mean row residual over every row and step.
    pub mean: f64,
    /// Whether the rollout's state stayed finite.
    pub finite: bool,
}

/// Steps one instance of `compiled` from its initial state for `steps` steps, solving every
/// step's rows with `plan`, and averages the residual the sweeps leave per row kind.
/// `commands(step, commands)` sets the actuator commands before each step. With
/// [`SweepPlan::kernel`]`(compiled.header.sweeps)` the states are those of [`Instance::step`].
pub fn measure_rollout<T: Real>(
    compiled: &Compiled,
    plan: &SweepPlan,
    steps: u32,
    mut commands: impl FnMut(u32, &mut [T]),
) -> ResidualReport {
    let mut s = Instance::<T>::new(compiled);
    let h = *s.hdr;
    let kinds: Vec<RowKind> = (0..h.n_rows).map(|r| RowKind::of_row(&h, r)).collect();
    let mut sums: BTreeMap<RowKind, (u32, f64, f64)> = BTreeMap::new();
    for &k in &kinds {
        sums.entry(k).or_default().0 += 1;
    }
    let mut total = 0.0;
    for step in 0..steps {
        commands(step, &mut s.commands);
        s.write_rows();
        solve_with_plan(&mut s, plan);
        for (r, &kind) in kinds.iter().enumerate() {
            let residual = row_residual(&s, r as u32).to_f64().unwrap_or(f64::NAN);
            let entry = sums.entry(kind).or_default();
            entry.1 += residual;
            entry.2 = entry.2.max(residual);
            total += residual;
        }
        actuator_activation_forward(&mut s);
        integrate_position_forward(&mut s);
    }
    let samples = |rows: u32| f64::from(rows) * f64::from(steps.max(1));
    ResidualReport {
        plan: *plan,
        steps,
        kinds: sums
            .into_iter()
            .map(|(kind, (rows, sum, max))| {
                let mean = sum / samples(rows);
                (kind, KindResidual { rows, mean, max })
            })
            .collect(),
        mean: total / samples(h.n_rows.max(1)),
        finite: s.state.iter().all(|x| x.is_finite()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quadruped() -> Compiled {
        Compiled::new(&crate::io::models::builtin("quadruped").unwrap())
    }

    fn sine(n: usize) -> impl FnMut(u32, &mut [f64]) {
        move |step, u| {
            for (a, c) in u.iter_mut().enumerate().take(n) {
                *c = 0.4 * (0.015 * std::f64::consts::TAU * f64::from(step) + a as f64).sin();
            }
        }
    }

    #[test]
    fn row_kinds_follow_the_quadruped_sections() {
        let c = quadruped();
        let count = |kind| {
            (0..c.header.n_rows)
                .filter(|&r| RowKind::of_row(&c.header, r) == kind)
                .count()
        };
        assert_eq!(
            [
                RowKind::Lock,
                RowKind::Limit,
                RowKind::Servo,
                RowKind::Contact
            ]
            .map(count),
            [40, 8, 8, 60]
        );
    }

    #[test]
    fn the_kernel_plan_steps_as_the_twin_does() {
        for relaxation in [1.0, 1.5] {
            let mut model = crate::io::models::builtin("quadruped").unwrap();
            model.settings.solver_relaxation = relaxation;
            let c = Compiled::new(&model);
            let n = c.header.n_commands as usize;
            let mut twin = Instance::<f64>::new(&c);
            let mut commands = sine(n);
            for step in 0..40 {
                commands(step, &mut twin.commands);
                twin.step();
            }
            let mut s = Instance::<f64>::new(&c);
            let plan = SweepPlan::kernel(c.header.sweeps);
            let mut commands = sine(n);
            for step in 0..40 {
                commands(step, &mut s.commands);
                s.write_rows();
                solve_with_plan(&mut s, &plan);
                actuator_activation_forward(&mut s);
                integrate_position_forward(&mut s);
            }
            assert_eq!(s.state, twin.state, "{relaxation}");
        }
    }

    /// Mean residual per kind over `phases` rollouts of `steps` steps, each with its own
    /// phase of sine commands, with the model's own plan at its own sweep count.
    fn own_plan_residual(model: &crate::Model, phases: u32, steps: u32) -> Vec<(RowKind, f64)> {
        let c = Compiled::new(model);
        let n = c.header.n_commands as usize;
        let dt = f64::from(model.settings.dt);
        let mut means: BTreeMap<RowKind, f64> = BTreeMap::new();
        for phase in 0..phases {
            let shift = std::f64::consts::TAU * f64::from(phase) / f64::from(phases);
            let report = measure_rollout(
                &c,
                &SweepPlan::kernel(c.header.sweeps),
                steps,
                |step, u: &mut [f64]| {
                    // The phases of `backdrive rollout`'s sine commands (1.5 Hz), as the
                    // example solver_residual drives the position servos.
                    let t = std::f64::consts::TAU * 1.5 * dt * f64::from(step);
                    for (a, x) in u.iter_mut().enumerate().take(n) {
                        *x = 0.4 * (t + std::f64::consts::FRAC_PI_2 * a as f64 + shift).sin();
                    }
                },
            );
            assert!(report.finite, "{}", model.name);
            for (kind, k) in report.kinds {
                *means.entry(kind).or_default() += k.mean / f64::from(phases);
            }
        }
        means.into_iter().collect()
    }

    #[test]
    fn the_shipped_relaxed_models_are_as_accurate_as_plain_sweeps_at_20() {
        // The shipped quadruped and arm relax their locks and servos and sweep fewer times;
        // every row kind must be left at most as far off as by 20 plain sweeps.
        for name in ["quadruped", "arm"] {
            let shipped = crate::io::models::builtin(name).unwrap();
            let mut plain = shipped.clone();
            plain.settings.solver_relaxation = 1.0;
            plain.settings.solver_iterations = 20;
            assert!(shipped.settings.solver_relaxation > 1.0, "{name}");
            assert!(shipped.settings.solver_iterations < 20, "{name}");
            let (ours, before) = (
                own_plan_residual(&shipped, 4, 400),
                own_plan_residual(&plain, 4, 400),
            );
            assert_eq!(ours.len(), before.len());
            for ((kind, ours), (_, before)) in ours.iter().zip(&before) {
                assert!(
                    ours <= before,
                    "{name} {}: {ours:e} > {before:e}",
                    kind.name()
                );
            }
        }
    }

    #[test]
    fn a_row_s_residual_is_its_unsolved_velocity_error() {
        // Before any sweep (no warm start, zero impulses) an unbounded lock row's residual is
        // |J v + bias|, and after many sweeps it vanishes.
        let c = quadruped();
        let mut s = Instance::<f64>::new(&c);
        for b in 1..c.header.n_bodies {
            let slot = Instance::<f64>::body_slot(b) + 7;
            let x = b as f64;
            s.state_set_vec3(slot, super::super::math::V3::new(0.3 * x, -0.2, 0.1 * x));
            s.state_set_vec3(slot + 3, super::super::math::V3::new(0.5, 0.7 * x, -0.4));
        }
        s.write_rows();
        let error = |s: &Instance<'_, f64>, r| {
            let [a, b, _] = row_bodies(s, r);
            (row_velocity(s, r, a, b) + s.row_get(r, 26)).abs()
        };
        let r = (0..c.header.row_limit)
            .max_by(|&p, &q| error(&s, p).total_cmp(&error(&s, q)))
            .unwrap();
        let expected = error(&s, r);
        assert!(expected > 1e-3, "{expected}");
        assert!((row_residual(&s, r) - expected).abs() <= 1e-12 * expected);
        let plan = SweepPlan::kernel(400);
        solve_with_plan(&mut s, &plan);
        assert!(
            row_residual(&s, r) < 1e-3 * expected,
            "{}",
            row_residual(&s, r)
        );
    }

    #[test]
    fn more_sweeps_leave_a_smaller_residual() {
        let c = quadruped();
        let n = c.header.n_commands as usize;
        let at = |sweeps| measure_rollout(&c, &SweepPlan::kernel(sweeps), 150, sine(n));
        let (few, many) = (at(5), at(40));
        assert!(few.finite && many.finite);
        assert!(many.mean < 0.5 * few.mean, "{} {}", many.mean, few.mean);
        let lock = |r: &ResidualReport| r.kinds[&RowKind::Lock].mean;
        assert!(lock(&many) < lock(&few), "{} {}", lock(&many), lock(&few));
    }

    #[test]
    fn orders_and_relaxed_kinds_change_the_sweeps() {
        let c = quadruped();
        let n = c.header.n_commands as usize;
        let kernel = measure_rollout(&c, &SweepPlan::kernel(10), 50, sine(n));
        let reversed = SweepPlan {
            order: RowOrder::Reversed,
            ..SweepPlan::kernel(10)
        };
        let reversed = measure_rollout(&c, &reversed, 50, sine(n));
        assert!(kernel.finite && reversed.finite);
        assert_ne!(kernel.mean, reversed.mean);
        let relaxed = |relaxed_kinds| SweepPlan {
            relaxation: 1.3,
            relaxed_kinds,
            ..SweepPlan::kernel(10)
        };
        let none = measure_rollout(&c, &relaxed([false; 6]), 50, sine(n));
        // No relaxed kind: the kernel's updates, bit for bit.
        assert_eq!((&none.kinds, none.mean), (&kernel.kinds, kernel.mean));
        let locks = measure_rollout(
            &c,
            &relaxed([true, false, false, false, false, false]),
            50,
            sine(n),
        );
        let all = measure_rollout(&c, &relaxed([true; 6]), 50, sine(n));
        assert_ne!(locks.mean, kernel.mean);
        assert_ne!(locks.mean, all.mean);
    }
}
