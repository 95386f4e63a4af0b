//! WGSL sources, assembled into one module per pipeline and validated with naga.
//!
//! Each stage lives in its own file under `shaders/`, forward and adjoint side by side. A
//! pipeline's module is the shared files followed by its entry file; [`validate`] reports
//! naga's errors against the original file and line, so a shader mistake is caught by the test
//! suite even on a machine without a GPU.

use crate::error::{Error, Result};

/// A WGSL source file.
#[derive(Clone, Copy, Debug)]
pub struct Source {
    /// File name under `shaders/`.
    pub name: &'static str,
    /// Its text.
    pub text: &'static str,
}

macro_rules! source {
    ($name:literal) => {
        Source {
            name: $name,
            text: include_str!(concat!("../shaders/", $name)),
        }
    };
}

/// Modules every pipeline includes, in dependency order.
pub const SHARED: &[Source] = &[
    source!("common.wgsl"),
    source!("solver.wgsl"),
    source!("joint.wgsl"),
    source!("actuator.wgsl"),
    source!("contact.wgsl"),
    source!("integrate.wgsl"),
];

/// The forward step pipeline's entry file (entry point `step_forward`).
pub const STEP: Source = source!("step.wgsl");

/// The adjoint step pipeline's entry file (entry point `step_adjoint`).
pub const STEP_ADJOINT: Source = source!("step_adjoint.wgsl");

/// The loss pipelines' entry file (entry points `loss_forward` and `loss_adjoint`).
pub const LOSS: Source = source!("loss.wgsl");

/// The policy pipelines' entry file (observations, dense layers and their adjoints).
pub const POLICY: Source = source!("policy.wgsl");

/// The optimiser's file: standalone, without the shared physics modules.
pub const OPTIMIZER: Source = source!("optimizer.wgsl");

/// Every pipeline: its entry file and entry point.
pub const PIPELINES: &[(Source, &str)] = &[
    (STEP, "step_forward"),
    (STEP_ADJOINT, "step_adjoint"),
    (LOSS, "loss_forward"),
    (LOSS, "loss_adjoint"),
    (POLICY, "policy_observe_forward"),
    (POLICY, "dense_forward_wide"),
    (POLICY, "dense_forward_narrow"),
    (POLICY, "policy_gather_command_adjoint"),
    (POLICY, "dense_backward_wide"),
    (POLICY, "dense_backward_narrow"),
    (POLICY, "dense_weight_gradient"),
    (POLICY, "policy_observe_adjoint"),
    (POLICY, "policy_forward_fused"),
    (POLICY, "policy_backward_fused"),
    (OPTIMIZER, "gradient_norm"),
    (OPTIMIZER, "apply_update"),
];

/// An assembled module with a map from its lines back to the source files.
pub struct Assembled {
    /// The concatenated WGSL.
    pub text: String,
    spans: Vec<(usize, &'static str)>,
}

impl Assembled {
    /// File and 1-based line of a line of the assembled text.
    pub fn origin(&self, line: usize) -> (&'static str, usize) {
        let mut current = ("<assembled>", line);
        for &(start, name) in &self.spans {
            if line >= start {
                current = (name, line - start + 1);
            }
        }
        current
    }
}

/// Concatenates the shared modules and an entry file (the optimiser stands alone).
pub fn assemble(entry: Source) -> Assembled {
    let mut text = String::new();
    let mut spans = Vec::new();
    let shared: &[Source] = if entry.name == OPTIMIZER.name {
        &[]
    } else {
        SHARED
    };
    if !shared.is_empty() {
        spans.push((1, "<generated>"));
        text.push_str(&format!(
            "const PRIVATE_SOLVER_BODIES: u32 = {}u;\n\
             const PRIVATE_SOLVER_ROWS: u32 = {}u;\n\
             const PRIVATE_SOLVER_VELOCITIES: u32 = {}u;\n",
            crate::layout::PRIVATE_SOLVER_BODIES,
            crate::layout::PRIVATE_SOLVER_ROWS,
            2 * crate::layout::PRIVATE_SOLVER_BODIES,
        ));
    }
    for src in shared.iter().chain(std::iter::once(&entry)) {
        let start = text.matches('\n').count() + 1;
        spans.push((start, src.name));
        text.push_str(src.text);
        if !src.text.ends_with('\n') {
            text.push('\n');
        }
    }
    Assembled { text, spans }
}

/// Parses and validates an assembled module with naga, reporting errors by source file and
/// line.
pub fn validate(assembled: &Assembled) -> Result<naga::Module> {
    let module = naga::front::wgsl::parse_str(&assembled.text).map_err(|e| {
        let location = e
            .location(&assembled.text)
            .map(|l| {
                let (file, line) = assembled.origin(l.line_number as usize);
                format!("shaders/{file}:{line}:{}: ", l.line_position)
            })
            .unwrap_or_default();
        Error::Shader(format!("{location}{}", e.message()))
    })?;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::empty(),
    )
    .validate(&module)
    .map_err(|e| {
        let location = e
            .location(&assembled.text)
            .map(|l| {
                let (file, line) = assembled.origin(l.line_number as usize);
                format!("shaders/{file}:{line}:{}: ", l.line_position)
            })
            .unwrap_or_default();
        Error::Shader(format!("{location}{}", e.emit_to_string(&assembled.text)))
    })?;
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pipeline_validates() {
        for (entry, entry_point) in PIPELINES {
            let module = validate(&assemble(*entry)).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                module.entry_points.iter().any(|e| e.name == *entry_point),
                "{} has no entry point {entry_point}",
                entry.name
            );
        }
    }

    #[test]
    fn errors_point_at_the_source_file() {
        let broken = Source {
            name: "broken.wgsl",
            text: "fn f() -> f32 {\n  return undefined_name;\n}\n",
        };
        let err = validate(&assemble(broken)).expect_err("must fail");
        assert!(err.to_string().contains("shaders/broken.wgsl:2"), "{err}");
    }
}
