//! Detection of non-finite states on the device: after each step dispatch, a small kernel
//! (`shaders/finite_check.wgsl`) scans every instance's body states and records the first
//! step, body and component that became NaN or infinite. The record stays on the device; the
//! host reads 16 bytes per instance when it asks ([`crate::Simulator::non_finite`]).

use std::fmt;

use crate::engine::buffers::device_index;
use crate::engine::layout::BODY_STATE_LEN;

/// The first non-finite value of one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NonFinite {
    /// The instance.
    pub instance: usize,
    /// Steps run when it was first seen (counted since the check was enabled; exact, since
    /// the check runs after every step).
    pub step: u64,
    /// Index into `Model::bodies`.
    pub body: usize,
    /// Component of the body state, 0..13: position x, y, z, orientation x, y, z, w, linear
    /// velocity x, y, z, angular velocity x, y, z.
    pub component: usize,
}

impl NonFinite {
    /// The quantity and component, such as `orientation.qw` or `angular velocity.wx`.
    pub fn quantity(&self) -> &'static str {
        const NAMES: [&str; BODY_STATE_LEN] = [
            "position.x",
            "position.y",
            "position.z",
            "orientation.qx",
            "orientation.qy",
            "orientation.qz",
            "orientation.qw",
            "linear velocity.vx",
            "linear velocity.vy",
            "linear velocity.vz",
            "angular velocity.wx",
            "angular velocity.wy",
            "angular velocity.wz",
        ];
        NAMES.get(self.component).copied().unwrap_or("unknown")
    }
}

impl fmt::Display for NonFinite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "instance {} at step {}, body {}, {}",
            self.instance,
            self.step,
            self.body,
            self.quantity()
        )
    }
}

/// CPU reference of the `finite_check` kernel on one chunk: `state` as the device holds it
/// (instance-blocked, `state_len` floats per instance: [`crate::engine::buffers::device_index`]),
/// `record` 4 words per instance, updated in place.
pub fn check_reference(
    state: &[f32],
    state_len: usize,
    n_instances: usize,
    n_bodies_with_world: usize,
    steps: u32,
    record: &mut [u32],
) {
    let at = |slot: usize, i: usize| device_index(n_instances, state_len, slot, i);
    for i in 0..n_instances {
        let r = &mut record[i * 4..i * 4 + 4];
        r[0] += steps;
        if r[1] != 0 {
            continue;
        }
        'scan: for b in 1..n_bodies_with_world {
            for k in 0..BODY_STATE_LEN {
                if !state[at(b * BODY_STATE_LEN + k, i)].is_finite() {
                    r[1] = r[0];
                    r[2] = b as u32;
                    r[3] = k as u32;
                    break 'scan;
                }
            }
        }
    }
}

/// Decodes records (4 words per instance, instance `first + i`) into reports.
pub fn decode(record: &[u32], first: usize) -> Vec<NonFinite> {
    record
        .chunks_exact(4)
        .enumerate()
        .filter(|(_, r)| r[1] != 0)
        .map(|(i, r)| NonFinite {
            instance: first + i,
            step: u64::from(r[1]),
            body: (r[2] as usize).saturating_sub(1),
            component: r[3] as usize,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_records_the_first_step_body_and_component_per_instance() {
        // Two instances, world plus two bodies.
        let n = 2;
        let len = 3 * BODY_STATE_LEN;
        let mut state = vec![0.0f32; len * n];
        let mut record = vec![0u32; 4 * n];
        check_reference(&state, len, n, 3, 1, &mut record);
        assert!(decode(&record, 0).is_empty());
        // Instance 1, body 2 (model body 1), angular velocity y, at the third step.
        state[device_index(n, len, 2 * BODY_STATE_LEN + 11, 1)] = f32::NAN;
        check_reference(&state, len, n, 3, 1, &mut record);
        check_reference(&state, len, n, 3, 1, &mut record);
        // A later, earlier-listed value does not replace the first record.
        state[device_index(n, len, BODY_STATE_LEN + 3, 1)] = f32::INFINITY;
        check_reference(&state, len, n, 3, 1, &mut record);
        assert_eq!(
            decode(&record, 10),
            vec![NonFinite {
                instance: 11,
                step: 2,
                body: 1,
                component: 11
            }]
        );
        assert_eq!(decode(&record, 10)[0].quantity(), "angular velocity.wy");
        assert_eq!(record[0], 4, "every check counts its steps");
    }

    #[test]
    fn the_world_body_is_not_checked() {
        let mut state = vec![0.0f32; 2 * BODY_STATE_LEN];
        state[0] = f32::NAN;
        let mut record = vec![0u32; 4];
        check_reference(&state, 2 * BODY_STATE_LEN, 1, 2, 1, &mut record);
        assert!(decode(&record, 0).is_empty());
    }
}
