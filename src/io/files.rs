//! Output files written so that a failure or a crash at any point leaves either the old file
//! or the complete new one, and no temporary file behind on any error or signal.
//!
//! Every output goes through [`AtomicFile`] (or [`write_atomic`] for bytes already in memory):
//! the data is written to a uniquely named temporary file in the target's directory
//! (`.NAME.XXXXXX.tmp`, through [`tempfile::NamedTempFile`]), synced, renamed over the target and
//! the directory synced. The temporary file is removed on every error path (it is deleted when
//! dropped) and, once [`remove_temporaries_on_signal`] is installed, on Ctrl-C and SIGTERM too.
//! Only a kill that no process can catch (SIGKILL, power loss) can leave a hidden `.NAME.*.tmp`,
//! which nothing reads.
//!
//! [`prepare_output`] checks an output path before any work is done: it refuses directories
//! and special files (devices, FIFOs, sockets), follows a symbolic link to the file it names
//! (that file is replaced; the link stays), creates missing parent directories and proves the
//! directory writable by creating and removing a temporary file in it. [`prepare_outputs`] also
//! refuses two outputs that name the same file.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use tempfile::NamedTempFile;

use crate::error::{Error, Result};

/// Temporary files alive in this process, removed by the signal handler.
fn temporaries() -> MutexGuard<'static, BTreeSet<PathBuf>> {
    static TEMPORARIES: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    // A panic while the lock was held leaves the set itself intact.
    TEMPORARIES.lock().unwrap_or_else(|e| e.into_inner())
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn invalid(path: &Path, problem: &str) -> Error {
    Error::InvalidInput(format!("{}: {problem}", path.display()))
}

/// Installs a Ctrl-C / SIGTERM handler (once per process) that removes every temporary file of
/// an unfinished [`AtomicFile`] and exits with status 130. A write being renamed into place
/// finishes first, so the target is then the complete new file.
pub fn remove_temporaries_on_signal() -> Result<()> {
    static INSTALLED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            ctrlc::set_handler(|| {
                let mut live = temporaries();
                for path in live.iter() {
                    let _ = std::fs::remove_file(path);
                }
                live.clear();
                eprintln!("interrupted: unfinished outputs removed");
                std::process::exit(130);
            })
            .map_err(|e| format!("installing the Ctrl-C handler: {e}"))
        })
        .clone()
        .map_err(Error::InvalidInput)
}

/// Where an output named `path` will be written: `path` itself, or the file a symbolic link
/// names. Refuses directories, special files and dangling links. Does not touch the disk
/// beyond reading metadata.
pub fn output_target(path: &Path) -> Result<PathBuf> {
    if path.as_os_str().is_empty() {
        return Err(Error::InvalidInput("an output path is empty".into()));
    }
    let target = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(path).map_err(|e| {
            invalid(
                path,
                &format!("a symbolic link whose target cannot be resolved ({e}); outputs follow links to the file they name"),
            )
        })?,
        Ok(_) => path.to_path_buf(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(io_error(path, e)),
    };
    match std::fs::metadata(&target) {
        Ok(meta) if meta.is_dir() => Err(invalid(
            path,
            "is a directory; give a file name for the output",
        )),
        Ok(meta) if !meta.is_file() => Err(invalid(
            path,
            "is a special file (device, FIFO or socket); outputs are written only to regular \
             files, which the write would replace",
        )),
        Ok(_) => Ok(target),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if target.file_name().is_none() || path.to_string_lossy().ends_with('/') {
                Err(invalid(path, "names a directory, not a file"))
            } else {
                Ok(target)
            }
        }
        Err(e) => Err(io_error(path, e)),
    }
}

/// The directory an output's temporary file goes into.
fn directory_of(target: &Path) -> &Path {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn temporary_in(target: &Path) -> std::io::Result<NamedTempFile> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // A new output gets the permissions of any file the process creates (0666 less the umask),
    // not tempfile's private 0600; a replaced file keeps its own.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let temp = builder.tempfile_in(directory_of(target))?;
    if let Ok(meta) = std::fs::metadata(target) {
        temp.as_file().set_permissions(meta.permissions())?;
    }
    Ok(temp)
}

/// Checks, before any work, that `path` can be written as an output (see the module
/// documentation), creating its missing parent directories. Returns the file that will be
/// written (the target of a symbolic link).
pub fn prepare_output(path: &Path) -> Result<PathBuf> {
    let target = output_target(path)?;
    let dir = directory_of(&target);
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    // Creating (and dropping, which deletes) a temporary file proves the directory writable.
    temporary_in(&target)
        .map_err(|e| invalid(path, &format!("cannot write in {}: {e}", dir.display())))?;
    Ok(target)
}

/// [`prepare_output`] for every `(option, path)`, and refuses two that name the same file
/// (after following links), naming both options.
pub fn prepare_outputs(outputs: &[(&str, &Path)]) -> Result<Vec<PathBuf>> {
    let mut targets: Vec<(&str, PathBuf, PathBuf)> = Vec::new();
    for &(option, path) in outputs {
        let target = prepare_output(path)?;
        // The parent exists now, so canonicalising it names the file uniquely.
        let dir = std::fs::canonicalize(directory_of(&target))
            .map_err(|e| io_error(directory_of(&target), e))?;
        let key = dir.join(target.file_name().unwrap_or_default());
        if let Some((other, _, _)) = targets.iter().find(|(_, _, k)| *k == key) {
            return Err(invalid(
                path,
                &format!("{other} and {option} name the same file; give them different paths"),
            ));
        }
        targets.push((option, target, key));
    }
    Ok(targets.into_iter().map(|(_, t, _)| t).collect())
}

/// Fault injection for the tests of crash safety: `BACKDRIVE_FAILPOINT=POINT:FILE:N:ACTION`
/// makes the `N`-th write of a file named `FILE` stop at `POINT` (`created`, `written`,
/// `synced`, `renamed`) with `ACTION` `abort` (the process dies at once, as under SIGKILL) or
/// `error` (the write fails with an error).
fn failpoint(point: &str, target: &Path) -> std::io::Result<()> {
    static COUNTS: Mutex<Vec<(String, u32)>> = Mutex::new(Vec::new());
    let Ok(spec) = std::env::var("BACKDRIVE_FAILPOINT") else {
        return Ok(());
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let [want_point, file, nth, action] = parts[..] else {
        return Ok(());
    };
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned());
    if want_point != point || name.as_deref() != Some(file) {
        return Ok(());
    }
    let mut counts = COUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let count = match counts.iter_mut().find(|(p, _)| p == point) {
        Some((_, c)) => c,
        None => {
            counts.push((point.to_string(), 0));
            &mut counts.last_mut().expect("just pushed").1
        }
    };
    *count += 1;
    if nth.parse() != Ok(*count) {
        return Ok(());
    }
    match action {
        "abort" => std::process::abort(),
        _ => Err(std::io::Error::other(format!("failpoint {point} injected"))),
    }
}

/// An output file being written; [`AtomicFile::commit`] makes it appear under its name.
/// Dropped without a commit (an error, a panic), it leaves nothing behind.
pub struct AtomicFile {
    target: PathBuf,
    temp_path: PathBuf,
    /// Present until the commit.
    writer: Option<BufWriter<NamedTempFile>>,
}

impl AtomicFile {
    /// Checks `path` with [`prepare_output`] and starts writing a temporary file beside the
    /// file it names.
    pub fn create(path: &Path) -> Result<AtomicFile> {
        let target = prepare_output(path)?;
        let temp = temporary_in(&target).map_err(|e| io_error(directory_of(&target), e))?;
        let temp_path = temp.path().to_path_buf();
        temporaries().insert(temp_path.clone());
        let file = AtomicFile {
            target,
            temp_path,
            writer: Some(BufWriter::with_capacity(1 << 20, temp)),
        };
        failpoint("created", &file.target).map_err(|e| io_error(&file.temp_path, e))?;
        Ok(file)
    }

    /// The buffered writer of the temporary file.
    pub fn writer(&mut self) -> &mut BufWriter<NamedTempFile> {
        self.writer
            .as_mut()
            .expect("the writer is present until the commit")
    }

    /// The file that the commit replaces.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Context for write errors: the temporary file being written.
    pub fn describe(&self) -> String {
        format!("writing {}", self.temp_path.display())
    }

    /// Flushes and syncs the temporary file, renames it over the target and syncs the
    /// directory. On any error the temporary file is removed and the target is untouched
    /// (or, if only the final directory sync failed, already complete).
    pub fn commit(mut self) -> Result<PathBuf> {
        let writer = self
            .writer
            .take()
            .expect("the writer is present until the commit");
        let (target, temp_path) = (&self.target, &self.temp_path);
        let result = (|| {
            failpoint("written", target).map_err(|e| io_error(temp_path, e))?;
            let temp = writer
                .into_inner()
                .map_err(|e| io_error(temp_path, e.into_error()))?;
            temp.as_file()
                .sync_all()
                .map_err(|e| io_error(temp_path, e))?;
            failpoint("synced", target).map_err(|e| io_error(temp_path, e))?;
            // The signal handler waits for this lock, so a Ctrl-C here lets the rename finish.
            let mut live = temporaries();
            temp.persist(target)
                .map_err(|e| io_error(target, e.error))?;
            live.remove(temp_path);
            drop(live);
            failpoint("renamed", target).map_err(|e| io_error(target, e))?;
            let dir = directory_of(target);
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_error(dir, e))?;
            Ok(target.clone())
        })();
        // On failure the temporary file was deleted when `writer` or `temp` (or the persist
        // error holding it) was dropped.
        result
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // The temporary file deletes itself when `writer` drops (after this), unless the
        // commit renamed it; either way the signal handler no longer needs to know it.
        temporaries().remove(&self.temp_path);
    }
}

/// Writes `bytes` as the whole new content of `path`, atomically (see [`AtomicFile`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    let temp = file.temp_path.clone();
    file.writer()
        .write_all(bytes)
        .map_err(|e| io_error(&temp, e))?;
    file.commit().map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("backdrive-files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn an_abandoned_file_leaves_nothing_and_a_committed_one_replaces_the_target() {
        let dir = scratch("abandon");
        let path = dir.join("sub").join("x.csv");
        {
            let mut f = AtomicFile::create(&path).unwrap();
            f.writer().write_all(b"partial").unwrap();
        }
        assert!(!path.exists());
        assert!(entries(&dir.join("sub")).is_empty());
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"whole").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"whole");
        assert_eq!(entries(&dir.join("sub")), ["x.csv"]);
        assert!(!temporaries().iter().any(|p| p.starts_with(&dir)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_commit_removes_the_temporary_and_keeps_the_old_file() {
        let dir = scratch("failed");
        let path = dir.join("x.csv");
        write_atomic(&path, b"old").unwrap();
        let mut f = AtomicFile::create(&path).unwrap();
        f.writer().write_all(b"new").unwrap();
        // Replacing the target by a directory makes the rename fail.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), b"k").unwrap();
        assert!(f.commit().is_err());
        assert_eq!(entries(&dir), ["x.csv"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn directories_special_files_and_dangling_links_are_refused_and_links_followed() {
        let dir = scratch("special");
        let err = prepare_output(&dir).unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
        let err = prepare_output(Path::new("/dev/null"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("special file"), "{err}");
        let err = prepare_output(Path::new("/")).unwrap_err().to_string();
        assert!(err.contains("directory"), "{err}");
        let real = dir.join("real.csv");
        std::fs::write(&real, b"old").unwrap();
        let link = dir.join("link.csv");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&real).unwrap(), b"new");
        let dangling = dir.join("dangling.csv");
        std::os::unix::fs::symlink(dir.join("nowhere").join("x"), &dangling).unwrap();
        let err = prepare_output(&dangling).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn two_outputs_naming_one_file_are_refused() {
        let dir = scratch("same");
        let a = dir.join("x");
        let b = dir.join("sub").join("..").join("x");
        let err = prepare_outputs(&[("--csv", &a), ("--html", &b)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--csv and --html"), "{err}");
        let link = dir.join("l");
        std::fs::write(&a, b"").unwrap();
        std::os::unix::fs::symlink(&a, &link).unwrap();
        assert!(prepare_outputs(&[("--csv", &a), ("--html", &link)]).is_err());
        assert!(prepare_outputs(&[("--csv", &a), ("--html", &dir.join("y"))]).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
