//! Loading and compiling a model takes time linear in its size (issue 18 item 15: it was
//! quadratic, 246 s for 100k bodies). Timed against itself in one run: a model 16 times larger
//! must take under 64 times as long, four times the linear 16 and a quarter of the quadratic
//! 256, so that load on a shared machine (which stretched a run to 4x linear) does not decide.

mod common;

use std::time::{Duration, Instant};

use backdrive::Model;
use backdrive::engine::layout::Compiled;
use backdrive::io::mjcf::{self, MjcfOptions};
use common::large_models::{chain_mjcf, chain_toml};

/// Best of three: the shortest time is the least disturbed by other load on the machine.
fn best_of_three(mut load: impl FnMut()) -> Duration {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            load();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn toml_time(n: usize) -> Duration {
    let text = chain_toml(n);
    best_of_three(|| {
        let model = Model::from_toml_str(&text, None).unwrap();
        let compiled = Compiled::new(&model);
        assert_eq!(compiled.header.n_bodies as usize, n + 1);
    })
}

fn mjcf_time(n: usize) -> Duration {
    let text = chain_mjcf(n);
    best_of_three(|| {
        let import = mjcf::from_str(&text, None, &MjcfOptions::default()).unwrap();
        let compiled = Compiled::new(&import.model);
        assert_eq!(compiled.header.n_bodies as usize, n + 1);
    })
}

fn assert_linear(what: &str, small: Duration, large: Duration) {
    let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-6);
    println!("{what}: 1,000 bodies {small:?}, 16,000 bodies {large:?}, ratio {ratio:.1}");
    assert!(
        ratio < 64.0,
        "{what}: 16 times the bodies took {ratio:.1} times as long (linear: 16, quadratic: 256)"
    );
}

#[test]
fn toml_loading_is_linear_in_the_model_size() {
    assert_linear("TOML", toml_time(1_000), toml_time(16_000));
}

#[test]
fn mjcf_loading_is_linear_in_the_model_size() {
    assert_linear("MJCF", mjcf_time(1_000), mjcf_time(16_000));
}
