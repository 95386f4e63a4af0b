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
    /// CPU time (user plus system, every thread of the process: a CPU Vulkan's workers
    /// included) spent over the same span, where the platform reports it. On a shared machine
    /// it tells the work from the wait for a core, which the wall times mix.
    pub cpu_seconds: Option<f64>,
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
        // A fold from +0: an empty sum of f64 is -0, which would print as "-0.000".
        self.phases.iter().fold(0.0, |total, (_, s)| total + s)
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
        let cpu = self
            .cpu_seconds
            .map(|c| format!(" (process CPU {c:.3} s)"))
            .unwrap_or_default();
        format!("{total:.3} s{cpu}: {}", parts.join(", "))
    }
}

/// The CPU time (user plus system) the process has used so far, every thread included;
/// `None` where the platform does not say.
pub fn process_cpu_seconds() -> Option<f64> {
    #[cfg(unix)]
    {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage writes a whole `rusage` into the pointer it is given, which points
        // to one, and reads nothing else.
        let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } == 0;
        if !ok {
            return None;
        }
        // SAFETY: getrusage succeeded, so it filled the struct (zeroed before anyway).
        let usage = unsafe { usage.assume_init() };
        let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
        Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
    }
    #[cfg(not(unix))]
    {
        None
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
        t.cpu_seconds = Some(2.25);
        assert!(
            t.line()
                .starts_with("4.500 s (process CPU 2.250 s): forward")
        );
    }

    #[test]
    fn the_process_cpu_time_grows_with_work() {
        let Some(before) = process_cpu_seconds() else {
            return;
        };
        let mut x = 0u64;
        let started = Instant::now();
        while started.elapsed().as_secs_f64() < 0.2 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let after = process_cpu_seconds().unwrap();
        assert!(after > before, "{before} -> {after}");
    }
}
