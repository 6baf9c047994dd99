//! Carrying out a plan: the typed confirmation, read-only mode and RBAC checked first; the
//! backup written and flushed to disk before the change; the change sent with the plan's
//! uid/resourceVersion as precondition (a changed object is refused, never overwritten); then
//! verified (read back, the write probe again, a short watch for a controller putting the
//! object back); and every attempt, whatever its end, appended to the audit log.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::cluster::probe::{self, ProbeReport};
use crate::cluster::{AccessError, Cluster, ErrorKind};

use super::audit::{self, AuditRecord, ChangedField, RecordKind};
use super::change::{self, likely_manager};
use super::plan::{self, Change, Plan, Rbac};

/// How long apply watches for a controller putting the object back, unless told otherwise.
pub const DEFAULT_WATCH: Duration = Duration::from_secs(3);
/// How often the object is read while watching.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// Where backups and the audit log go, and how long to watch afterwards.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    pub state_dir: PathBuf,
    pub watch_for: Duration,
}

impl ApplyOptions {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        ApplyOptions {
            state_dir: state_dir.into(),
            watch_for: DEFAULT_WATCH,
        }
    }
}

/// One step of apply, reported as it happens.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    BackupWritten(PathBuf),
    /// Nothing to back up (restoring an object that is gone).
    NoBackupNeeded,
    /// The change was accepted: what was done.
    Changed(String),
    ReadBack(String),
    /// Checking writes and watching for a controller (both run together).
    Verifying(Duration),
    WriteProbe(String),
    Watched(String),
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::BackupWritten(path) => write!(f, "backup written: {}", path.display()),
            Step::NoBackupNeeded => write!(f, "backup: none needed (the object is gone)"),
            Step::Changed(what) => write!(f, "{what}"),
            Step::ReadBack(what) => write!(f, "read back: {what}"),
            Step::Verifying(watch) => write!(
                f,
                "verifying: write probe, and watching {} s for a controller putting it back",
                watch.as_secs_f64()
            ),
            Step::WriteProbe(what) => write!(f, "write probe: {what}"),
            Step::Watched(what) => write!(f, "watch: {what}"),
        }
    }
}

/// How the attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Done,
    /// Nothing was changed, on purpose.
    Refused(String),
    /// Something went wrong.
    Failed(String),
}

impl Verdict {
    /// `done`, `refused: REASON`, `failed: REASON` (the audit log's words).
    pub fn describe(&self) -> String {
        match self {
            Verdict::Done => "done".into(),
            Verdict::Refused(why) => format!("refused: {why}"),
            Verdict::Failed(why) => format!("failed: {why}"),
        }
    }
}

/// What was found after the change.
#[derive(Clone, Debug, PartialEq)]
pub struct Verification {
    /// Whether reading back shows the change.
    pub in_place: bool,
    pub read_back: String,
    /// The write probe after the change (None if it could not run).
    pub write_probe: Option<ProbeReport>,
    pub writes: String,
    /// A controller put the object back: who and how.
    pub put_back: Option<String>,
    pub watched: String,
}

impl Verification {
    /// Whether every probed namespace accepts writes.
    pub fn writes_pass(&self) -> bool {
        self.write_probe.as_ref().is_some_and(ProbeReport::all_pass)
    }

    /// Whether writes pass, when the probe could tell (None: it did not run, or the apiserver
    /// went away in the middle of it).
    pub fn writes_verdict(&self) -> Option<bool> {
        let report = self.write_probe.as_ref()?;
        (!report.cut_by_restart()).then(|| report.all_pass())
    }

    pub fn summary(&self) -> String {
        format!(
            "read back: {}; write probe: {}; watch: {}",
            self.read_back, self.writes, self.watched
        )
    }
}

/// The end of an attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub verdict: Verdict,
    pub backup: Option<PathBuf>,
    pub verification: Option<Verification>,
    /// The audit log written to, or why it could not be.
    pub audit: Result<PathBuf, String>,
}

fn uid_of(object: &Value) -> &str {
    object["metadata"]["uid"].as_str().unwrap_or_default()
}

fn manager_words(object: &Value) -> String {
    match likely_manager(object) {
        Some(m) => format!("likely by {m} (managedFields)"),
        None => "by an unknown manager (no managedFields)".into(),
    }
}

/// Appends the audit line for an attempt that ended before a plan could be made (target not
/// found, apiserver unreachable): the attempt is on record all the same.
pub fn audit_unplanned(
    cluster: &Cluster,
    state_dir: &std::path::Path,
    action: &str,
    target: &str,
    verdict: &Verdict,
) -> Result<PathBuf, String> {
    let record = AuditRecord::new(
        RecordKind::Outcome,
        None,
        (cluster.user(), cluster.context(), cluster.server()),
        action,
        target,
        "",
        verdict.describe(),
    );
    audit::append(state_dir, &record).map_err(|e| e.to_string())
}

/// A record of this plan's attempt.
fn record_of(plan: &Plan, kind: RecordKind, id: Option<&str>, result: String) -> AuditRecord {
    AuditRecord::new(
        kind,
        id.map(str::to_string),
        (&plan.user, &plan.context, &plan.server),
        &plan.action,
        &plan.target.display(),
        &plan.uid,
        result,
    )
}

/// Carries out `plan` if `confirmation` is the object's name, reporting each step to
/// `progress` as it happens. Never panics and never returns early without an audit record:
/// the attempt is on disk before the change is sent, its outcome right after the answer.
pub async fn apply(
    cluster: &Cluster,
    plan: &Plan,
    confirmation: &str,
    options: &ApplyOptions,
    mut progress: impl FnMut(Step),
) -> Outcome {
    let mut traces = Traces::default();
    let verdict = attempt(
        cluster,
        plan,
        confirmation,
        options,
        &mut progress,
        &mut traces,
    )
    .await;
    tracing::info!(
        action = %plan.action, target = %plan.target.display(), context = %plan.context,
        result = %verdict.describe(), "remediation attempt"
    );
    let state = &options.state_dir;
    let id = traces.id.as_deref();
    if !traces.outcome_tried {
        let mut record = record_of(plan, RecordKind::Outcome, id, verdict.describe());
        record.backup = traces.backup.as_ref().map(|p| p.display().to_string());
        traces.note(audit::append(state, &record));
    } else if let Some(verification) = &traces.verification
        && traces.unwritten.is_none()
    {
        super::fault::pause("verified");
        let mut record = record_of(plan, RecordKind::Verification, id, verdict.describe());
        record.verification = Some(verification.summary());
        traces.note(audit::append(state, &record));
    }
    let audit = traces.audit();
    if let Err(e) = &audit {
        tracing::error!(error = %e, "could not write the audit log");
    }
    drop(traces.lock);
    Outcome {
        verdict,
        backup: traces.backup,
        verification: traces.verification,
        audit,
    }
}

/// What an attempt leaves behind: the backup, the verification, its id in the audit log, the
/// log written to and the first record that could not be, and the change lock, held until
/// the last record is written.
#[derive(Default)]
struct Traces {
    backup: Option<PathBuf>,
    verification: Option<Verification>,
    lock: Option<super::lock::ChangeLock>,
    id: Option<String>,
    /// Whether the outcome record was written (or tried) during the attempt.
    outcome_tried: bool,
    log: Option<PathBuf>,
    unwritten: Option<String>,
}

impl Traces {
    /// Keeps the log's path, or the first failure.
    fn note(&mut self, written: super::Result<PathBuf>) {
        match written {
            Ok(path) => self.log = Some(path),
            Err(e) => {
                self.unwritten.get_or_insert(e.to_string());
            }
        }
    }

    /// The audit log written to, or why a record is missing from it.
    fn audit(&self) -> Result<PathBuf, String> {
        match (&self.unwritten, &self.log) {
            (Some(e), _) => Err(e.clone()),
            (None, Some(path)) => Ok(path.clone()),
            (None, None) => Err("no audit record was written".into()),
        }
    }
}

/// The fields a replace set, as the apiserver answered (or as planned).
fn changed_fields(plan: &Plan, answered: Option<&Value>) -> Option<Vec<ChangedField>> {
    let Change::Replace { after } = &plan.change else {
        return None;
    };
    let before = change::without_server_fields(plan.before.as_ref()?);
    let planned = change::without_server_fields(after);
    let now = answered.unwrap_or(after);
    Some(
        change::changed_fields(&before, &planned)
            .into_iter()
            .map(|path| ChangedField {
                after: now.pointer(&path).or(planned.pointer(&path)).cloned(),
                path,
            })
            .collect(),
    )
}

async fn attempt(
    cluster: &Cluster,
    plan: &Plan,
    confirmation: &str,
    options: &ApplyOptions,
    progress: &mut impl FnMut(Step),
    traces: &mut Traces,
) -> Verdict {
    let name = plan.confirm_name();
    if confirmation != name {
        return Verdict::Refused(format!(
            "the confirmation {confirmation:?} is not the object's name; type --confirm {name} to apply this plan"
        ));
    }
    if cluster.is_read_only() || plan.read_only {
        return Verdict::Refused(
            "read-only mode: nothing was sent; the plan shows what would be done".into(),
        );
    }
    if let Rbac::Denied(why) = &plan.rbac {
        return Verdict::Refused(format!("{why}; nothing was changed"));
    }
    // One change at a time per state folder: held until its last record is written.
    traces.lock = match super::lock::take(
        &options.state_dir,
        &format!("{} {}", plan.action, plan.target.display()),
    ) {
        Ok(taken) => Some(taken),
        Err(super::Error::Busy(why)) => return Verdict::Refused(why),
        Err(e) => return Verdict::Failed(format!("{e}; nothing was changed")),
    };
    super::fault::pause("lock-taken");
    let mut backup_sha256 = None;
    match &plan.before {
        Some(before) => {
            let path = super::backup::backup_path(
                &options.state_dir,
                &plan.context,
                &plan.target,
                jiff::Timestamp::now(),
            );
            let header = format!(
                "kube-rescue backup of {}\ncontext {}, server {}, user {}\ntaken {} before: {}\nundo: kube-rescue restore {} --confirm {}",
                plan.target.display(),
                plan.context,
                plan.server,
                plan.user,
                audit::now_text(),
                plan.action,
                path.display(),
                name
            );
            match super::backup::write(&path, &header, before) {
                Ok(sha256) => backup_sha256 = Some(sha256),
                Err(e) => return Verdict::Failed(format!("{e}; nothing was changed")),
            }
            traces.backup = Some(path.clone());
            progress(Step::BackupWritten(path));
        }
        None => progress(Step::NoBackupNeeded),
    }
    super::fault::pause("backup-written");
    // Write-ahead: the attempt is on disk before anything is sent.
    let id = audit::new_id();
    let mut record = record_of(plan, RecordKind::Attempt, Some(&id), "attempted".into());
    record.resource_version = Some(plan.resource_version.clone());
    record.backup = traces.backup.as_ref().map(|p| p.display().to_string());
    record.backup_sha256 = backup_sha256;
    match audit::append(&options.state_dir, &record) {
        Ok(path) => traces.log = Some(path),
        Err(e) => {
            traces.unwritten = Some(e.to_string());
            traces.outcome_tried = true;
            return Verdict::Failed(format!("{e}; nothing was changed"));
        }
    }
    traces.id = Some(id.clone());
    super::fault::pause("attempt-recorded");
    let sent = plan::send(cluster, plan, false).await;
    let answered = match sent {
        Ok(answered) => answered,
        Err(e) => return refused_or_failed(cluster, plan, e).await,
    };
    super::fault::pause("request-answered");
    let mut record = record_of(plan, RecordKind::Outcome, Some(&id), "done".into());
    record.backup = traces.backup.as_ref().map(|p| p.display().to_string());
    record.resource_version = answered
        .as_ref()
        .and_then(|a| a["metadata"]["resourceVersion"].as_str())
        .map(str::to_string);
    record.changed = changed_fields(plan, answered.as_ref());
    record.changed_sha256 = record.changed.as_deref().map(audit::changed_sha256);
    traces.outcome_tried = true;
    traces.note(audit::append(&options.state_dir, &record));
    super::fault::pause("outcome-recorded");
    let shown = plan.target.display();
    progress(Step::Changed(match &plan.change {
        Change::Delete => format!("deleted {shown} (uid {})", plan.uid),
        Change::Replace { .. } => format!(
            "replaced {shown} (resourceVersion {} -> {})",
            plan.resource_version,
            answered
                .as_ref()
                .and_then(|a| a["metadata"]["resourceVersion"].as_str())
                .unwrap_or("?")
        ),
        Change::Create { .. } => format!(
            "created {shown} (uid {})",
            answered.as_ref().map(uid_of).unwrap_or("?")
        ),
    }));
    traces.verification = Some(verify(cluster, plan, options, progress).await);
    Verdict::Done
}

/// Why a write was not accepted, in words: a change since the plan and RBAC are refusals
/// (nothing was changed), anything else a failure.
async fn refused_or_failed(cluster: &Cluster, plan: &Plan, error: AccessError) -> Verdict {
    let name = plan.confirm_name();
    match error.kind {
        ErrorKind::Conflict => {
            let resource = plan.resource();
            let current = cluster
                .read_object(&resource, plan.target.namespace.as_deref(), name)
                .await;
            let what = match (&plan.change, current) {
                (Change::Create { .. }, Ok(current)) => format!(
                    "{name} was created since the plan (uid {}), {}",
                    uid_of(&current),
                    manager_words(&current)
                ),
                (_, Ok(current)) if uid_of(&current) != plan.uid => format!(
                    "{name} was re-created since the plan (uid {} -> {})",
                    plan.uid,
                    uid_of(&current)
                ),
                (_, Ok(current)) => format!(
                    "{name} changed since the plan (resourceVersion {} -> {})",
                    plan.resource_version,
                    current["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or("?")
                ),
                (_, Err(_)) => format!("{name} changed since the plan ({})", error.message),
            };
            Verdict::Refused(format!("{what}; nothing was changed; run the plan again"))
        }
        ErrorKind::NotFound => Verdict::Refused(format!(
            "{name} was deleted since the plan; nothing was changed"
        )),
        ErrorKind::Forbidden => Verdict::Refused(format!(
            "the apiserver refused: {}; nothing was changed",
            error.message
        )),
        ErrorKind::ReadOnly => Verdict::Refused(error.message),
        _ => Verdict::Failed(format!(
            "{} ({}: read the object before trying again)",
            error.message,
            audit::MAYBE_CHANGED
        )),
    }
}

/// What reading the object back shows.
enum Seen {
    Gone,
    Object(Value),
    Unreadable(String),
}

async fn read_back(cluster: &Cluster, plan: &Plan) -> Seen {
    let resource = plan.resource();
    match cluster
        .read_object(
            &resource,
            plan.target.namespace.as_deref(),
            plan.confirm_name(),
        )
        .await
    {
        Ok(object) => Seen::Object(object),
        Err(e) if e.kind == ErrorKind::NotFound => Seen::Gone,
        Err(e) => Seen::Unreadable(e.message),
    }
}

/// Whether `seen` shows the plan's change: gone for a delete; the changed fields as planned
/// for a replace; there, with a new uid, for a create.
fn shows_change(plan: &Plan, seen: &Seen) -> (bool, String) {
    match (&plan.change, seen) {
        (_, Seen::Unreadable(e)) => (false, format!("could not read it back: {e}")),
        (Change::Delete, Seen::Gone) => (true, "gone (404)".into()),
        (Change::Delete, Seen::Object(o)) if uid_of(o) == plan.uid => {
            (false, "still there (deletion pending?)".into())
        }
        (Change::Delete, Seen::Object(o)) => (
            false,
            format!("re-created (new uid {}), {}", uid_of(o), manager_words(o)),
        ),
        (_, Seen::Gone) => (false, "gone (404): deleted by someone else".into()),
        (Change::Create { .. }, Seen::Object(o)) => (true, format!("there (uid {})", uid_of(o))),
        (Change::Replace { after }, Seen::Object(o)) => {
            // What the change sets, leaving out what the apiserver keeps for itself (a
            // restored object carries no uid, resourceVersion or managedFields).
            let after = &change::without_server_fields(after);
            let before = change::without_server_fields(plan.before.as_ref().unwrap_or(o));
            let paths = change::changed_paths(&before, after);
            let reverted: Vec<&String> = paths
                .iter()
                .filter(|p| o.pointer(p) != after.pointer(p))
                .collect();
            if reverted.is_empty() {
                let shown: Vec<String> = paths
                    .iter()
                    .take(4)
                    .map(|p| match after.pointer(p) {
                        Some(v) => format!("{p} = {v}"),
                        None => format!("{p} removed"),
                    })
                    .collect();
                (
                    true,
                    format!("the change is in place ({})", shown.join(", ")),
                )
            } else {
                (
                    false,
                    format!(
                        "not as planned at {}, {}",
                        reverted
                            .iter()
                            .map(|p| p.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        manager_words(o)
                    ),
                )
            }
        }
    }
}

fn describe_probe(report: &ProbeReport) -> String {
    let each: Vec<String> = report
        .namespaces
        .iter()
        .map(|n| format!("{}: {}", n.namespace, n.describe()))
        .collect();
    let verdict = if report.all_pass() {
        "writes pass"
    } else if report.cut_by_restart() {
        "no verdict yet: the apiserver went away during the probe (restarting?)"
    } else {
        "writes still fail"
    };
    format!("{verdict} ({})", each.join("; "))
}

/// The write probe, tried again while the apiserver restarts under it: a change made during a
/// crash loop is judged on an apiserver that answers. After that the verification says so,
/// and the screen's refreshes go on probing.
async fn probe_through_restarts(cluster: &Cluster) -> Result<ProbeReport, AccessError> {
    probe::through_restarts(|| probe::write_probe_now(cluster)).await
}

/// Watches the object for `watch_for`: returns how a controller put it back, if one did.
async fn watch(cluster: &Cluster, plan: &Plan, watch_for: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + watch_for;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(WATCH_EVERY).await;
        let seen = read_back(cluster, plan).await;
        let (in_place, what) = shows_change(plan, &seen);
        if !in_place && !matches!(seen, Seen::Unreadable(_)) {
            return Some(what);
        }
    }
    None
}

async fn verify(
    cluster: &Cluster,
    plan: &Plan,
    options: &ApplyOptions,
    progress: &mut impl FnMut(Step),
) -> Verification {
    let seen = read_back(cluster, plan).await;
    let (in_place, read_back_text) = shows_change(plan, &seen);
    progress(Step::ReadBack(read_back_text.clone()));
    progress(Step::Verifying(options.watch_for));
    let (probe, put_back) = tokio::join!(
        probe_through_restarts(cluster),
        watch(cluster, plan, options.watch_for)
    );
    let (write_probe, writes) = match probe {
        Ok(report) => {
            let text = describe_probe(&report);
            (Some(report), text)
        }
        Err(e) => (None, format!("could not run: {}", e.message)),
    };
    progress(Step::WriteProbe(writes.clone()));
    let watched = match &put_back {
        Some(how) => format!("a controller put it back: {how}"),
        None => format!(
            "nothing put it back within {} s",
            options.watch_for.as_secs_f64()
        ),
    };
    progress(Step::Watched(watched.clone()));
    Verification {
        in_place,
        read_back: read_back_text,
        write_probe,
        writes,
        put_back,
        watched,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::probe::{NamespaceProbe, ProbeState, WriteFailure};

    fn namespace(state: ProbeState) -> NamespaceProbe {
        NamespaceProbe {
            namespace: "kube-system".into(),
            started_at: None,
            deadline: Duration::from_secs(12),
            fail_closed_webhooks: Vec::new(),
            matching_webhooks: Vec::new(),
            state,
        }
    }

    fn failed(kind: ErrorKind, message: &str) -> ProbeState {
        ProbeState::Failed {
            took: Duration::from_secs(3),
            failure: WriteFailure::Access {
                error: AccessError::new(kind, message),
            },
        }
    }

    fn report(states: Vec<ProbeState>) -> ProbeReport {
        ProbeReport {
            namespaces: states.into_iter().map(namespace).collect(),
            gave_up: false,
        }
    }

    #[test]
    fn a_probe_cut_by_a_restart_is_no_verdict_on_writes() {
        let cut = report(vec![
            failed(ErrorKind::Disconnected, "the connection was closed"),
            failed(ErrorKind::Refused, "connection refused"),
        ]);
        assert!(cut.cut_by_restart());
        assert!(
            describe_probe(&cut).starts_with("no verdict yet: the apiserver went away"),
            "{}",
            describe_probe(&cut)
        );
        // A timeout is an answer about writes (a hung webhook), not a restart.
        let hung = report(vec![
            failed(ErrorKind::Disconnected, "the connection was closed"),
            failed(ErrorKind::Timeout, "no answer"),
        ]);
        assert!(!hung.cut_by_restart());
        assert!(describe_probe(&hung).starts_with("writes still fail"));
        let passed = report(vec![ProbeState::Passed {
            took: Duration::from_millis(4),
        }]);
        assert!(!passed.cut_by_restart());
        assert!(describe_probe(&passed).starts_with("writes pass ("));
    }
}
