//! The device layout (issue 14 item 2): per-instance arrays in blocks of a workgroup's
//! instances, and the model table bound as a uniform block where it fits. Neither may change a
//! bit: an instance gives the same results in any block of a batch with a partial last block,
//! the rollout's per-block region copies (command gradients, the truncation cut) reach every
//! block, and the uniform and storage bindings of the model table agree exactly.

mod common;

use std::sync::Arc;

use backdrive::engine::batch::Batch;
use backdrive::engine::layout::Compiled;
use backdrive::engine::shaders::{MODEL_UNIFORM_WORDS, ModelBinding};
use backdrive::grad::loss::{Loss, Quantity, When};
use backdrive::grad::rollout::{Gradients, Rollout, RolloutOptions};
use backdrive::{Model, Simulator, io::models};

const HORIZON: u32 = 30;
const WINDOW: u32 = 12;

fn loss() -> Loss {
    Loss::new().term(
        "pole",
        Quantity::PositionError {
            target: [0.3, 0.0, 2.0],
            mask: [1.0; 3],
        },
        1.0,
        When::Final,
    )
}

/// Instance `id`'s command sequence: different for every instance.
fn commands_of(model: &Model, id: usize) -> Vec<f32> {
    let n_act = model.actuators.len();
    (0..HORIZON as usize * n_act)
        .map(|k| 5.0 * ((k + 7 * id) as f32 * 0.13).sin())
        .collect()
}

/// The cut rollout's gradients of instances `ids` (in that order in one batch).
fn gradients(
    model: &Model,
    compiled: Arc<Compiled>,
    ids: &[usize],
    truncation: Option<u32>,
) -> Gradients {
    let mut options = RolloutOptions::new(HORIZON);
    options.truncation = truncation;
    let mut rollout =
        Rollout::with_compiled(common::gpu(), model, compiled, ids.len(), &loss(), options)
            .unwrap();
    let commands: Vec<f32> = ids.iter().flat_map(|&id| commands_of(model, id)).collect();
    rollout.set_commands(&commands).unwrap();
    rollout.forward().unwrap();
    rollout.backward().unwrap()
}

/// Instance `i`'s share of `gradients` as bits.
fn instance_bits(g: &Gradients, i: usize, n: usize) -> Vec<u32> {
    let part = |v: &[f32]| -> Vec<u32> {
        let w = v.len() / n;
        v[i * w..(i + 1) * w].iter().map(|x| x.to_bits()).collect()
    };
    let mut bits = part(&g.loss);
    bits.extend(part(&g.initial_state));
    bits.extend(part(&g.params));
    bits.extend(part(g.commands.as_ref().unwrap()));
    bits
}

#[test]
fn every_block_of_a_padded_batch_gives_an_instance_its_own_bits() {
    let model = models::builtin("cartpole").unwrap();
    let compiled = Arc::new(Compiled::new(&model));
    // 130 instances: two full blocks of 64 and a last block of 2 padded to 64.
    let n = 130;
    let ids: Vec<usize> = (0..n).collect();
    let cut = gradients(&model, compiled.clone(), &ids, Some(WINDOW));
    let exact = gradients(&model, compiled.clone(), &ids, None);
    let n_act = model.actuators.len();
    let per_instance = HORIZON as usize * n_act;
    let last_window = (HORIZON - HORIZON % WINDOW) as usize;
    let (cut_c, exact_c) = (
        cut.commands.as_ref().unwrap(),
        exact.commands.as_ref().unwrap(),
    );
    for &i in &[0, 1, 63, 64, 100, 127, 128, 129] {
        let alone = gradients(&model, compiled.clone(), &[i], Some(WINDOW));
        assert!(
            instance_bits(&cut, i, n) == instance_bits(&alone, 0, 1),
            "instance {i} differs from itself alone"
        );
        // The cut reached this instance's block, and only the state adjoint was cut.
        let early = &exact_c[i * per_instance..][..last_window * n_act];
        assert!(early.iter().any(|g| g.abs() > 1e-6), "instance {i}");
        for t in 0..HORIZON as usize {
            for a in 0..n_act {
                let k = i * per_instance + t * n_act + a;
                let expected = if t >= last_window { exact_c[k] } else { 0.0 };
                assert_eq!(cut_c[k], expected, "instance {i} step {t}");
            }
        }
    }
}

#[test]
fn the_model_table_binding_does_not_change_a_bit() {
    let gpu = common::gpu();
    let model = models::builtin("cartpole").unwrap();
    let uniform = Arc::new(Compiled::new(&model));
    // The same table with unread words after its records: too large for the uniform block.
    let mut padded = Compiled::new(&model);
    padded.packed.resize(MODEL_UNIFORM_WORDS + 1, 0);
    let storage = Arc::new(padded);
    assert_eq!(
        Batch::model_binding_for(&gpu, &uniform),
        ModelBinding::Uniform
    );
    assert_eq!(
        Batch::model_binding_for(&gpu, &storage),
        ModelBinding::Storage
    );

    let ids: Vec<usize> = (0..70).collect();
    let a = gradients(&model, uniform.clone(), &ids, None);
    let b = gradients(&model, storage.clone(), &ids, None);
    for i in 0..ids.len() {
        assert!(
            instance_bits(&a, i, ids.len()) == instance_bits(&b, i, ids.len()),
            "instance {i}"
        );
    }

    let step = |compiled: Arc<Compiled>| {
        let mut sim = Simulator::with_compiled(gpu.clone(), &model, compiled, 3).unwrap();
        sim.set_commands(&[1.0, -2.0, 3.0]).unwrap();
        sim.step(40).unwrap();
        sim.read_state_raw().unwrap()
    };
    let (a, b) = (step(uniform), step(storage));
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
}
