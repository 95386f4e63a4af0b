//! Where a window's wall time goes: per-phase timers, reported by `backdrive train` when
//! `BACKDRIVE_PROFILE` is set.

use std::time::Instant;

/// Wall time of one window's phases, in the order they first ran. A phase that ends by
/// waiting for the device (a read-back) includes the device's work queued before it, so the
/// GPU passes are charged to the phase that waits for them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PhaseTimes {
    /// (phase, seconds), each phase once.
    pub phases: Vec<(&'static str, f64)>,
}

impl PhaseTimes {
    /// Adds `seconds` to `phase` (appended if new).
    pub fn add(&mut self, phase: &'static str, seconds: f64) {
        match self.phases.iter_mut().find(|(p, _)| *p == phase) {
            Some((_, s)) => *s += seconds,
            None => self.phases.push((phase, seconds)),
        }
    }

    /// The seconds charged to `phase` (0 if it did not run).
    pub fn seconds(&self, phase: &str) -> f64 {
        self.phases
            .iter()
            .find(|(p, _)| *p == phase)
            .map_or(0.0, |(_, s)| *s)
    }

    /// The sum over the phases.
    pub fn total(&self) -> f64 {
        self.phases.iter().map(|(_, s)| s).sum()
    }

    /// One line: every phase's seconds and share of the total, in the order they ran.
    pub fn line(&self) -> String {
        let total = self.total();
        let parts: Vec<String> = self
            .phases
            .iter()
            .map(|(p, s)| {
                let share = if total > 0.0 { 100.0 * s / total } else { 0.0 };
                format!("{p} {s:.3} s ({share:.0}%)")
            })
            .collect();
        format!("{total:.3} s: {}", parts.join(", "))
    }
}

/// Charges the time since the last lap to the phase named at each lap.
pub(crate) struct Stopwatch {
    last: Instant,
}

impl Stopwatch {
    pub(crate) fn start() -> Stopwatch {
        Stopwatch {
            last: Instant::now(),
        }
    }

    /// Adds the time since the previous lap (or the start) to `phase` in `times`.
    pub(crate) fn lap(&mut self, times: &mut PhaseTimes, phase: &'static str) {
        let now = Instant::now();
        times.add(phase, (now - self.last).as_secs_f64());
        self.last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_accumulate_by_name_in_first_run_order() {
        let mut t = PhaseTimes::default();
        t.add("forward", 1.0);
        t.add("adjoint", 3.0);
        t.add("forward", 0.5);
        assert_eq!(t.phases, vec![("forward", 1.5), ("adjoint", 3.0)]);
        assert_eq!(t.seconds("adjoint"), 3.0);
        assert_eq!(t.seconds("critic"), 0.0);
        assert_eq!(t.total(), 4.5);
        assert_eq!(
            t.line(),
            "4.500 s: forward 1.500 s (33%), adjoint 3.000 s (67%)"
        );
        assert_eq!(PhaseTimes::default().line(), "0.000 s: ");
    }
}
