//! The incident journal: what one run of the triage screen saw and did, one JSON line per
//! event, in `<state-dir>/journal/<start time>.jsonl`. Findings appearing and clearing, the
//! apiserver's status, the write probe and the nodes changing state, every change attempted,
//! every runbook step marked done. `kube-rescue report` turns it into the postmortem timeline.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The journal folder under the state folder.
pub const JOURNAL_DIR: &str = "journal";

/// One event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub time: Timestamp,
    #[serde(flatten)]
    pub event: Event,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// The screen opened on a cluster.
    Started {
        context: String,
        server: String,
        read_only: bool,
        version: String,
    },
    /// A finding was raised that the previous refresh did not raise.
    FindingAppeared {
        id: String,
        severity: String,
        subject: String,
        title: String,
    },
    /// A finding the previous refresh raised is gone.
    FindingCleared {
        id: String,
        subject: String,
        title: String,
    },
    /// The apiserver's status changed: `ready`, `not ready`, `unreachable`.
    Apiserver { status: String, detail: String },
    /// The write probe's verdict changed: writes pass, or fail.
    WriteProbe { passing: bool, detail: String },
    /// How many nodes are Ready changed between all and not all.
    Nodes {
        ready: usize,
        total: usize,
        all_ready: bool,
    },
    /// A change was attempted (the audit log has the same).
    Action {
        action: String,
        target: String,
        result: String,
        backup: Option<String>,
        verification: Option<String>,
    },
    /// A runbook step was marked done, by its check or by hand.
    RunbookStep {
        runbook: String,
        step: String,
        how: String,
    },
    /// The screen closed.
    Stopped,
}

/// `20261126T103413Z`: the journal's file name for a run started at `t`.
pub fn file_name(t: Timestamp) -> String {
    format!("{}.jsonl", t.strftime("%Y%m%dT%H%M%SZ"))
}

/// Appends to one journal file, line by line.
pub struct Writer {
    path: PathBuf,
    file: std::fs::File,
}

impl Writer {
    /// Creates `<state_dir>/journal/<start>.jsonl` (folder 0700, file 0600: it names clusters
    /// and objects).
    pub fn create(state_dir: &Path, started: Timestamp) -> std::io::Result<Writer> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let dir = state_dir.join(JOURNAL_DIR);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let path = dir.join(file_name(started));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)?;
        Ok(Writer { path, file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one entry as one line; it is on disk when this returns (a crash loses nothing
    /// already reported).
    pub fn append(&mut self, entry: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()
    }
}

/// A journal as read: its entries in order, and the lines that could not be read (with their
/// 1-based number), which a report mentions rather than hides.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Journal {
    pub path: PathBuf,
    pub entries: Vec<Entry>,
    pub unreadable: Vec<(usize, String)>,
}

/// Reads a journal file (lines are read with bounded memory; a torn last line is reported
/// among the unreadable ones).
pub fn read(path: &Path) -> std::io::Result<Journal> {
    std::fs::metadata(path)?;
    let lines = crate::jsonl::read::<Entry>(path)?;
    Ok(Journal {
        path: path.to_path_buf(),
        entries: lines.records,
        unreadable: lines
            .bad
            .iter()
            .map(|b| (b.number, b.why.clone()))
            .collect(),
    })
}

/// The newest journal under `state_dir` (file names sort by start time).
pub fn latest(state_dir: &Path) -> Option<PathBuf> {
    let dir = state_dir.join(JOURNAL_DIR);
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_one_line_each() {
        let dir = tempfile::tempdir().unwrap();
        let t0: Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        let mut writer = Writer::create(dir.path(), t0).unwrap();
        let entries = [
            Entry {
                time: t0,
                event: Event::Started {
                    context: "prod".into(),
                    server: "https://x".into(),
                    read_only: false,
                    version: "0.1.0".into(),
                },
            },
            Entry {
                time: t0 + jiff::SignedDuration::from_secs(5),
                event: Event::FindingAppeared {
                    id: "webhook-blocking-writes".into(),
                    severity: "critical".into(),
                    subject: "ValidatingWebhookConfiguration opa".into(),
                    title: "Writes fail".into(),
                },
            },
            Entry {
                time: t0 + jiff::SignedDuration::from_secs(9),
                event: Event::Stopped,
            },
        ];
        for e in &entries {
            writer.append(e).unwrap();
        }
        let path = writer.path().to_path_buf();
        assert!(path.ends_with("journal/20261126T100000Z.jsonl"), "{path:?}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.contains("\"event\":\"finding-appeared\""), "{text}");
        std::fs::write(&path, format!("{text}not json\n")).unwrap();
        let back = read(&path).unwrap();
        assert_eq!(back.entries, entries);
        assert_eq!(back.unreadable.len(), 1);
        assert_eq!(back.unreadable[0].0, 4);
        assert_eq!(latest(dir.path()), Some(path));
    }
}
