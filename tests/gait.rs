//! Open-loop gait search (`backdrive::learn::gait`) on the shipped quadruped.

mod common;

use backdrive::io::models;
use backdrive::learn::gait::{GaitEvaluator, SearchOptions, search};

fn evaluator(capacity: usize, seconds: f64) -> GaitEvaluator {
    let model = models::load("quadruped").unwrap();
    GaitEvaluator::new(common::gpu(), &model, "torso", 1.5, seconds, capacity).unwrap()
}

/// Zero commands hold the standing pose, so the torso stays where it started.
#[test]
fn standing_gait_does_not_travel() {
    let mut e = evaluator(2, 1.0);
    let speeds = e.forward_speeds(&[vec![0.0; e.gait_len()]]).unwrap();
    assert_eq!(speeds.len(), 1);
    assert!(
        speeds[0].abs() < 2e-3,
        "standing still moved at {} m/s",
        speeds[0]
    );
}

/// A few CMA-ES generations find a gait that travels forward, and the speed the search
/// reports for its best gait is what that gait gives when run again on its own.
#[test]
fn search_finds_a_forward_gait_and_reports_it_faithfully() {
    let mut e = evaluator(8, 1.0);
    let start = vec![0.0; e.gait_len()];
    let mut generations_seen = 0;
    let found = search(
        &mut e,
        &start,
        &SearchOptions {
            budget: 32,
            population: Some(8),
            sigma: 0.3,
            seed: 3,
            time_limit: None,
            target_speed: None,
        },
        &mut |_| generations_seen += 1,
    )
    .unwrap();
    println!(
        "best {:.4} m/s after {} rollouts: {:?}",
        found.best_speed, found.evaluations, found.best
    );
    assert_eq!((found.generations, found.evaluations), (4, 32));
    assert_eq!(generations_seen, 4);
    assert!(found.best_speed > 0.02, "best speed {}", found.best_speed);
    let again = e.forward_speeds(std::slice::from_ref(&found.best)).unwrap()[0];
    assert!(
        (again - found.best_speed).abs() < 1e-5,
        "search said {} m/s, the same gait alone gives {again}",
        found.best_speed
    );
}

#[test]
fn a_gait_of_the_wrong_length_is_refused() {
    let mut e = evaluator(2, 0.1);
    let err = e.forward_speeds(&[vec![0.0; 5]]).unwrap_err().to_string();
    assert!(err.contains("expected 24"), "{err}");
    let err = e
        .forward_speeds(&vec![vec![0.0; 24]; 3])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("3 gaits for an evaluator of 2 robots"),
        "{err}"
    );
}
