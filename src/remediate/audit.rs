//! The audit trail, `<state-dir>/audit.jsonl` (mode 0600): one JSON line per record, each
//! written by one append of one complete line and fsynced before anything goes on.
//!
//! A change is written ahead: an `attempt` record (action, target, uid and resourceVersion as
//! planned, the backup and its sha256, who, when) is on disk before the request that changes
//! anything is sent. The `outcome` record (done, refused or failed; the resourceVersion the
//! change left and the fields it set) follows the apiserver's answer, and a `verification`
//! record follows the checks. Both refer to the attempt by its id. An attempt without an
//! outcome is a run that was cut short: [`read`] reports it as "outcome unknown: interrupted",
//! with its backup. A refusal before anything was sent is one `outcome` record on its own.
//!
//! Records name people, clusters and objects, never a credential: the user is the kubeconfig's
//! user name, not its token or certificate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Result;
use super::backup::{private_dir, private_file, sync_dir, write_synced};
use crate::jsonl::BadLine;

/// The audit log's file name under the state folder.
pub const AUDIT_FILE: &str = "audit.jsonl";

/// What an attempt without an outcome record says.
pub const INTERRUPTED: &str = "outcome unknown: interrupted";

/// The most attempts [`read`] keeps (the newest): a log of years stays readable.
pub const MAX_ATTEMPTS: usize = 20_000;
/// And at most about this much of them in memory, however long their lines.
const MAX_KEPT_BYTES: usize = 64 * 1024 * 1024;

/// What a failure says when the apiserver may have made the change all the same (a timeout,
/// a dropped connection): such an attempt counts as one that may have changed the object.
pub const MAYBE_CHANGED: &str = "the change may or may not have been made";

/// Which record of an attempt a line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordKind {
    /// Written before the change is sent.
    Attempt,
    /// How the change ended (or a refusal before anything was sent).
    Outcome,
    /// What the checks after the change found.
    Verification,
}

/// A field the change set, as it was after the change (`after` absent: removed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangedField {
    /// A JSON pointer, e.g. `/webhooks/0/failurePolicy`.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// One line of the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Absent in logs written before records had kinds: a whole attempt on one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordKind>,
    /// The attempt this record belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
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
    /// Attempt: the resourceVersion as planned. Outcome: the one the change left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    pub backup: Option<String>,
    /// The sha256 of the backup file as written (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_sha256: Option<String>,
    /// `attempted`, `done`, `refused: REASON` or `failed: REASON`.
    pub result: String,
    pub verification: Option<String>,
    /// Outcome of a change that replaced the object: the fields it set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<Vec<ChangedField>>,
    /// The sha256 of `changed` as JSON (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_sha256: Option<String>,
}

impl AuditRecord {
    /// A record of `kind` with the parts every record has; the rest empty.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: RecordKind,
        id: Option<String>,
        (user, context, server): (&str, &str, &str),
        action: &str,
        target: &str,
        uid: &str,
        result: String,
    ) -> Self {
        AuditRecord {
            record: Some(kind),
            id,
            time: now_text(),
            user: user.to_string(),
            context: context.to_string(),
            server: server.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            uid: uid.to_string(),
            resource_version: None,
            backup: None,
            backup_sha256: None,
            result,
            verification: None,
            changed: None,
            changed_sha256: None,
        }
    }
}

/// Now, as the log writes times.
pub fn now_text() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A new attempt id: the time, this process and a random part.
pub fn new_id() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{}-p{}-{}",
        jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ"),
        std::process::id(),
        &random[..8]
    )
}

/// The lowercase hex sha256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The sha256 of the fields a change set, as recorded.
pub fn changed_sha256(changed: &[ChangedField]) -> String {
    sha256_hex(
        serde_json::to_string(changed)
            .unwrap_or_default()
            .as_bytes(),
    )
}

/// Appends one record as one complete line and flushes it to disk. Returns the log's path.
/// A failure says which record could not be written.
pub fn append(state_dir: &Path, record: &AuditRecord) -> Result<PathBuf> {
    let path = state_dir.join(AUDIT_FILE);
    let what = match record.record {
        Some(RecordKind::Attempt) => "attempt record",
        Some(RecordKind::Outcome) | None => "outcome record",
        Some(RecordKind::Verification) => "verification record",
    };
    let unwritten = |e: super::Error| {
        super::Error::File(format!(
            "the {what} of {} {} could not be written to the audit log: {e}",
            record.action, record.target
        ))
    };
    private_dir(state_dir).map_err(unwritten)?;
    let created = !path.exists();
    let mut line = serde_json::to_string(record)
        .map_err(|e| super::Error::File(format!("could not render the {what}: {e}")))?;
    line.push('\n');
    let point = match record.record {
        Some(RecordKind::Attempt) => "audit-attempt",
        Some(RecordKind::Verification) => "audit-verification",
        _ => "audit-outcome",
    };
    let mut file = private_file(&path, true).map_err(unwritten)?;
    // A line left torn by an earlier failure is ended first, so that this record is a line
    // of its own; and a write that fails is cut back off, leaving no torn line behind.
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    if length > 0 && !ends_with_newline(&path, length) {
        line.insert(0, '\n');
    }
    let written = super::fault::no_space(point, &path)
        .and_then(|()| write_synced(&mut file, &path, line.as_bytes()));
    if let Err(e) = written {
        let _ = file.set_len(length);
        return Err(unwritten(e));
    }
    if created {
        sync_dir(state_dir).map_err(unwritten)?;
    }
    Ok(path)
}

/// Whether the file's last byte (of `length`) is a newline.
fn ends_with_newline(path: &Path, length: u64) -> bool {
    use std::os::unix::fs::FileExt as _;
    let mut last = [0u8];
    std::fs::File::open(path)
        .and_then(|f| f.read_exact_at(&mut last, length - 1))
        .map(|()| last[0] == b'\n')
        .unwrap_or(true)
}

/// The fields a change left, as the outcome record has them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct After {
    pub resource_version: String,
    pub changed: Vec<ChangedField>,
    pub changed_sha256: Option<String>,
}

/// One attempted change as the log tells it: its records put together.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attempt {
    pub id: Option<String>,
    /// When it started.
    pub time: String,
    pub user: String,
    pub context: String,
    pub server: String,
    pub action: String,
    pub target: String,
    pub uid: String,
    /// The resourceVersion as planned.
    pub resource_version: Option<String>,
    pub backup: Option<String>,
    pub backup_sha256: Option<String>,
    /// `done`, `refused: ...`, `failed: ...`, or [`INTERRUPTED`].
    pub result: String,
    /// No outcome record: the run was cut short after the attempt was recorded.
    pub interrupted: bool,
    pub verification: Option<String>,
    /// What the change left (an outcome `done` of a replace).
    pub after: Option<After>,
    /// When the outcome was recorded.
    pub finished: Option<String>,
}

impl Attempt {
    fn from_record(r: AuditRecord) -> Self {
        let interrupted = r.record == Some(RecordKind::Attempt);
        Attempt {
            id: r.id,
            time: r.time,
            user: r.user,
            context: r.context,
            server: r.server,
            action: r.action,
            target: r.target,
            uid: r.uid,
            resource_version: r.resource_version,
            backup: r.backup,
            backup_sha256: r.backup_sha256,
            result: if interrupted {
                INTERRUPTED.to_string()
            } else {
                r.result
            },
            interrupted,
            verification: r.verification,
            after: None,
            finished: None,
        }
    }

    /// Adds an outcome or verification record of this attempt.
    fn add(&mut self, r: AuditRecord) {
        match r.record {
            Some(RecordKind::Outcome) => {
                self.interrupted = false;
                let done = r.result == "done";
                self.result = r.result;
                self.finished = Some(r.time);
                // The fields a change set are trusted only as recorded: a record whose
                // fields do not match their checksum leaves them unknown.
                let changed = r.changed.unwrap_or_default();
                let intact = r
                    .changed_sha256
                    .as_deref()
                    .is_none_or(|sha| sha == changed_sha256(&changed));
                if done && intact {
                    self.after = Some(After {
                        resource_version: r.resource_version.unwrap_or_default(),
                        changed,
                        changed_sha256: r.changed_sha256,
                    });
                }
                if r.verification.is_some() {
                    self.verification = r.verification;
                }
            }
            Some(RecordKind::Verification) => self.verification = r.verification,
            _ => {}
        }
    }

    /// Whether the change may have been made (done, cut short after it was recorded, or
    /// failed in a way that leaves it unknown).
    pub fn may_have_changed(&self) -> bool {
        self.interrupted || self.result == "done" || self.result.contains(MAYBE_CHANGED)
    }

    /// About how much memory this attempt holds.
    fn weight(&self) -> usize {
        let texts = [
            &self.time,
            &self.user,
            &self.context,
            &self.server,
            &self.action,
            &self.target,
            &self.uid,
            &self.result,
        ];
        let changed = self.after.as_ref().map_or(0, |a| {
            a.changed
                .iter()
                .map(|c| c.path.len() + c.after.as_ref().map_or(0, |v| v.to_string().len()))
                .sum()
        });
        256 + texts.iter().map(|t| t.len()).sum::<usize>()
            + self.verification.as_ref().map_or(0, String::len)
            + self.backup.as_ref().map_or(0, String::len)
            + changed
    }
}

/// The audit log as read: attempts oldest first, and what could not be read.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Log {
    pub path: PathBuf,
    pub attempts: Vec<Attempt>,
    /// Lines that could not be used (a torn last line among them).
    #[serde(skip)]
    pub bad: Vec<BadLine>,
    /// The log exists but could not be read at all.
    pub error: Option<String>,
    /// Older attempts left out to keep memory bounded.
    pub left_out: usize,
}

impl Log {
    /// What a reader should be told about the file itself, one line each.
    pub fn problems(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let Some(e) = &self.error {
            out.push(format!("{} could not be read: {e}", self.path.display()));
        }
        for bad in &self.bad {
            out.push(format!("{}: {bad}", self.path.display()));
        }
        if self.left_out > 0 {
            out.push(format!(
                "{} older attempts are not shown (the newest {MAX_ATTEMPTS} are)",
                self.left_out
            ));
        }
        out
    }

    /// The attempt that wrote `backup` (compared as written, then as canonical paths).
    pub fn by_backup(&self, backup: &Path) -> Option<&Attempt> {
        let wanted = std::fs::canonicalize(backup).ok();
        self.attempts.iter().rev().find(|a| {
            a.backup.as_deref().is_some_and(|b| {
                Path::new(b) == backup
                    || (wanted.is_some() && std::fs::canonicalize(b).ok() == wanted)
            })
        })
    }
}

/// Reads the audit log of a state folder: every attempt, its records put together, oldest
/// first. A torn last line is reported and everything before it kept.
pub fn read(state_dir: &Path) -> Log {
    let path = state_dir.join(AUDIT_FILE);
    let mut log = Log {
        path: path.clone(),
        ..Log::default()
    };
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return log,
        Err(e) => {
            log.error = Some(e.to_string());
            return log;
        }
    };
    let mut attempts: std::collections::VecDeque<Attempt> = Default::default();
    let mut first = 0usize; // the number of attempts dropped from the front
    let mut kept_bytes = 0usize;
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let read = crate::jsonl::each(std::io::BufReader::new(file), |r: AuditRecord| {
        let known = r.id.as_ref().and_then(|id| by_id.get(id)).copied();
        match (r.record, known) {
            (Some(RecordKind::Outcome | RecordKind::Verification), Some(at)) => {
                let attempt = &mut attempts[at - first];
                kept_bytes -= attempt.weight().min(kept_bytes);
                attempt.add(r);
                kept_bytes += attempt.weight();
            }
            // The rest of an attempt that is no longer kept.
            (Some(RecordKind::Verification), None) => {}
            (Some(RecordKind::Outcome), None) if r.id.is_some() && first > 0 => {}
            _ => {
                if let Some(id) = &r.id {
                    by_id.insert(id.clone(), first + attempts.len());
                }
                let attempt = Attempt::from_record(r);
                kept_bytes += attempt.weight();
                attempts.push_back(attempt);
            }
        }
        while attempts.len() > MAX_ATTEMPTS || (kept_bytes > MAX_KEPT_BYTES && attempts.len() > 1) {
            let Some(dropped) = attempts.pop_front() else {
                break;
            };
            kept_bytes -= dropped.weight().min(kept_bytes);
            if let Some(id) = &dropped.id {
                by_id.remove(id);
            }
            first += 1;
        }
    });
    match read {
        Ok(bad) => log.bad = bad,
        Err(e) => log.error = Some(e.to_string()),
    }
    log.left_out = first;
    log.attempts = attempts.into();
    log
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn record(kind: RecordKind, id: &str, result: &str) -> AuditRecord {
        let mut r = AuditRecord::new(
            kind,
            Some(id.to_string()),
            ("admin", "prod", "https://x"),
            "fail-open",
            "validatingwebhookconfiguration/opa",
            "u",
            result.to_string(),
        );
        r.backup = Some(format!("/state/backups/{id}.yaml"));
        r
    }

    #[test]
    fn records_of_one_attempt_are_put_together_and_a_missing_outcome_is_an_interruption() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let path = append(&state, &record(RecordKind::Attempt, "a", "attempted")).unwrap();
        let mut outcome = record(RecordKind::Outcome, "a", "done");
        outcome.resource_version = Some("42".into());
        outcome.changed = Some(vec![ChangedField {
            path: "/webhooks/0/failurePolicy".into(),
            after: Some("Ignore".into()),
        }]);
        append(&state, &outcome).unwrap();
        let mut verified = record(RecordKind::Verification, "a", "done");
        verified.verification = Some("writes pass".into());
        append(&state, &verified).unwrap();
        append(&state, &record(RecordKind::Attempt, "b", "attempted")).unwrap();
        // A refusal on its own, and a line from an older log without record kinds.
        append(
            &state,
            &record(RecordKind::Outcome, "c", "refused: wrong confirmation"),
        )
        .unwrap();
        let mut old = record(RecordKind::Outcome, "", "done");
        old.record = None;
        old.id = None;
        append(&state, &old).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let log = read(&state);
        assert!(log.problems().is_empty(), "{:?}", log.problems());
        let results: Vec<&str> = log.attempts.iter().map(|a| a.result.as_str()).collect();
        assert_eq!(
            results,
            ["done", INTERRUPTED, "refused: wrong confirmation", "done"]
        );
        let a = &log.attempts[0];
        assert!(!a.interrupted && a.may_have_changed());
        assert_eq!(a.verification.as_deref(), Some("writes pass"));
        assert_eq!(a.after.as_ref().unwrap().resource_version, "42");
        assert!(log.attempts[1].interrupted);
        assert_eq!(
            log.by_backup(Path::new("/state/backups/b.yaml"))
                .map(|a| a.id.as_deref()),
            Some(Some("b"))
        );

        // A torn last line is reported; everything before it is kept.
        let whole = std::fs::read(&path).unwrap();
        let mut torn = whole.clone();
        torn.extend_from_slice(b"{\"record\":\"outcome\",\"id\":\"b\",\"ti");
        std::fs::write(&path, &torn).unwrap();
        let log = read(&state);
        assert_eq!(log.attempts.len(), 4);
        assert!(log.attempts[1].interrupted);
        let problems = log.problems().join("\n");
        assert!(problems.contains("line 7 is incomplete"), "{problems}");
    }

    #[test]
    fn the_newest_attempts_are_kept_when_the_log_is_long() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for i in 0..MAX_ATTEMPTS + 3 {
            let r = record(RecordKind::Attempt, &format!("id{i}"), "attempted");
            text.push_str(&serde_json::to_string(&r).unwrap());
            text.push('\n');
        }
        let done = record(
            RecordKind::Outcome,
            &format!("id{}", MAX_ATTEMPTS + 2),
            "done",
        );
        text.push_str(&serde_json::to_string(&done).unwrap());
        text.push('\n');
        std::fs::write(dir.path().join(AUDIT_FILE), text).unwrap();
        let log = read(dir.path());
        assert_eq!(log.attempts.len(), MAX_ATTEMPTS);
        assert_eq!(log.left_out, 3);
        assert_eq!(log.attempts.last().unwrap().result, "done");
        assert_eq!(log.attempts[0].id.as_deref(), Some("id3"));
    }

    #[test]
    fn a_record_after_a_torn_line_is_a_line_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = append(dir.path(), &record(RecordKind::Attempt, "a", "attempted")).unwrap();
        // A write cut short (a crash mid-write on another system, a full disk without the
        // cut-back) left half a line.
        let mut text = std::fs::read(&path).unwrap();
        text.extend_from_slice(b"{\"record\":\"outcome\",\"id\":\"a\",\"ti");
        std::fs::write(&path, &text).unwrap();
        append(dir.path(), &record(RecordKind::Attempt, "b", "attempted")).unwrap();
        let log = read(dir.path());
        let ids: Vec<_> = log.attempts.iter().map(|a| a.id.clone().unwrap()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(log.bad.len(), 1, "{:?}", log.bad);
        assert!(!log.bad[0].torn, "in the middle now: {:?}", log.bad);
    }

    #[test]
    fn an_outcome_whose_fields_do_not_match_their_checksum_leaves_them_unknown() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), &record(RecordKind::Attempt, "a", "attempted")).unwrap();
        let mut outcome = record(RecordKind::Outcome, "a", "done");
        let changed = vec![ChangedField {
            path: "/webhooks/0/failurePolicy".into(),
            after: Some("Ignore".into()),
        }];
        outcome.changed_sha256 = Some(changed_sha256(&changed));
        outcome.changed = Some(vec![ChangedField {
            path: "/webhooks/0/timeoutSeconds".into(),
            after: Some(1.into()),
        }]);
        append(dir.path(), &outcome).unwrap();
        let log = read(dir.path());
        assert_eq!(log.attempts[0].result, "done");
        assert!(log.attempts[0].after.is_none());
    }
}
