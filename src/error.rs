//! Typed errors. Nothing in the public API panics on bad input; it returns one of these.

use std::fmt;
use std::path::PathBuf;

/// A location inside a model: `body[2].mass`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<PathSegment>);

/// One step of a [`FieldPath`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSegment {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

impl FieldPath {
    /// Builds a path from a table, an index into it and a key: `body[2].mass`.
    pub fn item(table: &str, index: usize, key: &str) -> Self {
        let mut p = vec![
            PathSegment::Key(table.to_string()),
            PathSegment::Index(index),
        ];
        for part in key.split('.').filter(|s| !s.is_empty()) {
            p.push(PathSegment::Key(part.to_string()));
        }
        FieldPath(p)
    }

    /// A top-level key, such as `settings.dt`.
    pub fn key(key: &str) -> Self {
        FieldPath(
            key.split('.')
                .map(|s| PathSegment::Key(s.to_string()))
                .collect(),
        )
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                PathSegment::Key(k) if i == 0 => write!(f, "{k}")?,
                PathSegment::Key(k) => write!(f, ".{k}")?,
                PathSegment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A problem with a model, located as precisely as the source allows.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelError {
    /// The file the model came from, if any.
    pub file: Option<PathBuf>,
    /// 1-based line in that file, if known.
    pub line: Option<usize>,
    /// The offending field.
    pub field: FieldPath,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{}: ", file.display(), line)?,
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            (None, Some(line)) => write!(f, "line {line}: ")?,
            (None, None) => {}
        }
        if !self.field.0.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        write!(f, "{}", self.message)
    }
}

/// Every error backdrive returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model file or builder input is malformed or inconsistent.
    #[error("invalid model: {0}")]
    Model(Box<ModelError>),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// No GPU adapter matched the request.
    #[error("no GPU adapter found: {0}")]
    NoAdapter(String),
    /// The GPU rejected a request (device creation, buffer mapping...).
    #[error("GPU error: {0}")]
    Gpu(String),
    /// A WGSL shader failed validation.
    #[error("shader error: {0}")]
    Shader(String),
    /// The requested batch does not fit the device.
    #[error("does not fit the device: {0}")]
    TooLarge(String),
    /// A gradient became NaN or infinite: (instance, step) of the first occurrence for each
    /// affected instance, counting steps from 0; empty when the state adjoints stayed finite
    /// but a reduction over them did not (a policy's summed weight gradient).
    #[error("{}", non_finite_message(.0))]
    NonFiniteGradient(Vec<(usize, u32)>),
    /// An argument was out of range or had the wrong size.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl From<ModelError> for Error {
    fn from(e: ModelError) -> Self {
        Error::Model(Box::new(e))
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn non_finite_message(first: &[(usize, u32)]) -> String {
    if first.is_empty() {
        return "non-finite gradient: the summed parameter gradient has a NaN or infinite entry \
                although every instance's state adjoint stayed finite"
            .into();
    }
    format!(
        "non-finite gradient in {} instance(s); first: {}. If the rollout's states are finite, \
         the state adjoint grew step after step back through time until it overflowed: \
         contact-rich rollouts can amplify it, so shorten the horizon or lower the gradient \
         decay (the paper's alpha)",
        first.len(),
        first
            .iter()
            .take(5)
            .map(|(i, t)| format!("instance {i} at step {t}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_gradient_names_the_first_steps_and_the_remedy() {
        let text = Error::NonFiniteGradient(vec![(0, 372), (3, 10)]).to_string();
        assert!(
            text.starts_with("non-finite gradient in 2 instance(s); first: instance 0 at step 372, instance 3 at step 10."),
            "{text}"
        );
        assert!(
            text.contains("shorten the horizon or lower the gradient decay"),
            "{text}"
        );
        let text = Error::NonFiniteGradient(vec![]).to_string();
        assert!(
            text.contains("every instance's state adjoint stayed finite"),
            "{text}"
        );
    }
}
