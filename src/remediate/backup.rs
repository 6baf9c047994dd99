//! Backups on disk before any change: the object as read (server fields kept) as YAML, mode
//! 0600, fsynced together with its folder, under `<state-dir>/backups/<context>/`; and reading
//! one back for `restore`. Also the private-file helpers the audit log shares.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::action::Target;
use super::{Error, Result};

fn file_error(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::File(format!("{what} {}: {e}", path.display()))
}

/// Creates a folder (and its parents) readable by this user only.
pub fn private_dir(dir: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| file_error("could not create the folder", dir, e))
}

/// Flushes a folder's entries to disk, so that a new file in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| file_error("could not flush the folder", dir, e))
}

/// Opens a file readable by this user only: `append` to add to it, else a new file that must
/// not exist yet.
pub fn private_file(path: &Path, append: bool) -> Result<File> {
    let mut options = OpenOptions::new();
    options.mode(0o600);
    if append {
        options.create(true).append(true);
    } else {
        options.create_new(true).write(true);
    }
    options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::File(format!(
                "{} already exists: another change from this state folder started at the same moment",
                path.display()
            ))
        } else {
            file_error("could not open", path, e)
        }
    })
}

/// Writes all of `bytes` and flushes the file to disk.
pub fn write_synced(file: &mut File, path: &Path, bytes: &[u8]) -> Result<()> {
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| file_error("could not write", path, e))
}

/// A context name as one safe path segment (ARNs and the like carry `/` and `:`).
fn path_segment(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match cleaned.trim_start_matches('.') {
        "" => "_".to_string(),
        s => s.to_string(),
    }
}

/// Where a backup of `target` taken at `at` goes.
pub fn backup_path(
    state_dir: &Path,
    context: &str,
    target: &Target,
    at: jiff::Timestamp,
) -> PathBuf {
    let time = at.strftime("%Y%m%dT%H%M%S%.3fZ").to_string();
    let namespace = target
        .namespace
        .as_deref()
        .map(|ns| format!("{ns}."))
        .unwrap_or_default();
    state_dir
        .join("backups")
        .join(path_segment(context))
        .join(format!(
            "{time}-{}-{}-{namespace}{}.yaml",
            unique_part(),
            target.kind.kubectl_name(),
            target.name
        ))
}

/// This process and a random part, so that two changes started in the same millisecond (two
/// terminals, one state folder) never pick the same backup name.
fn unique_part() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("p{}{}", std::process::id(), &random[..6])
}

/// Writes the backup: a comment saying what it is, then the object as YAML. It is written
/// whole to a hidden temporary file first, fsynced, then linked under its name (which never
/// overwrites) and the folder fsynced: the backup either exists complete or not at all, and a
/// failure (a full disk) leaves no empty or partial file behind. Mode 0600.
pub fn write(path: &Path, header: &str, object: &Value) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::File(format!("{} has no folder", path.display())))?;
    private_dir(dir)?;
    let mut text = String::new();
    for line in header.lines() {
        text.push_str("# ");
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&super::change::yaml(object));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{name}.{}.partial", unique_part()));
    let written = private_file(&temporary, false).and_then(|mut file| {
        write_synced(&mut file, &temporary, text.as_bytes())?;
        if path.exists() {
            return Err(Error::File(format!(
                "{} already exists: another change from this state folder started at the same moment",
                path.display()
            )));
        }
        // A hard link fails where a rename would replace: an existing backup is never lost.
        std::fs::hard_link(&temporary, path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::File(format!(
                    "{} already exists: another change from this state folder started at the same moment",
                    path.display()
                ))
            } else {
                file_error("could not name the backup", path, e)
            }
        })
    });
    let _ = std::fs::remove_file(&temporary);
    written?;
    sync_dir(dir)
}

/// Reads a backup written by [`write`] (or any single-object YAML or JSON manifest).
pub fn read(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| file_error("could not read the backup", path, e))?;
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    let object: Value = serde_saphyr::from_str_with_options(&text, options).map_err(|e| {
        Error::File(format!(
            "{} is not a YAML object: {}",
            path.display(),
            e.without_snippet()
        ))
    })?;
    if !object.is_object()
        || object["metadata"]["name"]
            .as_str()
            .is_none_or(str::is_empty)
    {
        return Err(Error::File(format!(
            "{} does not hold a Kubernetes object (no metadata.name)",
            path.display()
        )));
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn backups_are_private_new_files_that_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let target = Target::parse("vwc/opa").unwrap();
        let at: jiff::Timestamp = "2026-11-26T10:00:00.5Z".parse().unwrap();
        let path = backup_path(dir.path(), "arn:aws:eks:x/y", &target, at);
        let shown = path.strip_prefix(dir.path()).unwrap().display().to_string();
        assert!(
            shown.starts_with(&format!(
                "backups/arn_aws_eks_x_y/20261126T100000.500Z-p{}",
                std::process::id()
            )) && shown.ends_with("-validatingwebhookconfiguration-opa.yaml"),
            "{shown}"
        );
        // Two changes in the same millisecond get two names.
        assert_ne!(
            path,
            backup_path(dir.path(), "arn:aws:eks:x/y", &target, at)
        );
        let object = serde_json::json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "opa", "uid": "u", "labels": {"a": "no"}}});
        write(&path, "backup of x\nline two", &object).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let folder = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(folder, 0o700);
        assert_eq!(read(&path).unwrap(), object);
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .starts_with("# backup of x\n# line two\n")
        );
        let again = write(&path, "", &object).unwrap_err().to_string();
        assert!(again.contains("already exists: another change"), "{again}");
        // The first backup is whole, and the failed write left nothing behind.
        assert_eq!(read(&path).unwrap(), object);
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");

        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "- a\n- b\n").unwrap();
        let e = read(&bad).unwrap_err().to_string();
        assert!(
            e.contains("does not hold a Kubernetes object") || e.contains("not a YAML object"),
            "{e}"
        );
        let e = read(&dir.path().join("missing.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("could not read the backup"), "{e}");
    }
}
