//! The models shipped with backdrive (files under `models/`), and resolution of a model
//! argument that is either a file path or a shipped model's name.

use std::path::Path;

use crate::error::{Error, Result};
use crate::model::Model;

/// Shipped models: name and TOML text.
pub const BUILTIN: &[(&str, &str)] = &[
    ("ball", include_str!("../../models/ball.toml")),
    ("arm", include_str!("../../models/arm.toml")),
    ("quadruped", include_str!("../../models/quadruped.toml")),
    ("cartpole", include_str!("../../models/cartpole.toml")),
    (
        "double-pendulum",
        include_str!("../../models/double-pendulum.toml"),
    ),
];

/// Names of the shipped models.
pub fn names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// A shipped model by name.
pub fn builtin(name: &str) -> Result<Model> {
    let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name).ok_or_else(|| {
        Error::InvalidInput(format!(
            "unknown model '{name}': expected a model file or one of {}",
            names().join(", ")
        ))
    })?;
    Model::from_toml_str(text, Some(Path::new(&format!("models/{name}.toml"))))
}

/// A loaded model and the importer's warnings (attributes it read but could not honour).
#[derive(Clone, Debug)]
pub struct LoadedModel {
    /// The model.
    pub model: Model,
    /// Warnings of the MJCF importer, each naming the element and line; empty for TOML files
    /// and shipped models.
    pub warnings: Vec<String>,
}

/// Loads `spec` as a file if it names an existing file, otherwise as a shipped model, and
/// drops the importer's warnings (see [`load_with_warnings`] to see them).
pub fn load(spec: &str) -> Result<Model> {
    load_with_warnings(spec, false).map(|loaded| loaded.model)
}

/// Loads `spec` as a file if it names an existing file, otherwise as a shipped model. A path
/// ending in `.xml` is read as a MuJoCo MJCF file ([`crate::io::mjcf`]); features backdrive cannot
/// simulate are errors, or warnings when `ignore_unsupported` is set. Nothing is printed: the
/// caller decides what to do with the warnings.
pub fn load_with_warnings(spec: &str, ignore_unsupported: bool) -> Result<LoadedModel> {
    let path = Path::new(spec);
    // Something that exists but is no regular file is refused by what it is, unless the
    // argument is a shipped model's name that happens to name a directory here.
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.is_file()
        && !(meta.is_dir() && names().contains(&spec))
    {
        return Err(Error::InvalidInput(format!(
            "{spec}: is {}, not a model file",
            crate::model::file_kind(&meta.file_type())
        )));
    }
    let is_xml = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xml"));
    let model = if is_xml {
        let options = crate::io::mjcf::MjcfOptions {
            ignore_unsupported,
            ..Default::default()
        };
        let import = crate::io::mjcf::load_mjcf_with(path, &options)?;
        return Ok(LoadedModel {
            model: import.model,
            warnings: import.warnings.iter().map(|w| w.to_string()).collect(),
        });
    } else if path.is_file() {
        Model::from_toml_file(path)?
    } else if spec.ends_with(".toml") {
        return Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    } else {
        builtin(spec)?
    };
    Ok(LoadedModel {
        model,
        warnings: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_model_loads_and_round_trips() {
        for name in names() {
            let m = builtin(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            let again = Model::from_toml_str(&m.to_toml(), None).unwrap();
            assert_eq!(m, again, "{name}");
        }
    }

    #[test]
    fn mjcf_warnings_are_returned_not_printed() {
        // A spatial tendon through more than two sites is one thing the importer cannot honour.
        let path = std::env::temp_dir().join(format!(
            "backdrive-models-warnings-{}.xml",
            std::process::id()
        ));
        std::fs::write(
            &path,
            r#"<mujoco><worldbody><body name="arm" pos="0 0 1">
                 <joint name="hinge" type="hinge" axis="0 1 0"/>
                 <geom type="capsule" fromto="0 0 0 0.5 0 0" size="0.05"/>
                 <site name="mid" pos="0.25 0 0"/><site name="tip" pos="0.5 0 0"/></body>
                 <site name="anchor" pos="0 0 2"/></worldbody>
               <tendon><spatial name="string" limited="true" range="0 1">
                 <site site="anchor"/><site site="mid"/><site site="tip"/></spatial></tendon></mujoco>"#,
        )
        .unwrap();
        let spec = path.to_str().unwrap();
        let err = load_with_warnings(spec, false).unwrap_err().to_string();
        assert!(err.contains("spatial"), "{err}");
        let loaded = load_with_warnings(spec, true).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(
            loaded.warnings.iter().any(|w| w.contains("spatial")),
            "{:?}",
            loaded.warnings
        );
        assert!(
            load_with_warnings("ball", false)
                .unwrap()
                .warnings
                .is_empty()
        );
    }
}
