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
/// Each folder it makes is flushed into its parent, so that a file flushed in it survives a
/// crash on the very first change too.
pub fn private_dir(dir: &Path) -> Result<()> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| file_error("could not create the folder", dir, e))?;
    for made in missing.iter().rev() {
        if let Some(parent) = made.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    Ok(())
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

/// The header line that carries the checksum of the object below it.
const CHECKSUM_LINE: &str = "sha256 of the object below: ";
/// How every backup kube-rescue writes begins.
const HEADER_START: &str = "# kube-rescue backup of ";
/// The largest backup read (an object in etcd is at most about 1.5 MiB).
pub const MAX_BACKUP: u64 = 16 * 1024 * 1024;

/// Writes the backup: a comment saying what it is and the sha256 of the object's YAML below
/// it, then that YAML. It is written whole to a hidden temporary file first, fsynced, then
/// linked under its name (which never overwrites) and the folder fsynced: the backup either
/// exists complete or not at all, and a failure (a full disk) leaves no empty or partial file
/// behind. Mode 0600. Returns the sha256 of the whole file.
pub fn write(path: &Path, header: &str, object: &Value) -> Result<String> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::File(format!("{} has no folder", path.display())))?;
    private_dir(dir)?;
    let body = super::change::yaml(object);
    let mut text = String::new();
    for line in header.lines() {
        text.push_str("# ");
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&format!(
        "# {CHECKSUM_LINE}{}\n",
        super::audit::sha256_hex(body.as_bytes())
    ));
    text.push_str(&body);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    remove_stale_partials(dir);
    let temporary = dir.join(format!(".{name}.{}.partial", unique_part()));
    let exists = || {
        Error::File(format!(
            "{} already exists: another change from this state folder started at the same moment",
            path.display()
        ))
    };
    let written = private_file(&temporary, false).and_then(|mut file| {
        super::fault::no_space("backup", &temporary)?;
        write_synced(&mut file, &temporary, text.as_bytes())?;
        if path.exists() {
            return Err(exists());
        }
        // A hard link fails where a rename would replace: an existing backup is never lost.
        std::fs::hard_link(&temporary, path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                exists()
            } else {
                file_error("could not name the backup", path, e)
            }
        })
    });
    let _ = std::fs::remove_file(&temporary);
    written?;
    sync_dir(dir)?;
    Ok(super::audit::sha256_hex(text.as_bytes()))
}

/// Removes hidden partial backups left by a kube-rescue that was killed while writing one
/// (its process is gone): they were never backups, and must not look like one.
fn remove_stale_partials(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".partial"))
        else {
            continue;
        };
        // `.<backup name>.p<pid><6 hex>.partial`
        let pid = rest
            .rsplit('.')
            .next()
            .and_then(|part| part.strip_prefix('p'))
            .and_then(|digits| digits.get(..digits.len().saturating_sub(6)))
            .and_then(|pid| pid.parse::<u32>().ok());
        let alive = pid.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if pid.is_some() && !alive {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A backup as read and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    pub object: Value,
    /// The sha256 of the whole file.
    pub sha256: String,
    /// How its integrity was proven, in words (or why it could not be).
    pub integrity: String,
}

/// Reads a backup written by [`write`] (or any single-object YAML or JSON manifest) and
/// checks it before anything is planned: not empty, not larger than [`MAX_BACKUP`], the
/// checksum in a kube-rescue header matches the object below it, it parses whole as one
/// object with apiVersion, kind and metadata.name. `expected` is the sha256 the audit log
/// recorded for this file, when it has one.
pub fn load(path: &Path, expected: Option<&str>) -> Result<Loaded> {
    let refuse = |why: String| Error::Input(format!("{}: {why}; nothing was sent", path.display()));
    let file = File::open(path).map_err(|e| file_error("could not read the backup", path, e))?;
    let (bytes, over) = crate::jsonl::read_capped(file, MAX_BACKUP)
        .map_err(|e| file_error("could not read the backup", path, e))?;
    if over {
        return Err(refuse(format!(
            "larger than {} MiB: not a backup of one object",
            MAX_BACKUP / 1024 / 1024
        )));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(refuse("the file is empty".into()));
    }
    let sha256 = super::audit::sha256_hex(&bytes);
    let text = String::from_utf8(bytes).map_err(|_| refuse("not UTF-8 text".into()))?;
    let mut integrity = match expected {
        Some(e) if e != sha256 => {
            return Err(refuse(format!(
                "the file changed since kube-rescue wrote it: its sha256 is {sha256}, the audit log recorded {e} (cut short, edited or replaced)"
            )));
        }
        Some(_) => "sha256 matches the audit log".to_string(),
        None => String::new(),
    };
    if text.starts_with(HEADER_START) {
        let header: Vec<&str> = text.lines().take_while(|l| l.starts_with('#')).collect();
        let body_start: usize = header.iter().map(|l| l.len() + 1).sum();
        let body = text.get(body_start.min(text.len())..).unwrap_or_default();
        match header
            .iter()
            .find_map(|l| l.strip_prefix("# ")?.strip_prefix(CHECKSUM_LINE))
        {
            Some(recorded) => {
                let actual = super::audit::sha256_hex(body.as_bytes());
                if recorded.trim() != actual {
                    return Err(refuse(format!(
                        "the object in this kube-rescue backup does not match its checksum (the header says {}, the content is {actual}): it was cut short or edited",
                        recorded.trim()
                    )));
                }
                if integrity.is_empty() {
                    integrity = "the checksum in its header matches".into();
                }
            }
            None if integrity.is_empty() => {
                integrity =
                    "not proven: a kube-rescue backup without a checksum line (an older version)"
                        .into();
            }
            None => {}
        }
    } else if integrity.is_empty() {
        integrity = "not proven: not written by kube-rescue (no checksum)".into();
    }
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    let object: Value = serde_saphyr::from_str_with_options(&text, options)
        .map_err(|e| refuse(format!("not a YAML object: {}", e.without_snippet())))?;
    if !object.is_object() {
        return Err(refuse("it does not hold a Kubernetes object".into()));
    }
    for (field, value) in [
        ("apiVersion", &object["apiVersion"]),
        ("kind", &object["kind"]),
        ("metadata.name", &object["metadata"]["name"]),
    ] {
        if value.as_str().is_none_or(str::is_empty) {
            return Err(refuse(format!(
                "it does not hold a whole Kubernetes object: {field} is missing"
            )));
        }
    }
    Ok(Loaded {
        object,
        sha256,
        integrity,
    })
}

/// Reads a backup: [`load`] without an expected checksum.
pub fn read(path: &Path) -> Result<Value> {
    load(path, None).map(|l| l.object)
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
        let sha = write(&path, "backup of x\nline two", &object).unwrap();
        assert_eq!(
            sha,
            crate::remediate::audit::sha256_hex(&std::fs::read(&path).unwrap())
        );
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
