//! Contracts between the host and the kernels, checked without a GPU: the structs that the host
//! uploads match their WGSL declarations field by field (naga's reflection of the assembled
//! modules), the record sizes the kernels and twins use are the ones the host packs, and the
//! step's stage order is the same in both kernels and the twin.

use super::*;
use crate::engine::layout::{self, Compiled, stride};

/// The fields of `struct name` in a Rust source file, as (name, type), in order. Attributes,
/// doc comments and visibility are skipped; one field per line, as rustfmt writes them.
fn rust_fields(source: &str, name: &str) -> Vec<(String, String)> {
    let start = source
        .lines()
        .position(|l| {
            l.trim_start()
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ")
                == format!("struct {name} {{")
        })
        .unwrap_or_else(|| panic!("no `struct {name}` in the source"));
    let mut fields = Vec::new();
    for line in source.lines().skip(start + 1) {
        let line = line.trim();
        if line == "}" {
            return fields;
        }
        if line.is_empty() || line.starts_with("//") || line.starts_with("#[") {
            continue;
        }
        let line = line
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub ");
        let (field, ty) = line
            .trim_end_matches(',')
            .split_once(':')
            .unwrap_or_else(|| panic!("struct {name}: cannot read field `{line}`"));
        fields.push((field.trim().to_string(), ty.trim().to_string()));
    }
    panic!("struct {name}: no closing brace");
}

/// The members of WGSL `struct name` in `entry`'s assembled module, by naga's reflection, as
/// (name, byte offset, scalar type), and the struct's size in bytes.
fn wgsl_fields(entry: Source, name: &str) -> (Vec<(String, u32, &'static str)>, u32) {
    let module = validate(&assemble(entry)).unwrap_or_else(|e| panic!("{e}"));
    let (_, ty) = module
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("{}: no struct {name}", entry.name));
    let naga::TypeInner::Struct { members, span } = &ty.inner else {
        panic!("{}: {name} is not a struct", entry.name);
    };
    let fields = members
        .iter()
        .map(|m| {
            let scalar = match &module.types[m.ty].inner {
                naga::TypeInner::Scalar(naga::Scalar {
                    kind: naga::ScalarKind::Uint,
                    width: 4,
                }) => "u32",
                naga::TypeInner::Scalar(naga::Scalar {
                    kind: naga::ScalarKind::Float,
                    width: 4,
                }) => "f32",
                other => panic!("{name}.{:?}: unexpected type {other:?}", m.name),
            };
            (m.name.clone().unwrap_or_default(), m.offset, scalar)
        })
        .collect();
    (fields, *span)
}

/// Checks a `#[repr(C)]` struct of 4-byte scalars against its WGSL twin.
fn check_struct(rust_source: &str, rust_name: &str, rust_size: usize, entry: Source, wgsl: &str) {
    let rust = rust_fields(rust_source, rust_name);
    let (shader, span) = wgsl_fields(entry, wgsl);
    let names = |v: Vec<&str>| v.join(", ");
    assert_eq!(
        rust.len(),
        shader.len(),
        "{rust_name} has {} fields, WGSL {wgsl} {}:\n  rust: {}\n  wgsl: {}",
        rust.len(),
        shader.len(),
        names(rust.iter().map(|f| f.0.as_str()).collect()),
        names(shader.iter().map(|f| f.0.as_str()).collect()),
    );
    let mut offset = 0u32;
    for ((name, ty), (wgsl_name, wgsl_offset, wgsl_ty)) in rust.iter().zip(&shader) {
        assert_eq!(name, wgsl_name, "{rust_name} field at byte {offset}");
        assert_eq!(ty, wgsl_ty, "{rust_name}.{name}: type");
        assert_eq!(offset, *wgsl_offset, "{rust_name}.{name}: byte offset");
        offset += 4;
    }
    assert_eq!(
        offset as usize, rust_size,
        "{rust_name}: size of the Rust struct"
    );
    assert_eq!(span, offset, "{wgsl}: size of the WGSL struct");
}

#[test]
fn host_structs_match_their_wgsl_declarations_field_by_field() {
    check_struct(
        include_str!("../layout/header.rs"),
        "Header",
        std::mem::size_of::<layout::Header>(),
        STEP,
        "Header",
    );
    check_struct(
        include_str!("../../learn/optim.rs"),
        "OptimizerUniform",
        std::mem::size_of::<crate::learn::optim::OptimizerUniform>(),
        OPTIMIZER,
        "Optimizer",
    );
    check_struct(
        include_str!("../../learn/policy/gpu.rs"),
        "LayerUniform",
        std::mem::size_of::<crate::learn::policy::gpu::LayerUniform>(),
        POLICY,
        "Layer",
    );
    check_struct(
        include_str!("../../learn/shac/gpu_critic.rs"),
        "CriticUniform",
        std::mem::size_of::<crate::learn::shac::gpu_critic::CriticUniform>(),
        CRITIC,
        "Critic",
    );
    check_struct(
        include_str!("../../learn/shac/gpu_critic.rs"),
        "CriticLayer",
        std::mem::size_of::<crate::learn::shac::gpu_critic::CriticLayer>(),
        CRITIC,
        "CriticLayer",
    );
}

#[test]
fn a_renamed_field_is_caught() {
    let source =
        include_str!("../layout/header.rs").replacen("pub n_bodies: u32", "pub n_body: u32", 1);
    let result = std::panic::catch_unwind(|| {
        check_struct(
            &source,
            "Header",
            std::mem::size_of::<layout::Header>(),
            STEP,
            "Header",
        )
    });
    assert!(result.is_err());
}

/// Every `hdr.off_<record> + index * <size>` in the kernels uses the size that the host packs
/// with: the literal's value, or the prelude's constant of that record.
#[test]
fn record_sizes_in_the_kernels_are_the_hosts() {
    let records = [
        ("joint", stride::JOINT, "JOINT_RECORD_LEN"),
        ("lock", stride::LOCK, "LOCK_RECORD_LEN"),
        ("limit", stride::LIMIT, "LIMIT_RECORD_LEN"),
        ("servo", stride::SERVO, "SERVO_RECORD_LEN"),
        ("force", stride::FORCE, "FORCE_RECORD_LEN"),
        ("contact", stride::CONTACT, "CONTACT_RECORD_LEN"),
        ("pair", stride::PAIR, "PAIR_RECORD_LEN"),
        ("row", stride::ROW, "ROW_RECORD_LEN"),
        (
            "world_contact",
            stride::WORLD_CONTACT,
            "WORLD_CONTACT_RECORD_LEN",
        ),
        ("passive", stride::PASSIVE, "PASSIVE_RECORD_LEN"),
        ("fluid", stride::FLUID, "FLUID_RECORD_LEN"),
        ("tendon", stride::TENDON, "TENDON_RECORD_LEN"),
        ("tendon_term", stride::TENDON_TERM, "TENDON_TERM_RECORD_LEN"),
    ];
    let mut seen = vec![0; records.len()];
    for source in SHARED.iter().chain([&STEP, &STEP_ADJOINT, &LOSS, &POLICY]) {
        for (k, (record, size, constant)) in records.iter().enumerate() {
            let needle = format!("hdr.off_{record} + ");
            for (at, _) in source.text.match_indices(&needle) {
                let rest = &source.text[at + needle.len()..];
                let expression: String = rest
                    .chars()
                    .take_while(|c| *c != ';' && *c != ')')
                    .collect();
                let Some((_, multiplier)) = expression.split_once('*') else {
                    continue;
                };
                let multiplier = multiplier.trim();
                let ok = multiplier == *constant || multiplier == format!("{size}u");
                assert!(
                    ok,
                    "shaders/{}: `hdr.off_{record} + {expression}`: records are {size} words \
                     ({constant})",
                    source.name
                );
                seen[k] += 1;
            }
        }
    }
    for ((record, _, _), n) in records.iter().zip(&seen) {
        assert!(*n > 0, "no kernel indexes the {record} records");
    }
}

/// The host packs its records with the sizes emitted into the prelude.
#[test]
fn the_host_packs_records_with_the_prelude_sizes() {
    for name in crate::io::models::names() {
        let model = crate::io::models::builtin(name).unwrap();
        let c = Compiled::new(&model);
        let h = c.header;
        let sections = [
            ("joint", h.off_joint, h.off_lock, h.n_joints, stride::JOINT),
            ("lock", h.off_lock, h.off_limit, h.n_lock, stride::LOCK),
            ("limit", h.off_limit, h.off_servo, h.n_limit, stride::LIMIT),
            ("servo", h.off_servo, h.off_force, h.n_servo, stride::SERVO),
            (
                "force",
                h.off_force,
                h.off_contact,
                h.n_force,
                stride::FORCE,
            ),
            (
                "contact",
                h.off_contact,
                h.off_pair,
                h.n_contacts,
                stride::CONTACT,
            ),
            ("pair", h.off_pair, h.off_tendon, h.n_pairs, stride::PAIR),
            (
                "tendon",
                h.off_tendon,
                h.off_tendon_term,
                h.n_tendon,
                stride::TENDON,
            ),
            (
                "tendon term",
                h.off_tendon_term,
                h.off_row,
                h.n_tendon_terms,
                stride::TENDON_TERM,
            ),
        ];
        for (record, start, end, count, size) in sections {
            assert_eq!(
                (end - start) as usize,
                count as usize * size,
                "{name}: {count} {record} records between words {start} and {end}"
            );
        }
        assert!(c.packed.len() >= h.off_row as usize + h.n_rows as usize * stride::ROW);
        assert_eq!(
            h.off_passive as usize,
            h.off_row as usize + h.n_rows as usize * stride::ROW,
            "{name}: the passive records follow the row table"
        );
        assert!(c.packed.len() >= h.off_passive as usize + h.n_passive as usize * stride::PASSIVE);
        assert!(c.packed.len() >= h.off_fluid as usize + h.n_fluid as usize * stride::FLUID);
    }
    let prelude = prelude();
    assert!(prelude.contains(&format!(
        "const JOINT_RECORD_LEN: u32 = {}u;",
        stride::JOINT
    )));
    assert!(
        prelude.contains("const UNBOUNDED: f32 = 1e20;"),
        "{prelude}"
    );
}

/// The calls `<stage>_forward` (or `_forward_taped`) and `<stage>_adjoint` in the body of
/// `fn name` in `text`, in order, as (stage, is_adjoint).
fn stage_calls(text: &str, name: &str) -> Vec<(String, bool)> {
    let start = text
        .find(&format!("fn {name}("))
        .unwrap_or_else(|| panic!("no fn {name}"));
    let open = start + text[start..].find('{').expect("a body");
    let mut depth = 0;
    let mut end = open;
    for (k, c) in text[open..].char_indices() {
        depth += match c {
            '{' => 1,
            '}' => -1,
            _ => 0,
        };
        if depth == 0 {
            end = open + k;
            break;
        }
    }
    let body = &text[open..end];
    let mut calls = Vec::new();
    let identifier = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for (k, _) in body.match_indices('(') {
        let before = &body[..k];
        let name_start = before.rfind(|c| !identifier(c)).map_or(0, |p| p + 1);
        let callee = &before[name_start..];
        let stage_of = |s: &str| STEP_STAGES.contains(&s).then(|| s.to_string());
        if let Some(stage) = callee
            .strip_suffix("_forward_taped")
            .or_else(|| callee.strip_suffix("_forward"))
        {
            calls.extend(stage_of(stage).map(|s| (s, false)));
        } else if let Some(stage) = callee.strip_suffix("_adjoint") {
            calls.extend(stage_of(stage).map(|s| (s, true)));
        }
    }
    calls
}

#[test]
fn the_stage_order_is_the_same_in_both_kernels_and_the_twin() {
    let forward: Vec<(String, bool)> = STEP_STAGES.iter().map(|s| (s.to_string(), false)).collect();
    let backward: Vec<(String, bool)> = STEP_STAGES
        .iter()
        .rev()
        .map(|s| (s.to_string(), true))
        .collect();
    // `step_adjoint` (the WGSL entry point and the twin's method) recomputes every stage but
    // the last from the step's start (the position update's adjoint needs only its input), then
    // runs the adjoints in reverse.
    let recompute_then_adjoint: Vec<(String, bool)> = forward[..forward.len() - 1]
        .iter()
        .cloned()
        .chain(backward.iter().cloned())
        .collect();
    let twin = include_str!("../twin/mod.rs");
    for (place, calls, expected) in [
        (
            "shaders/step.wgsl step_forward",
            stage_calls(STEP.text, "step_forward"),
            &forward,
        ),
        (
            "shaders/step_adjoint.wgsl step_forward_taped",
            stage_calls(STEP_ADJOINT.text, "step_forward_taped"),
            &forward,
        ),
        (
            "shaders/step_adjoint.wgsl step_adjoint",
            stage_calls(STEP_ADJOINT.text, "step_adjoint"),
            &recompute_then_adjoint,
        ),
        (
            "src/engine/twin/mod.rs step (write_rows, then the solve)",
            // `step` calls `write_rows` (every stage before the solve), then the last two.
            stage_calls(twin, "write_rows")
                .into_iter()
                .chain(stage_calls(twin, "step"))
                .collect(),
            &forward,
        ),
        (
            "src/engine/twin/mod.rs step_adjoint",
            stage_calls(twin, "step_adjoint"),
            &recompute_then_adjoint,
        ),
    ] {
        assert_eq!(&calls, expected, "{place}");
    }
    // The check reads what it claims to: a swapped pair is caught.
    let swapped = STEP.text.replacen(
        "joint_lock_rows_forward(i);\n        servo_rows_forward(i);",
        "servo_rows_forward(i);\n        joint_lock_rows_forward(i);",
        1,
    );
    assert_ne!(&stage_calls(&swapped, "step_forward"), &forward);
}

/// The affine law's head and its "no activation" word are the host's in the kernel and the
/// twin: a kernel reading a stale head would take an activation word for a term.
#[test]
fn the_affine_law_head_is_the_hosts_in_the_kernel_and_the_twin() {
    let kernel = include_str!("../../../shaders/actuator.wgsl");
    let twin = include_str!("../twin/actuator.rs");
    assert!(kernel.contains(&format!(
        "const AFFINE_LAW_HEAD: u32 = {}u;",
        layout::AFFINE_LAW_HEAD
    )));
    assert!(kernel.contains(&format!(
        "const NO_ACTIVATION: u32 = 0x{:x}u;",
        layout::NO_ACTIVATION
    )));
    assert!(twin.contains(&format!(
        "const AFFINE_LAW_HEAD: u32 = {};",
        layout::AFFINE_LAW_HEAD
    )));
    assert!(twin.contains("const NO_ACTIVATION: u32 = u32::MAX;"));
}
