//! The plan of one change, built from the live object before anything is touched: what will
//! change (a diff), whether the apiserver would accept it (a server-side dry run), the kubectl
//! command that does the same, what the change gives up, and whether RBAC allows it. In
//! read-only mode only reads are sent: the dry run and the access review (both POSTs) are
//! skipped and the plan says so.

use std::path::PathBuf;

use serde_json::Value;

use crate::cluster::{AccessError, Cluster, ErrorKind, ResourceType};

use super::action::{self, Action, Target, TargetKind};
use super::audit::Attempt;
use super::change::{self, shell_quote};
use super::{Error, Result};

/// What the user asked for.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Fix {
        action: Action,
        target: Target,
    },
    Restore {
        file: PathBuf,
        /// The attempt that wrote this backup, as the audit log has it (its checksum, and the
        /// state the change left, to tell later changes by others).
        recorded: Option<Box<Attempt>>,
        /// Put the whole backup back even over later changes by others.
        overwrite_later_changes: bool,
    },
}

impl Request {
    /// A restore of `file`, with what the audit log of `state_dir` recorded of it.
    pub fn restore(file: PathBuf, state_dir: &std::path::Path, overwrite: bool) -> Self {
        let log = super::audit::read(state_dir);
        // By its path, else (copied or moved) by its content.
        let recorded = log
            .by_backup(&file)
            .or_else(|| {
                let file = std::fs::File::open(&file).ok()?;
                let (bytes, over) =
                    crate::jsonl::read_capped(file, super::backup::MAX_BACKUP).ok()?;
                let sha = super::audit::sha256_hex(&bytes);
                log.attempts
                    .iter()
                    .rev()
                    .find(|a| !over && a.backup_sha256.as_deref() == Some(sha.as_str()))
            })
            .cloned()
            .map(Box::new);
        Request::Restore {
            file,
            recorded,
            overwrite_later_changes: overwrite,
        }
    }
}

/// What changed in the object since kube-rescue's change, by someone else.
#[derive(Clone, Debug, PartialEq)]
pub struct LaterChanges {
    /// Who, from managedFields.
    pub managers: Vec<String>,
    /// Where (JSON pointers).
    pub paths: Vec<String>,
    /// For each field of interest: (path, in the backup, after kube-rescue's change, live now).
    pub three_way: Vec<(String, String, String, String)>,
    /// Whether the plan puts the whole backup back over them.
    pub overwritten: bool,
    /// Fields kube-rescue's change set that someone changed again since (left alone by
    /// default).
    pub contested: Vec<String>,
    /// The attempt whose change they came after (to plan again with `overwritten`).
    pub recorded: Box<Attempt>,
}

/// The write the plan will send.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// DELETE with the uid and resourceVersion as read as preconditions.
    Delete,
    /// PUT of the changed object, carrying the resourceVersion as read.
    Replace { after: Value },
    /// POST of an object that is not there (restore).
    Create { object: Value },
}

/// The server-side dry run (dryRun=All) of the change.
#[derive(Clone, Debug, PartialEq)]
pub enum DryRun {
    Passed,
    Failed(String),
    /// Not sent, and why.
    Skipped(String),
}

/// What a SelfSubjectAccessReview said about the change.
#[derive(Clone, Debug, PartialEq)]
pub enum Rbac {
    Allowed,
    Denied(String),
    /// Not asked, and why (read-only mode).
    NotChecked(String),
    /// The review itself failed.
    Unknown(String),
}

/// Everything a person needs to decide, and everything apply needs to do it safely.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// `delete`, `fail-open`, ..., `restore`.
    pub action: String,
    pub context: String,
    pub server: String,
    /// The kubeconfig user (a name).
    pub user: String,
    /// The object that changes (the Deployment for restart-backend).
    pub target: Target,
    /// What was asked, when it differs from `target` (restart-backend: the webhook
    /// configuration), with how the target was found.
    pub via: Option<String>,
    /// uid and resourceVersion as read (empty when restoring an object that is gone).
    pub uid: String,
    pub resource_version: String,
    /// The object as read (None when it is gone).
    pub before: Option<Value>,
    pub change: Change,
    /// Unified diff of the YAML, without the server's bookkeeping fields.
    pub diff: String,
    /// The kubectl command that does the same.
    pub kubectl: String,
    /// What the change gives up, in words.
    pub gives_up: String,
    pub dry_run: DryRun,
    pub rbac: Rbac,
    pub read_only: bool,
    /// For restore: the backup file.
    pub restore_from: Option<PathBuf>,
    /// For restore: how the backup proved itself (checksum), in words.
    pub integrity: Option<String>,
    /// For restore: what others changed since kube-rescue's change.
    pub later: Option<LaterChanges>,
}

impl Plan {
    /// The name the confirmation must repeat exactly: the changed object's.
    pub fn confirm_name(&self) -> &str {
        &self.target.name
    }

    /// The API verb of the change (for RBAC).
    pub fn verb(&self) -> &'static str {
        match self.change {
            Change::Delete => "delete",
            Change::Replace { .. } => "update",
            Change::Create { .. } => "create",
        }
    }

    /// The object as it will be (None for a delete).
    pub fn after(&self) -> Option<&Value> {
        match &self.change {
            Change::Delete => None,
            Change::Replace { after } => Some(after),
            Change::Create { object } => Some(object),
        }
    }

    pub fn resource(&self) -> ResourceType {
        self.target.kind.resource()
    }
}

fn not_found_or(error: AccessError, what: impl FnOnce() -> String) -> Error {
    if error.kind == ErrorKind::NotFound {
        Error::NotFound(what())
    } else {
        Error::Access(error)
    }
}

/// Reads the live object of a target.
async fn read_target(cluster: &Cluster, target: &Target) -> Result<Value> {
    cluster
        .read_object(
            &target.kind.resource(),
            target.namespace.as_deref(),
            &target.name,
        )
        .await
        .map_err(|e| {
            not_found_or(e, || {
                format!(
                    "{} not found in context {}",
                    target.display(),
                    cluster.context()
                )
            })
        })
}

/// The Deployment behind the Service a webhook configuration's webhooks call.
async fn backend_deployment(
    cluster: &Cluster,
    config: &Value,
    webhook: Option<&str>,
    shown: &str,
) -> Result<(Value, String)> {
    let chosen = change::select_webhooks(config, webhook, shown)?;
    let mut services: Vec<(String, String, String)> = Vec::new();
    for i in chosen {
        let hook = &config["webhooks"][i];
        let hook_name = hook["name"].as_str().unwrap_or_default().to_string();
        let service = &hook["clientConfig"]["service"];
        let (Some(ns), Some(name)) = (service["namespace"].as_str(), service["name"].as_str())
        else {
            return Err(Error::Input(format!(
                "webhook {hook_name} calls a URL, not a Service: there is no Deployment to restart"
            )));
        };
        if !services.iter().any(|(n, s, _)| n == ns && s == name) {
            services.push((ns.to_string(), name.to_string(), hook_name));
        }
    }
    let (namespace, service_name, hook_name) = match services.as_slice() {
        [one] => one.clone(),
        many => {
            return Err(Error::Input(format!(
                "the webhooks of {shown} call different Services ({}): choose one with --webhook NAME",
                many.iter()
                    .map(|(n, s, _)| format!("{n}/{s}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    let service = cluster
        .read_object(&action::SERVICE, Some(&namespace), &service_name)
        .await
        .map_err(|e| {
            not_found_or(e, || {
                format!("Service {namespace}/{service_name}, which webhook {hook_name} calls, does not exist: there is nothing to restart")
            })
        })?;
    let selector: Vec<(String, String)> = service["spec"]["selector"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    if selector.is_empty() {
        return Err(Error::Input(format!(
            "Service {namespace}/{service_name} has no selector: kube-rescue cannot tell which Deployment serves it"
        )));
    }
    let deployments = cluster
        .list_objects(&action::DEPLOYMENT, Some(&namespace))
        .await?;
    let serving: Vec<Value> = deployments
        .into_iter()
        .filter(|d| {
            let labels = &d["spec"]["template"]["metadata"]["labels"];
            selector.iter().all(|(k, v)| labels[k] == v.as_str())
        })
        .collect();
    let shown_selector = selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    match serving.as_slice() {
        [one] => {
            let name = one["metadata"]["name"].as_str().unwrap_or_default();
            Ok((
                one.clone(),
                format!(
                    "{shown} -> webhook {hook_name} -> Service {namespace}/{service_name} ({shown_selector}) -> deployment/{namespace}/{name}"
                ),
            ))
        }
        [] => Err(Error::NotFound(format!(
            "no Deployment in {namespace} runs the pods of Service {service_name} ({shown_selector})"
        ))),
        many => Err(Error::Input(format!(
            "several Deployments serve Service {namespace}/{service_name}: restart one with `fix restart-backend deployment/{namespace}/NAME` ({})",
            many.iter()
                .filter_map(|d| d["metadata"]["name"].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn kubectl_command(
    cluster: &Cluster,
    action: &str,
    target: &Target,
    change: &Change,
    before: Option<&Value>,
    restore_from: Option<&PathBuf>,
) -> String {
    let mut base = format!("kubectl --context {}", shell_quote(cluster.context()));
    if let Some(ns) = &target.namespace {
        base.push_str(&format!(" -n {}", shell_quote(ns)));
    }
    let kind = target.kind.kubectl_name();
    let name = shell_quote(&target.name);
    if let Some(file) = restore_from {
        let verb = if matches!(change, Change::Create { .. }) {
            "create"
        } else {
            "replace"
        };
        return format!(
            "{base} {verb} -f {}   # after removing the server-set fields (uid, resourceVersion, creationTimestamp, managedFields)",
            shell_quote(&file.display().to_string())
        );
    }
    match (action, change, before) {
        (_, Change::Delete, _) => format!("{base} delete {kind} {name}"),
        ("restart-backend", _, _) => format!("{base} rollout restart {kind} {name}"),
        ("cordon" | "uncordon", _, _) => format!("{base} {action} {name}"),
        (_, Change::Replace { after }, Some(before)) => {
            let patch = change::json_patch(before, after).to_string();
            format!(
                "{base} patch {kind} {name} --type=json -p {}",
                shell_quote(&patch)
            )
        }
        _ => format!("{base} apply -f -"),
    }
}

/// Builds the plan: reads the object (and for restart-backend the Service and Deployments),
/// computes the change, then runs the dry run and the access review side by side (neither in
/// read-only mode).
pub async fn plan(cluster: &Cluster, request: &Request) -> Result<Plan> {
    let now = jiff::Timestamp::now();
    let (mut integrity, mut later) = (None, None);
    let (action_name, target, via, before, change, gives_up, restore_from) = match request {
        Request::Fix { action, target } => {
            action.check_target(target)?;
            let shown = target.display();
            let object = read_target(cluster, target).await?;
            let (object, target, via) = match (action, target.kind) {
                (Action::RestartBackend { webhook }, k) if k != TargetKind::Deployment => {
                    let (deployment, via) =
                        backend_deployment(cluster, &object, webhook.as_deref(), &shown).await?;
                    let found = Target::new(
                        TargetKind::Deployment,
                        deployment["metadata"]["namespace"].as_str(),
                        deployment["metadata"]["name"].as_str().unwrap_or_default(),
                    );
                    (deployment, found, Some(via))
                }
                _ => (object, target.clone(), None),
            };
            let computed = change::compute(action, target.kind, &object, &shown, now)?;
            let change = match computed.after {
                None => Change::Delete,
                Some(after) => Change::Replace { after },
            };
            (
                action.name().to_string(),
                target,
                via,
                Some(object),
                change,
                computed.gives_up,
                None,
            )
        }
        Request::Restore {
            file,
            recorded,
            overwrite_later_changes,
        } => {
            let restored =
                restore_plan(cluster, file, recorded.as_deref(), *overwrite_later_changes).await?;
            integrity = Some(restored.integrity);
            later = restored.later;
            (
                "restore".to_string(),
                restored.target,
                None,
                restored.current,
                restored.change,
                restored.gives_up,
                Some(file.clone()),
            )
        }
    };
    let diff = change::unified_diff(
        before.as_ref(),
        match &change {
            Change::Delete => None,
            Change::Replace { after } => Some(after),
            Change::Create { object } => Some(object),
        },
    );
    // Putting back only some fields is a patch, not a replace of the whole file.
    let partial = later
        .as_ref()
        .is_some_and(|l: &LaterChanges| !l.overwritten);
    let kubectl = kubectl_command(
        cluster,
        &action_name,
        &target,
        &change,
        before.as_ref(),
        restore_from.as_ref().filter(|_| !partial),
    );
    let meta = before.as_ref().map(|b| &b["metadata"]);
    let text = |key: &str| {
        meta.and_then(|m| m[key].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let mut plan = Plan {
        action: action_name,
        context: cluster.context().to_string(),
        server: cluster.server().to_string(),
        user: cluster.user().to_string(),
        via,
        uid: text("uid"),
        resource_version: text("resourceVersion"),
        target,
        before,
        change,
        diff,
        kubectl,
        gives_up,
        dry_run: DryRun::Skipped("read-only: not sent".into()),
        rbac: Rbac::NotChecked("read-only".into()),
        read_only: cluster.is_read_only(),
        restore_from,
        integrity,
        later,
    };
    if !plan.read_only {
        let (dry_run, rbac) = tokio::join!(dry_run(cluster, &plan), access(cluster, &plan));
        plan.dry_run = dry_run;
        plan.rbac = rbac;
    }
    Ok(plan)
}

/// A restore, planned.
struct Restored {
    target: Target,
    current: Option<Value>,
    change: Change,
    gives_up: String,
    integrity: String,
    later: Option<LaterChanges>,
}

/// A value at a path, in a few words.
fn shown_at(object: Option<&Value>, path: &str) -> String {
    match object.and_then(|o| o.pointer(path)) {
        None => "(unset)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => {
            let text = v.to_string();
            match text.char_indices().nth(60) {
                Some((i, _)) => format!("{}...", &text[..i]),
                None => text,
            }
        }
    }
}

/// Who changed `path` of `object`, from its managedFields.
fn manager_of(object: &Value, path: &str) -> Option<String> {
    crate::managed_fields::owner_of(object, path).or_else(|| change::likely_manager(object))
}

/// Reads and checks the backup, reads the object, and works out what to send: the whole
/// backup, or (when someone changed the object since kube-rescue's change) only the fields
/// that change set, unless `overwrite`.
async fn restore_plan(
    cluster: &Cluster,
    file: &std::path::Path,
    recorded: Option<&Attempt>,
    overwrite: bool,
) -> Result<Restored> {
    let expected = recorded.and_then(|r| r.backup_sha256.as_deref());
    let loaded = super::backup::load(file, expected)?;
    let saved = loaded.object;
    let api_version = saved["apiVersion"].as_str().unwrap_or_default();
    let kind_name = saved["kind"].as_str().unwrap_or_default();
    let kind = TargetKind::of_object(api_version, kind_name).ok_or_else(|| {
        Error::Input(format!(
            "{} holds a {kind_name} ({api_version}); kube-rescue restores ValidatingWebhookConfiguration, MutatingWebhookConfiguration, Node and Deployment; nothing was sent",
            file.display()
        ))
    })?;
    let target = Target::new(
        kind,
        saved["metadata"]["namespace"]
            .as_str()
            .filter(|_| kind.resource().namespaced),
        saved["metadata"]["name"].as_str().unwrap_or_default(),
    );
    let restored = change::without_server_fields(&saved);
    check_valid(file, &restored)?;
    let current = match read_target(cluster, &target).await {
        Ok(current) => Some(current),
        Err(Error::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    let shown = target.display();
    let mut later = None;
    let (change, gives_up) = match &current {
        None => (
            Change::Create { object: restored },
            format!("{shown} is created again as it was backed up; what it enforces applies again"),
        ),
        Some(current) => {
            let live_rv = current["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default();
            let live_uid = current["metadata"]["uid"].as_str().unwrap_or_default();
            // Deleted and created again since kube-rescue's change (or deleted by it): the
            // object there now is someone else's.
            let recreated = recorded.filter(|r| !r.uid.is_empty() && r.uid != live_uid);
            let found = match (recorded, recreated) {
                (_, Some(attempt)) => {
                    Some(later_changes(&restored, current, attempt, None, overwrite))
                }
                (Some(attempt), None) => attempt
                    .after
                    .as_ref()
                    .filter(|done| done.resource_version != live_rv)
                    .map(|done| later_changes(&restored, current, attempt, Some(done), overwrite))
                    // A status update moves the resourceVersion and changes no field.
                    .filter(|found| !found.paths.is_empty()),
                (None, None) => None,
            };
            let mut after = restored.clone();
            let mut gives_up = format!("every change made to {shown} since the backup is undone");
            if let Some(found) = &found {
                let who = found.managers.join(", ");
                let what = found.paths.join(", ");
                match (recreated, recorded.and_then(|r| r.after.as_ref())) {
                    (Some(attempt), _) if !overwrite => {
                        return Err(Error::Input(format!(
                            "{shown} was deleted and created again since kube-rescue's {} (uid {} -> {live_uid}, {who}): restoring would replace an object kube-rescue never changed; add --overwrite-later-changes to do it anyway; nothing was sent",
                            attempt.action, attempt.uid
                        )));
                    }
                    (Some(_), _) => {
                        gives_up = format!(
                            "{shown}, created again since by {who}, is replaced by the backup"
                        );
                    }
                    (None, Some(done)) if !overwrite => {
                        after = current.clone();
                        let mut put_back = Vec::new();
                        for field in &done.changed {
                            if current.pointer(&field.path) == field.after.as_ref() {
                                change::set_pointer(
                                    &mut after,
                                    &field.path,
                                    restored.pointer(&field.path).cloned(),
                                );
                                put_back.push(field.path.clone());
                            }
                        }
                        if put_back.is_empty() {
                            return Err(Error::NoChange(format!(
                                "the fields kube-rescue's change set ({}) were changed again since by {who}; nothing of kube-rescue's change remains to undo (--overwrite-later-changes puts the whole backup back)",
                                done.changed
                                    .iter()
                                    .map(|c| c.path.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", "),
                            )));
                        }
                        gives_up = format!(
                            "only what kube-rescue's change set is put back ({}); the later changes by {who} ({what}) stay",
                            put_back.join(", "),
                        );
                    }
                    _ => {
                        gives_up = format!(
                            "every change made to {shown} since the backup is undone, including the later changes by {who} ({what})"
                        );
                    }
                }
            }
            later = found;
            after["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
            if change::without_server_fields(current) == change::without_server_fields(&after) {
                return Err(Error::NoChange(format!(
                    "{shown} is already as the backup has it"
                )));
            }
            (Change::Replace { after }, gives_up)
        }
    };
    let mut integrity = loaded.integrity;
    if recorded.is_none() && current.is_some() {
        integrity.push_str(
            "; no record of it in this state folder's audit log: the whole backup is put back, and changes others made since cannot be told apart",
        );
    }
    if recorded.is_some_and(|r| r.interrupted) {
        integrity.push_str(
            "; the change that wrote it was cut short before its outcome was recorded: the plan compares the backup with the live object only",
        );
    }
    Ok(Restored {
        target,
        current,
        change,
        gives_up,
        integrity,
        later,
    })
}

/// What others changed since kube-rescue's change: the state that change left is the backup
/// with the recorded fields set; whatever differs from it now is someone else's. Without
/// `done` (the object was created again since), all of it is.
fn later_changes(
    restored: &Value,
    current: &Value,
    recorded: &Attempt,
    done: Option<&super::audit::After>,
    overwrite: bool,
) -> LaterChanges {
    let changed: &[super::audit::ChangedField] = done.map_or(&[], |d| d.changed.as_slice());
    let mut left = restored.clone();
    for field in changed {
        change::set_pointer(&mut left, &field.path, field.after.clone());
    }
    let live = change::without_server_fields(current);
    let paths = match done {
        None => vec![format!(
            "the whole object (created again, uid {})",
            current["metadata"]["uid"].as_str().unwrap_or("?")
        )],
        Some(_) => change::changed_fields(&left, &live),
    };
    let mut managers: Vec<String> = Vec::new();
    for path in paths.iter().filter(|p| p.starts_with('/')) {
        if let Some(m) = manager_of(current, path)
            && !managers.contains(&m)
        {
            managers.push(m);
        }
    }
    if managers.is_empty()
        && let Some(m) = change::likely_manager(current)
    {
        managers.push(m);
    }
    if managers.is_empty() {
        managers.push("an unknown manager (no managedFields)".into());
    }
    let mut fields: Vec<&str> = changed.iter().map(|c| c.path.as_str()).collect();
    for p in paths.iter().filter(|p| p.starts_with('/')) {
        if !fields.contains(&p.as_str()) {
            fields.push(p);
        }
    }
    let three_way = fields
        .iter()
        .map(|p| {
            (
                p.to_string(),
                shown_at(Some(restored), p),
                shown_at(Some(&left), p),
                shown_at(Some(current), p),
            )
        })
        .collect();
    let contested = changed
        .iter()
        .filter(|c| current.pointer(&c.path) != c.after.as_ref())
        .map(|c| c.path.clone())
        .collect();
    LaterChanges {
        managers,
        paths,
        three_way,
        overwritten: overwrite,
        contested,
        recorded: Box::new(recorded.clone()),
    }
}

/// Refuses a backup that the apiserver would refuse: invalid for its kind.
fn check_valid(file: &std::path::Path, object: &Value) -> Result<()> {
    let errors = crate::validate::validate(object);
    if errors.is_empty() {
        return Ok(());
    }
    let kind = crate::validate::qualified_kind(
        object["apiVersion"].as_str().unwrap_or_default(),
        object["kind"].as_str().unwrap_or_default(),
    );
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    Err(Error::Input(format!(
        "{}: the apiserver would refuse it: {}; nothing was sent",
        file.display(),
        crate::validate::invalid_message(&kind, name, &errors)
    )))
}

/// Sends the change with dryRun=All.
async fn dry_run(cluster: &Cluster, plan: &Plan) -> DryRun {
    match send(cluster, plan, true).await {
        Ok(_) => DryRun::Passed,
        Err(e) => DryRun::Failed(e.message),
    }
}

async fn access(cluster: &Cluster, plan: &Plan) -> Rbac {
    let resource = plan.resource();
    match cluster
        .access_review(
            plan.verb(),
            &resource,
            plan.target.namespace.as_deref(),
            &plan.target.name,
        )
        .await
    {
        Ok(review) if review.allowed => Rbac::Allowed,
        Ok(review) => Rbac::Denied(format!(
            "RBAC does not allow {} to {} {} {}{}",
            if plan.user.is_empty() {
                "this user"
            } else {
                &plan.user
            },
            plan.verb(),
            resource.plural,
            plan.target.name,
            review.reason.map(|r| format!(" ({r})")).unwrap_or_default()
        )),
        Err(e) => Rbac::Unknown(e.message),
    }
}

/// Sends the plan's change (for real, or as a dry run). Returns the object as the apiserver
/// answered (None for a delete).
pub(crate) async fn send(
    cluster: &Cluster,
    plan: &Plan,
    dry_run: bool,
) -> Result<Option<Value>, AccessError> {
    let resource = plan.resource();
    let namespace = plan.target.namespace.as_deref();
    match &plan.change {
        Change::Delete => cluster
            .delete_object(
                &resource,
                namespace,
                &plan.target.name,
                &plan.uid,
                &plan.resource_version,
                dry_run,
            )
            .await
            .map(|()| None),
        Change::Replace { after } => cluster
            .replace_object(&resource, namespace, after, dry_run)
            .await
            .map(Some),
        Change::Create { object } => cluster
            .create_object(&resource, namespace, object, dry_run)
            .await
            .map(Some),
    }
}
