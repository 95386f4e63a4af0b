//! Fuzzing the model loaders (issue 18): the shipped TOML models and the MJCF fixtures are
//! mutated byte- and token-wise, written to a file and loaded. Whatever the input, loading
//! must not panic, and must either succeed or fail with a model error naming the file and a
//! line. Bounded: a fixed number of cases per file, a few seconds in all.

use std::path::{Path, PathBuf};

use backdrive::{Error, io::models};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// One edit of the text.
#[derive(Clone, Debug)]
enum Mutation {
    /// Deletes `len` bytes at a fraction `at` of the text.
    Delete { at: f64, len: usize },
    /// Inserts bytes at a fraction of the text.
    Insert { at: f64, bytes: Vec<u8> },
    /// Replaces the `k`-th number in the text.
    Number { k: usize, with: &'static str },
    /// Duplicates the line at a fraction of the text.
    DuplicateLine { at: f64 },
    /// Cuts the text at a fraction of it.
    Truncate { at: f64 },
}

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1e39",
    "-1e39",
    "1e38",
    "1e-45",
    "nan",
    "inf",
    "-inf",
    "NaN",
    "1e308",
    "-2147483649",
    "\"junk\"",
    "1, 2",
    "",
    "0x10",
    "1.5.5",
];

const SNIPPETS: &[&[u8]] = &[
    b"[",
    b"]",
    b"\"",
    b"<",
    b">",
    b"/>",
    b"=",
    b"\n",
    b"[[body]]\n",
    b"[[joint]]\n",
    b"<body>",
    b"</body>",
    b"<joint/>",
    b"<geom/>",
    b"\xff",
    b"\xc3",
    b"#",
    b"<!--",
    b"\0",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = 0.0..1.0f64;
    prop_oneof![
        (at.clone(), 1..40usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (at.clone(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (at.clone(), prop::sample::select(SNIPPETS)).prop_map(|(at, s)| Mutation::Insert {
            at,
            bytes: s.to_vec()
        }),
        (0..400usize, prop::sample::select(NUMBERS))
            .prop_map(|(k, with)| Mutation::Number { k, with }),
        at.clone().prop_map(|at| Mutation::DuplicateLine { at }),
        at.prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(text: &[u8], mutation: &Mutation) -> Vec<u8> {
    let pos = |at: f64| ((text.len() as f64 * at) as usize).min(text.len());
    let mut out = text.to_vec();
    match mutation {
        Mutation::Delete { at, len } => {
            let start = pos(*at);
            out.drain(start..(start + len).min(text.len()));
        }
        Mutation::Insert { at, bytes } => {
            let start = pos(*at);
            out.splice(start..start, bytes.iter().copied());
        }
        Mutation::Number { k, with } => {
            // The k-th maximal run of digits, signs, dots and exponents (modulo their count).
            let is_num = |b: u8| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'e';
            let mut runs = Vec::new();
            let mut i = 0;
            while i < text.len() {
                if text[i].is_ascii_digit() {
                    let mut s = i;
                    while s > 0 && is_num(text[s - 1]) {
                        s -= 1;
                    }
                    let mut e = i;
                    while e < text.len() && is_num(text[e]) {
                        e += 1;
                    }
                    runs.push((s, e));
                    i = e;
                } else {
                    i += 1;
                }
            }
            if !runs.is_empty() {
                let (s, e) = runs[k % runs.len()];
                out.splice(s..e, with.bytes());
            }
        }
        Mutation::DuplicateLine { at } => {
            let start = text[..pos(*at)]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1);
            let end = text[start..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(text.len(), |p| start + p + 1);
            let line = text[start..end].to_vec();
            out.splice(start..start, line);
        }
        Mutation::Truncate { at } => out.truncate(pos(*at)),
    }
    out
}

fn inputs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for (dir, ext) in [("models", "toml"), ("tests/fixtures/mjcf", "xml")] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == ext) {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    files
}

/// Loads `bytes` from a file named like `original`: Ok, or the error must be a model error
/// naming that file and a line.
fn check(original: &Path, bytes: &[u8], dir: &Path) -> Result<(), TestCaseError> {
    let path = dir.join(original.file_name().unwrap());
    std::fs::write(&path, bytes).unwrap();
    let result = std::panic::catch_unwind(|| models::load(path.to_str().unwrap()));
    let Ok(result) = result else {
        return Err(TestCaseError::fail("loading panicked"));
    };
    match result {
        Ok(_) => Ok(()),
        Err(Error::Model(m)) => {
            prop_assert_eq!(m.file.as_deref(), Some(path.as_path()), "{}", m);
            prop_assert!(m.line.is_some(), "no line: {}", m);
            let text = m.to_string();
            prop_assert!(
                text.starts_with(&format!("{}:", path.display())),
                "{}",
                text
            );
            Ok(())
        }
        Err(other) => Err(TestCaseError::fail(format!(
            "not a model error with file and line: {other}"
        ))),
    }
}

#[test]
fn mutated_model_files_load_or_fail_with_file_and_line() {
    let dir = std::env::temp_dir().join(format!("backdrive-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let start = std::time::Instant::now();
    for original in inputs() {
        let text = std::fs::read(&original).unwrap();
        let mut runner = TestRunner::new(Config {
            cases: 96,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&prop::collection::vec(mutation(), 1..4), |mutations| {
            let mutated = mutations.iter().fold(text.clone(), |t, m| apply(&t, m));
            check(&original, &mutated, &dir)
        });
        if let Err(e) = result {
            panic!("{}: {e}", original.display());
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    println!("fuzzed in {:?}", start.elapsed());
}
