//! `<include file="..."/>`: the included file's `<mujoco>` children are spliced into the
//! including document in place of the element, before anything else reads it.
//!
//! The splice is textual so that the rest of the importer keeps working on one document. Each
//! spliced piece starts on a line of its own, so every line of the merged text comes from
//! exactly one line of one file: [`Sources`] maps it back, and errors and warnings name the
//! file and line the user wrote.

use std::borrow::Cow;
use std::ops::Range;

use super::*;

/// Where the lines of the merged text come from.
#[derive(Clone, Debug, Default)]
pub(super) struct Sources {
    /// The files read: index 0 is the top-level model (`None` for text given directly).
    pub(super) files: Vec<Option<PathBuf>>,
    /// For each line of the merged text (index = line - 1): the file index and 1-based line.
    /// Empty when nothing was included: merged lines are then the top-level file's lines.
    pub(super) lines: Vec<(usize, usize)>,
}

impl Sources {
    /// The file and line a 1-based line of the merged text came from.
    pub(super) fn origin(&self, line: usize) -> (Option<&Path>, usize) {
        match line.checked_sub(1).and_then(|i| self.lines.get(i)) {
            Some(&(f, l)) => (self.files[f].as_deref(), l),
            None => (self.files.first().and_then(|f| f.as_deref()), line),
        }
    }

    /// Whether a merged line comes from an included file rather than the top-level one.
    pub(super) fn is_included(&self, line: usize) -> bool {
        line.checked_sub(1)
            .and_then(|i| self.lines.get(i))
            .is_some_and(|&(f, _)| f != 0)
    }
}

/// Includes nested deeper than this are refused (a cycle through differently spelled paths
/// is caught by canonical paths; this bounds pathological but acyclic nesting).
const MAX_INCLUDE_DEPTH: usize = 32;

/// Text with its per-line origins (`lines.len()` is the number of newlines plus one).
struct Piece {
    text: String,
    lines: Vec<(usize, usize)>,
}

impl Piece {
    fn original(text: &str, file: usize, first_line: usize) -> Piece {
        let n = text.bytes().filter(|&b| b == b'\n').count();
        Piece {
            text: text.to_string(),
            lines: (0..=n).map(|k| (file, first_line + k)).collect(),
        }
    }

    /// Appends `other` on a line of its own.
    fn push_line(&mut self, other: Piece) {
        self.text.push('\n');
        self.text.push_str(&other.text);
        self.lines.extend(other.lines);
    }
}

/// 1-based line of a byte offset.
fn row_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A roxmltree error as a model error at its file and line.
pub(super) fn parse_error(e: roxmltree::Error, text: &str, file: Option<&Path>) -> Error {
    // roxmltree gives the end of the stream no position (it says 1:1): the file ends before
    // the document does, so the last line is where it was cut.
    let (line, message) = match e {
        roxmltree::Error::UnexpectedEndOfStream => (
            text.lines().count().max(1),
            "malformed XML: the file ends before the document does (truncated?)".to_string(),
        ),
        _ => (e.pos().row as usize, format!("malformed XML: {e}")),
    };
    Error::from(ModelError {
        file: file.map(Path::to_path_buf),
        line: Some(line),
        field: FieldPath::default(),
        message,
    })
}

struct Expander {
    sources: Sources,
    /// Canonical paths of the files being expanded, outermost first (cycle detection).
    stack: Vec<PathBuf>,
}

/// Splices every `<include>` of `text` (read from `file`, if any). Returns the text unchanged
/// when it includes nothing.
pub(super) fn expand<'t>(text: &'t str, file: Option<&Path>) -> Result<(Cow<'t, str>, Sources)> {
    let doc = Document::parse(text).map_err(|e| parse_error(e, text, file))?;
    let mut ex = Expander {
        sources: Sources {
            files: vec![file.map(Path::to_path_buf)],
            lines: Vec::new(),
        },
        stack: file
            .map(|f| std::fs::canonicalize(f).unwrap_or_else(|_| f.to_path_buf()))
            .into_iter()
            .collect(),
    };
    if !doc.descendants().any(|n| n.has_tag_name("include")) {
        return Ok((Cow::Borrowed(text), ex.sources));
    }
    let piece = ex.expand_range(text, &doc, 0..text.len(), 0, 0)?;
    ex.sources.lines = piece.lines;
    Ok((Cow::Owned(piece.text), ex.sources))
}

impl Expander {
    fn error(&self, file: usize, line: usize, field: &str, message: String) -> Error {
        Error::from(ModelError {
            file: self.sources.files[file].clone(),
            line: Some(line),
            field: FieldPath::key(field),
            message,
        })
    }

    /// The text of `range` with the includes inside it replaced by the included content.
    fn expand_range(
        &mut self,
        text: &str,
        doc: &Document,
        range: Range<usize>,
        file: usize,
        depth: usize,
    ) -> Result<Piece> {
        let includes: Vec<Node> = doc
            .descendants()
            .filter(|n| {
                n.has_tag_name("include")
                    && n.range().start >= range.start
                    && n.range().end <= range.end
            })
            .collect();
        let mut cursor = range.start;
        let mut out = Piece::original(&text[cursor..range.start], file, row_of(text, cursor));
        for inc in includes {
            let r = inc.range();
            out.text.push_str(&text[cursor..r.start]);
            let extra = text[cursor..r.start]
                .bytes()
                .filter(|&b| b == b'\n')
                .count();
            let last = out.lines.last().copied().unwrap_or((file, 1));
            out.lines.extend((1..=extra).map(|k| (file, last.1 + k)));
            let line = row_of(text, r.start);
            let included = self.include(inc, file, line, depth)?;
            out.push_line(included);
            // The rest of the including file continues on a line of its own.
            out.push_line(Piece::original("", file, row_of(text, r.end)));
            cursor = r.end;
        }
        let tail = &text[cursor..range.end];
        out.text.push_str(tail);
        let extra = tail.bytes().filter(|&b| b == b'\n').count();
        let last = out.lines.last().copied().unwrap_or((file, 1));
        out.lines.extend((1..=extra).map(|k| (file, last.1 + k)));
        Ok(out)
    }

    /// The children of the included file's `<mujoco>`, themselves expanded.
    fn include(&mut self, inc: Node, file: usize, line: usize, depth: usize) -> Result<Piece> {
        for a in inc.attributes() {
            if a.name() != "file" {
                return Err(self.error(
                    file,
                    line,
                    &format!("include.{}", a.name()),
                    format!("unknown attribute '{}' on <include>", a.name()),
                ));
            }
        }
        let Some(name) = inc.attribute("file") else {
            return Err(self.error(
                file,
                line,
                "include",
                "<include> needs a file attribute".to_string(),
            ));
        };
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(self.error(
                file,
                line,
                "include",
                format!("includes nested more than {MAX_INCLUDE_DEPTH} deep"),
            ));
        }
        let including = self.sources.files[file].clone();
        let base = including
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(Path::new(""));
        let path = base.join(name);
        let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if self.stack.contains(&canonical) {
            let here = including
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "the model text".to_string());
            return Err(self.error(
                file,
                line,
                "include.file",
                format!(
                    "include cycle: {here} includes {}, which is already being included \
                     (directly or through other files)",
                    path.display()
                ),
            ));
        }
        let included_text = crate::model::read_model_text(&path).map_err(|e| {
            let what = match &e {
                Error::Io { source, .. } => source.to_string(),
                other => other.to_string(),
            };
            match e {
                // An error inside the included file already names it and its line.
                Error::Model(m) if m.file.as_deref() == Some(path.as_path()) => Error::Model(m),
                _ => self.error(
                    file,
                    line,
                    "include.file",
                    format!("cannot read included file {}: {what}", path.display()),
                ),
            }
        })?;
        let index = self.sources.files.len();
        self.sources.files.push(Some(path.clone()));
        let doc = Document::parse(&included_text)
            .map_err(|e| parse_error(e, &included_text, Some(&path)))?;
        let root = doc.root_element();
        if root.tag_name().name() != "mujoco" {
            return Err(self.error(
                index,
                row_of(&included_text, root.range().start),
                root.tag_name().name(),
                format!(
                    "an included file's root element must be <mujoco>, found <{}>",
                    root.tag_name().name()
                ),
            ));
        }
        let inner = match (root.first_child(), root.last_child()) {
            (Some(a), Some(b)) => a.range().start..b.range().end,
            _ => 0..0,
        };
        self.stack.push(canonical);
        let piece = self.expand_range(&included_text, &doc, inner, index, depth + 1);
        self.stack.pop();
        piece
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn lines_map_back_to_each_file() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "sub/a.xml",
            "<mujoco>\n  <include file=\"b.xml\"/>\n  <option timestep=\"0.01\"/>\n</mujoco>\n",
        );
        write(
            dir.path(),
            "sub/b.xml",
            "<mujoco>\n\n  <asset/>\n</mujoco>\n",
        );
        let top = "<mujoco>\n  <include file=\"sub/a.xml\"/> <worldbody/>\n</mujoco>\n";
        let main = write(dir.path(), "main.xml", top);
        let (text, sources) = expand(top, Some(&main)).unwrap();
        let doc = Document::parse(&text).unwrap();
        let line_of = |tag: &str| {
            let n = doc.descendants().find(|n| n.has_tag_name(tag)).unwrap();
            row_of(&text, n.range().start)
        };
        let (f, l) = sources.origin(line_of("asset"));
        assert_eq!((f.unwrap().file_name().unwrap(), l), ("b.xml".as_ref(), 3));
        let (f, l) = sources.origin(line_of("option"));
        assert_eq!((f.unwrap().file_name().unwrap(), l), ("a.xml".as_ref(), 3));
        let (f, l) = sources.origin(line_of("worldbody"));
        assert_eq!(
            (f.unwrap().file_name().unwrap(), l),
            ("main.xml".as_ref(), 2)
        );
        assert!(sources.is_included(line_of("asset")));
        assert!(!sources.is_included(line_of("worldbody")));
    }

    #[test]
    fn a_cycle_names_both_files() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "a.xml",
            "<mujoco>\n<include file=\"b.xml\"/>\n</mujoco>",
        );
        let b = write(
            dir.path(),
            "b.xml",
            "<mujoco>\n\n<include file=\"a.xml\"/>\n</mujoco>",
        );
        let a = dir.path().join("a.xml");
        let text = std::fs::read_to_string(&a).unwrap();
        let err = expand(&text, Some(&a)).unwrap_err().to_string();
        assert!(err.contains("include cycle"), "{err}");
        assert!(err.contains(&format!("{}:3", b.display())), "{err}");
        assert!(err.contains("a.xml, which is already"), "{err}");
    }

    #[test]
    fn a_missing_file_is_an_error_at_the_include() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(
            dir.path(),
            "a.xml",
            "<mujoco>\n\n<include file=\"nope.xml\"/>\n</mujoco>",
        );
        let text = std::fs::read_to_string(&a).unwrap();
        let err = expand(&text, Some(&a)).unwrap_err().to_string();
        assert!(err.contains(&format!("{}:3", a.display())), "{err}");
        assert!(err.contains("nope.xml"), "{err}");
    }

    #[test]
    fn text_without_includes_is_borrowed() {
        let text = "<mujoco><worldbody/></mujoco>";
        let (out, sources) = expand(text, None).unwrap();
        assert!(matches!(out, Cow::Borrowed(_)));
        assert!(sources.lines.is_empty());
    }
}
