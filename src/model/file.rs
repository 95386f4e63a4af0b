//! The TOML model file: reading with errors that name file, line and field; writing back.

use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::Model;
use super::validate::validate;
use crate::error::{Error, FieldPath, ModelError, PathSegment, Result};

impl Model {
    /// Parses and validates a model from TOML text. `file` is only used in error messages.
    pub fn from_toml_str(text: &str, file: Option<&Path>) -> Result<Model> {
        let model: Model = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            let field = e.span().map(|s| path_at(text, s.start)).unwrap_or_default();
            ModelError {
                file: file.map(Path::to_path_buf),
                line,
                field,
                message: e.message().trim().to_string(),
            }
        })?;
        validate(&model).map_err(|mut e| {
            e.file = file.map(Path::to_path_buf);
            e.line = locate(text, &e.field);
            e
        })?;
        Ok(model)
    }

    /// Reads and validates a model file.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        let text = read_model_text(path)?;
        Model::from_toml_str(&text, Some(path))
    }

    /// Serialises the model as TOML; [`Model::from_toml_str`] reads it back unchanged.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a model always serialises to TOML")
    }

    /// Checks the model's consistency (also done when reading a file).
    pub fn validate(&self) -> Result<()> {
        validate(self).map_err(Error::from)
    }
}

/// Reads a model file as text. A directory, FIFO, socket or device is refused by what it is,
/// before opening it (opening a FIFO would block until a writer comes); bytes that are not
/// UTF-8 are a model error at the line of the first bad byte.
pub(crate) fn read_model_text(path: &Path) -> Result<String> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(Error::InvalidInput(format!(
            "{}: is {}, not a model file",
            path.display(),
            file_kind(&meta.file_type())
        )));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = bytes[..valid].iter().filter(|&&b| b == b'\n').count() + 1;
        Error::from(ModelError {
            file: Some(path.to_path_buf()),
            line: Some(line),
            field: FieldPath::default(),
            message: format!(
                "the file is not UTF-8 text (invalid byte 0x{:02x} at byte offset {valid})",
                bytes[valid]
            ),
        })
    })
}

/// What a non-regular file is, for messages.
pub(crate) fn file_kind(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

/// 1-based line number of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The path of the field at `offset`: in each table the last key starting at or before it,
/// in each array the last item doing so (the parser's spans of an array-of-tables item cover
/// only its `[[header]]`, so containment cannot be used).
pub(crate) fn path_at(text: &str, offset: usize) -> FieldPath {
    let Ok(root) = DeTable::parse(text) else {
        return FieldPath::default();
    };
    let mut path = Vec::new();
    let mut table: Option<&DeTable> = Some(root.get_ref());
    let mut items: Option<&[toml::Spanned<DeValue>]> = None;
    loop {
        let next = if let Some(t) = table {
            t.iter()
                .map(|(k, v)| (k.span().start.min(v.span().start), k, v))
                .filter(|(start, _, _)| *start <= offset)
                .max_by_key(|(start, _, _)| *start)
                .map(|(_, k, v)| (PathSegment::Key(k.get_ref().to_string()), v))
        } else if let Some(list) = items {
            list.iter()
                .enumerate()
                .filter(|(_, v)| v.span().start <= offset)
                .max_by_key(|(_, v)| v.span().start)
                .map(|(n, v)| (PathSegment::Index(n), v))
        } else {
            None
        };
        let Some((segment, value)) = next else { break };
        path.push(segment);
        table = None;
        items = None;
        match value.get_ref() {
            DeValue::Table(t) => table = Some(t),
            DeValue::Array(a) => items = Some(&a[..]),
            _ => break,
        }
    }
    FieldPath(path)
}

/// Finds the line of a field, falling back to the nearest enclosing table that exists.
pub(crate) fn locate(text: &str, field: &FieldPath) -> Option<usize> {
    let root = DeTable::parse(text).ok()?;
    let mut span = root.span();
    let mut table: Option<&DeTable> = Some(root.get_ref());
    let mut value: Option<&DeValue> = None;
    for seg in &field.0 {
        let next = match (seg, table, value) {
            (PathSegment::Key(k), Some(t), _) => t
                .iter()
                .find(|(key, _)| key.get_ref().as_ref() == k.as_str())
                .map(|(key, v)| (key.span(), v)),
            (PathSegment::Index(n), _, Some(DeValue::Array(items))) => {
                items.get(*n).map(|v| (v.span(), v))
            }
            _ => None,
        };
        let Some((s, v)) = next else { break };
        span = s;
        value = Some(v.get_ref());
        table = match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => None,
        };
    }
    Some(line_of(text, span.start))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BALL: &str = r#"name = "ball"

[[body]]
name = "ball"
mass = 1.0
position = [0.0, 0.0, 0.5]

[[body.shape]]
type = "sphere"
radius = 0.5
"#;

    #[test]
    fn round_trips() {
        let m = Model::from_toml_str(BALL, None).unwrap();
        let again = Model::from_toml_str(&m.to_toml(), None).unwrap();
        assert_eq!(m, again);
    }

    #[test]
    fn negative_mass_names_line_and_field() {
        let text = BALL.replace("mass = 1.0", "mass = -1.0");
        let e = Model::from_toml_str(&text, Some(Path::new("ball.toml"))).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("ball.toml:5:"), "{msg}");
        assert!(msg.contains("body[0].mass"), "{msg}");
    }

    #[test]
    fn syntax_error_names_line() {
        let text = BALL.replace("radius = 0.5", "radius = ");
        let e = Model::from_toml_str(&text, Some(Path::new("x.toml"))).unwrap_err();
        assert!(e.to_string().contains("x.toml:10"), "{e}");
    }
}
