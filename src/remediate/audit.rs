//! The audit trail: one JSON line per attempted change — done, refused or failed — appended to
//! `<state-dir>/audit.jsonl` (mode 0600) and fsynced. It names people, clusters and objects,
//! never a credential: the user is the kubeconfig's user name, not its token or certificate.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Result;
use super::backup::{private_dir, private_file, sync_dir, write_synced};

/// The audit log's file name under the state folder.
pub const AUDIT_FILE: &str = "audit.jsonl";

/// One attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// UTC, RFC 3339.
    pub time: String,
    /// The kubeconfig context's user name.
    pub user: String,
    pub context: String,
    pub server: String,
    pub action: String,
    /// `kind/name` (`deployment/namespace/name`).
    pub target: String,
    /// The uid as planned (empty when restoring an object that is gone).
    pub uid: String,
    pub backup: Option<String>,
    /// `done`, `refused: REASON` or `failed: REASON`.
    pub result: String,
    pub verification: Option<String>,
}

/// Appends one record and flushes it to disk. Returns the log's path.
pub fn append(state_dir: &Path, record: &AuditRecord) -> Result<PathBuf> {
    private_dir(state_dir)?;
    let path = state_dir.join(AUDIT_FILE);
    let created = !path.exists();
    let mut line = serde_json::to_string(record)
        .map_err(|e| super::Error::File(format!("could not render the audit record: {e}")))?;
    line.push('\n');
    let mut file = private_file(&path, true)?;
    write_synced(&mut file, &path, line.as_bytes())?;
    if created {
        sync_dir(state_dir)?;
    }
    Ok(path)
}

/// Every record of an audit log, oldest first (lines that do not parse are skipped).
pub fn read(state_dir: &Path) -> Vec<AuditRecord> {
    std::fs::read_to_string(state_dir.join(AUDIT_FILE))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn appends_private_lines() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let record = AuditRecord {
            time: "2026-11-26T10:00:00Z".into(),
            user: "admin".into(),
            context: "prod".into(),
            server: "https://x".into(),
            action: "delete".into(),
            target: "validatingwebhookconfiguration/opa".into(),
            uid: "u".into(),
            backup: None,
            result: "refused: wrong confirmation".into(),
            verification: None,
        };
        let path = append(&state, &record).unwrap();
        append(
            &state,
            &AuditRecord {
                result: "done".into(),
                ..record.clone()
            },
        )
        .unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let back = read(&state);
        assert_eq!(back.len(), 2);
        assert_eq!(back[0], record);
        assert_eq!(back[1].result, "done");
    }
}
