//! The pure part of a remediation: the object after an action, what that gives up in words,
//! the before/after diff, the equivalent kubectl command, and what to check afterwards. No
//! I/O: everything here is a function of the object as read.

use serde_json::{Value, json};

use super::action::{Action, TargetKind};
use super::{Error, Result};

/// Namespaces `exclude-system-namespaces` always leaves out (the backend's is added).
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-node-lease", "kube-public"];
/// The label every namespace carries since Kubernetes 1.21.
pub const NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// The pod template annotation `kubectl rollout restart` sets.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// The object after the action (None: deleted) and what the change gives up.
#[derive(Clone, Debug, PartialEq)]
pub struct Computed {
    pub after: Option<Value>,
    pub gives_up: String,
}

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

/// "a", "a and b", "a, b and c".
pub fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The indexes of the webhooks an action changes: the one `--webhook` names, else all.
pub fn select_webhooks(object: &Value, webhook: Option<&str>, shown: &str) -> Result<Vec<usize>> {
    let hooks = object["webhooks"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = hooks
        .iter()
        .map(|h| h["name"].as_str().unwrap_or_default())
        .collect();
    match webhook {
        None if names.is_empty() => Err(Error::NoChange(format!("{shown} has no webhooks"))),
        None => Ok((0..names.len()).collect()),
        Some(w) => names
            .iter()
            .position(|n| *n == w)
            .map(|i| vec![i])
            .ok_or_else(|| {
                Error::Input(format!(
                    "{shown} has no webhook {w:?} (it has: {})",
                    names.join(", ")
                ))
            }),
    }
}

/// Applies `edit` to each chosen webhook of `after` (the webhook as read is passed beside
/// it); returns whether any changed.
fn edit_webhooks(
    object: &Value,
    after: &mut Value,
    webhook: Option<&str>,
    shown: &str,
    mut edit: impl FnMut(&Value, &mut Value) -> bool,
) -> Result<bool> {
    let mut changed = false;
    for i in select_webhooks(object, webhook, shown)? {
        changed |= edit(&object["webhooks"][i], &mut after["webhooks"][i]);
    }
    Ok(changed)
}

/// Sets one field of a webhook; returns whether it changed.
fn set_field(hook: &mut Value, field: &str, value: Value) -> bool {
    if hook[field] == value {
        return false;
    }
    hook[field] = value;
    true
}

/// Adds `kubernetes.io/metadata.name NotIn [namespaces]` to a namespaceSelector, merged into
/// an existing NotIn expression on that key if there is one. Returns whether it changed.
pub fn exclude_namespaces(selector: &mut Value, namespaces: &[String]) -> bool {
    if !selector.is_object() {
        *selector = json!({});
    }
    if !selector["matchExpressions"].is_array() {
        selector["matchExpressions"] = json!([]);
    }
    let expressions = selector["matchExpressions"]
        .as_array_mut()
        .expect("made an array above");
    let existing = expressions
        .iter_mut()
        .find(|e| e["key"] == NAME_LABEL && e["operator"] == "NotIn");
    match existing {
        Some(expression) => {
            if !expression["values"].is_array() {
                expression["values"] = json!([]);
            }
            let values = expression["values"].as_array_mut().expect("an array");
            let mut changed = false;
            for ns in namespaces {
                if !values.iter().any(|v| v == ns.as_str()) {
                    values.push(json!(ns));
                    changed = true;
                }
            }
            changed
        }
        None => {
            expressions.push(json!({"key": NAME_LABEL, "operator": "NotIn", "values": namespaces}));
            true
        }
    }
}

/// What `exclude-system-namespaces` leaves out for one webhook: the system namespaces and the
/// namespace of the Service it calls.
pub fn excluded_namespaces(webhook: &Value) -> Vec<String> {
    let mut out: Vec<String> = SYSTEM_NAMESPACES.iter().map(|s| s.to_string()).collect();
    if let Some(ns) = webhook["clientConfig"]["service"]["namespace"].as_str()
        && !out.iter().any(|n| n == ns)
    {
        out.push(ns.to_string());
    }
    out
}

/// The object after `action`, for a webhook configuration or a node, or a Deployment for
/// `restart-backend` (`now` is its restartedAt). `shown` names the target in messages.
pub fn compute(
    action: &Action,
    kind: TargetKind,
    object: &Value,
    shown: &str,
    now: jiff::Timestamp,
) -> Result<Computed> {
    let name = name_of(object).to_string();
    let mutating = kind == TargetKind::MutatingWebhookConfiguration;
    let whose = |webhook: Option<&str>| match webhook {
        Some(w) => format!("webhook {w}"),
        None => name.clone(),
    };
    let mut after = object.clone();
    let gives_up = match action {
        Action::Delete => format!(
            "every webhook of {name} stops: requests are admitted without its {} until the configuration is restored (kube-rescue restore BACKUP)",
            if mutating { "mutations" } else { "validation" }
        ),
        Action::FailOpen { webhook }
        | Action::ExcludeSystemNamespaces { webhook }
        | Action::SetTimeout { webhook, .. } => {
            let webhook = webhook.as_deref();
            let mut excluded: Vec<String> = Vec::new();
            let changed =
                edit_webhooks(
                    object,
                    &mut after,
                    webhook,
                    shown,
                    |read, hook| match action {
                        Action::SetTimeout { seconds, .. } => {
                            set_field(hook, "timeoutSeconds", json!(seconds))
                        }
                        Action::ExcludeSystemNamespaces { .. } => {
                            let namespaces = excluded_namespaces(read);
                            for ns in &namespaces {
                                if !excluded.contains(ns) {
                                    excluded.push(ns.clone());
                                }
                            }
                            exclude_namespaces(&mut hook["namespaceSelector"], &namespaces)
                        }
                        _ => set_field(hook, "failurePolicy", json!("Ignore")),
                    },
                )?;
            let who = whose(webhook);
            let (already, gives_up) = match action {
                Action::SetTimeout { seconds, .. } => (
                    format!("{who} already has timeoutSeconds {seconds}"),
                    format!(
                        "{who} gets {seconds} s to answer; a slower answer counts as a failure (failurePolicy Fail: the request is refused; Ignore: it is admitted unchecked)"
                    ),
                ),
                Action::ExcludeSystemNamespaces { .. } => {
                    let excluded = and_list(&excluded);
                    (
                        format!("{who} already leaves out {excluded}"),
                        format!("policies of {who} are no longer enforced for {excluded}"),
                    )
                }
                _ => (
                    format!("{who} already fails open (failurePolicy Ignore)"),
                    format!(
                        "requests are admitted without {} while {who} fails or times out (failurePolicy Ignore)",
                        if mutating { "mutation" } else { "validation" }
                    ),
                ),
            };
            if !changed {
                return Err(Error::NoChange(already));
            }
            gives_up
        }
        Action::RestartBackend { .. } => {
            let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
            let template = &mut after["spec"]["template"]["metadata"];
            if !template["annotations"].is_object() {
                template["annotations"] = json!({});
            }
            template["annotations"][RESTARTED_AT] =
                json!(now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
            format!(
                "the pods of deployment {namespace}/{name} are replaced one by one; while they start, a fail-closed webhook they serve may not answer"
            )
        }
        Action::Cordon => {
            if after["spec"]["unschedulable"] == true {
                return Err(Error::NoChange(format!("node {name} is already cordoned")));
            }
            after["spec"]["unschedulable"] = json!(true);
            format!("no new pods are scheduled on node {name}; the pods running there stay")
        }
        Action::Uncordon => {
            if after["spec"]["unschedulable"] != true {
                return Err(Error::NoChange(format!("node {name} is not cordoned")));
            }
            if let Some(spec) = after["spec"].as_object_mut() {
                spec.remove("unschedulable");
            }
            format!("pods may be scheduled on node {name} again")
        }
    };
    let after = (!matches!(action, Action::Delete)).then_some(after);
    Ok(Computed { after, gives_up })
}

/// Metadata the apiserver sets, which a restored object must not carry.
const SERVER_METADATA: [&str; 8] = [
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The object without what the apiserver sets: uid, resourceVersion, creationTimestamp,
/// managedFields, generation, and status (which the main resource ignores anyway).
pub fn without_server_fields(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(meta) = out["metadata"].as_object_mut() {
        for field in SERVER_METADATA {
            meta.remove(field);
        }
    }
    if let Some(map) = out.as_object_mut() {
        map.remove("status");
    }
    out
}

/// An object as YAML.
pub fn yaml(object: &Value) -> String {
    serde_saphyr::to_string(object).unwrap_or_else(|e| format!("# could not render: {e}\n"))
}

/// The unified diff between two states of an object (None: absent), as YAML without the
/// server's bookkeeping.
pub fn unified_diff(before: Option<&Value>, after: Option<&Value>) -> String {
    let render = |v: Option<&Value>| {
        v.map(|v| yaml(&without_server_fields(v)))
            .unwrap_or_default()
    };
    let (old, new) = (render(before), render(after));
    similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(
            if before.is_some() {
                "before"
            } else {
                "/dev/null"
            },
            if after.is_some() {
                "after"
            } else {
                "/dev/null"
            },
        )
        .to_string()
}

/// A JSON patch from `before` to `after`, led by a test of the resourceVersion as read, so
/// that it fails if the object changed since.
pub fn json_patch(before: &Value, after: &Value) -> Value {
    let mut ops = vec![json!({
        "op": "test",
        "path": "/metadata/resourceVersion",
        "value": before["metadata"]["resourceVersion"],
    })];
    let diff = serde_json::to_value(json_patch::diff(before, after)).unwrap_or(json!([]));
    ops.extend(diff.as_array().cloned().unwrap_or_default());
    Value::Array(ops)
}

/// JSON pointers of what differs between `before` and `after` (for reading back).
pub fn changed_paths(before: &Value, after: &Value) -> Vec<String> {
    let diff = serde_json::to_value(json_patch::diff(before, after)).unwrap_or(json!([]));
    diff.as_array()
        .into_iter()
        .flatten()
        .filter_map(|op| op["path"].as_str().map(str::to_string))
        .filter(|p| p != "/metadata/resourceVersion")
        .collect()
}

/// The fields that differ between `before` and `after`, as JSON pointers to what can be put
/// back on its own: a value, or a whole list unless its items are objects keyed by `name`
/// (webhooks, containers), whose indexes stand for the items. A change that adds or removes
/// list items (a namespaceSelector's matchExpressions, their values) is one field, the list.
pub fn changed_fields(before: &Value, after: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for path in changed_paths(before, after) {
        let field = settable_prefix(before, after, &path);
        if !out.contains(&field) {
            out.push(field);
        }
    }
    out
}

/// Whether a list's items are objects that all carry a `name` (addressed by index safely).
fn keyed_by_name(list: &[Value]) -> bool {
    !list.is_empty() && list.iter().all(|item| item["name"].is_string())
}

/// `path` cut at the first list (in either object) that is not keyed by name.
fn settable_prefix(before: &Value, after: &Value, path: &str) -> String {
    let mut prefix = String::new();
    let (mut b, mut a) = (Some(before), Some(after));
    for segment in path.split('/').skip(1) {
        let list = |v: Option<&Value>| v.and_then(Value::as_array).map(|l| keyed_by_name(l));
        match (list(b), list(a)) {
            (Some(false), _) | (_, Some(false)) => return prefix,
            _ => {}
        }
        prefix.push('/');
        prefix.push_str(segment);
        let key = segment.replace("~1", "/").replace("~0", "~");
        (b, a) = (step(b, &key), step(a, &key));
    }
    prefix
}

/// Sets the value at a JSON pointer (None: removes it), making the objects on the way when
/// setting; an index one past a list's end appends. A path that leads through something
/// else changes nothing.
pub fn set_pointer(object: &mut Value, path: &str, value: Option<Value>) {
    let parts: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((last, parents)) = parts.split_last() else {
        return;
    };
    let mut here = object;
    for part in parents {
        here = match here {
            Value::Array(items) => {
                match part.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(next) => next,
                    None => return,
                }
            }
            Value::Object(map) => {
                // Removing makes nothing on the way.
                if value.is_none() && !map.contains_key(part) {
                    return;
                }
                map.entry(part.clone()).or_insert_with(|| json!({}))
            }
            _ => return,
        };
    }
    let index = last.parse::<usize>().ok();
    match (here, value) {
        (Value::Object(map), Some(v)) => {
            map.insert(last.clone(), v);
        }
        (Value::Object(map), None) => {
            map.remove(last);
        }
        (Value::Array(items), Some(v)) => match index {
            Some(i) if i < items.len() => items[i] = v,
            Some(i) if i == items.len() => items.push(v),
            _ => {}
        },
        (Value::Array(items), None) => {
            if let Some(i) = index.filter(|i| *i < items.len()) {
                items.remove(i);
            }
        }
        _ => {}
    }
}

/// One step down a JSON pointer.
fn step<'a>(value: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    match value? {
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        Value::Object(map) => map.get(key),
        _ => None,
    }
}

/// A word for a POSIX shell, quoted only when it needs to be.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+%".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The manager most likely to have put an object back: the latest entry of its managedFields
/// that is not kube-rescue's own.
pub fn likely_manager(object: &Value) -> Option<String> {
    object["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .filter(|e| {
            e["manager"]
                .as_str()
                .is_some_and(|m| m != crate::cluster::objects::FIELD_MANAGER)
        })
        .max_by_key(|e| e["time"].as_str().unwrap_or_default().to_string())
        .and_then(|e| e["manager"].as_str().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vwc() -> Value {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "opa-validating-webhook", "uid": "u1", "resourceVersion": "7",
                         "managedFields": [{"manager": "kubectl", "time": "2024-01-01T00:00:00Z"},
                                           {"manager": "gatekeeper", "time": "2024-02-01T00:00:00Z"}]},
            "webhooks": [
                {"name": "a.example.com", "failurePolicy": "Fail",
                 "clientConfig": {"service": {"namespace": "opa", "name": "opa"}},
                 "namespaceSelector": {"matchExpressions": [
                     {"key": "openpolicyagent.org/webhook", "operator": "NotIn", "values": ["ignore"]}]}},
                {"name": "b.example.com", "timeoutSeconds": 10,
                 "clientConfig": {"url": "https://b.example.com/"},
                 "namespaceSelector": {"matchExpressions": [
                     {"key": NAME_LABEL, "operator": "NotIn", "values": ["kube-system", "b"]}]}},
            ]
        })
    }

    fn now() -> jiff::Timestamp {
        "2026-11-26T10:00:00Z".parse().unwrap()
    }

    const VWC: TargetKind = TargetKind::ValidatingWebhookConfiguration;

    fn fail_open(webhook: Option<&str>, object: &Value, shown: &str) -> Result<Computed> {
        let action = Action::FailOpen {
            webhook: webhook.map(str::to_string),
        };
        compute(&action, VWC, object, shown, now())
    }

    #[test]
    fn fail_open_one_or_all() {
        let c = fail_open(Some("a.example.com"), &vwc(), "x").unwrap();
        let after = c.after.unwrap();
        assert_eq!(after["webhooks"][0]["failurePolicy"], "Ignore");
        assert!(after["webhooks"][1].get("failurePolicy").is_none());
        assert!(
            c.gives_up.contains("admitted without validation"),
            "{}",
            c.gives_up
        );
        let all = fail_open(None, &vwc(), "x").unwrap();
        assert_eq!(all.after.unwrap()["webhooks"][1]["failurePolicy"], "Ignore");
        let e = fail_open(Some("zzz"), &vwc(), "vwc/x")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "vwc/x has no webhook \"zzz\" (it has: a.example.com, b.example.com)"
        );
        let open = fail_open(None, &vwc(), "x").unwrap().after.unwrap();
        assert!(matches!(
            fail_open(None, &open, "x"),
            Err(Error::NoChange(_))
        ));
    }

    #[test]
    fn exclude_system_namespaces_merges_with_the_selector() {
        let c = compute(
            &Action::ExcludeSystemNamespaces { webhook: None },
            VWC,
            &vwc(),
            "x",
            now(),
        )
        .unwrap();
        let after = c.after.unwrap();
        let first = &after["webhooks"][0]["namespaceSelector"]["matchExpressions"];
        assert_eq!(
            first.as_array().unwrap().len(),
            2,
            "the existing expression is kept"
        );
        assert_eq!(
            first[1],
            json!({"key": NAME_LABEL, "operator": "NotIn",
            "values": ["kube-system", "kube-node-lease", "kube-public", "opa"]})
        );
        let second = &after["webhooks"][1]["namespaceSelector"]["matchExpressions"];
        assert_eq!(
            second.as_array().unwrap().len(),
            1,
            "merged into the NotIn on the same key"
        );
        assert_eq!(
            second[0]["values"],
            json!(["kube-system", "b", "kube-node-lease", "kube-public"])
        );
        assert_eq!(
            c.gives_up,
            "policies of opa-validating-webhook are no longer enforced for kube-system, kube-node-lease, kube-public and opa"
        );
        let again = compute(
            &Action::ExcludeSystemNamespaces { webhook: None },
            VWC,
            &after,
            "x",
            now(),
        );
        assert!(matches!(again, Err(Error::NoChange(_))));
        // No selector at all.
        let mut bare = vwc();
        bare["webhooks"][0]
            .as_object_mut()
            .unwrap()
            .remove("namespaceSelector");
        let c = compute(
            &Action::ExcludeSystemNamespaces {
                webhook: Some("a.example.com".into()),
            },
            VWC,
            &bare,
            "x",
            now(),
        )
        .unwrap();
        assert_eq!(
            c.after.unwrap()["webhooks"][0]["namespaceSelector"]["matchExpressions"][0]["key"],
            NAME_LABEL
        );
    }

    #[test]
    fn timeout_restart_cordon_and_delete() {
        let c = compute(
            &Action::SetTimeout {
                webhook: None,
                seconds: 3,
            },
            VWC,
            &vwc(),
            "x",
            now(),
        )
        .unwrap();
        let after = c.after.unwrap();
        assert_eq!(after["webhooks"][0]["timeoutSeconds"], 3);
        assert_eq!(after["webhooks"][1]["timeoutSeconds"], 3);

        let deploy = json!({"metadata": {"name": "opa", "namespace": "opa"},
                            "spec": {"template": {"metadata": {"labels": {"app": "opa"}}}}});
        let c = compute(
            &Action::RestartBackend { webhook: None },
            TargetKind::Deployment,
            &deploy,
            "x",
            now(),
        )
        .unwrap();
        assert_eq!(
            c.after.unwrap()["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT],
            "2026-11-26T10:00:00Z"
        );

        let node = json!({"metadata": {"name": "n1"}, "spec": {}});
        let cordoned = compute(&Action::Cordon, TargetKind::Node, &node, "x", now())
            .unwrap()
            .after
            .unwrap();
        assert_eq!(cordoned["spec"]["unschedulable"], true);
        assert!(matches!(
            compute(&Action::Cordon, TargetKind::Node, &cordoned, "x", now()),
            Err(Error::NoChange(_))
        ));
        let back = compute(&Action::Uncordon, TargetKind::Node, &cordoned, "x", now())
            .unwrap()
            .after
            .unwrap();
        assert!(back["spec"].get("unschedulable").is_none());
        assert!(matches!(
            compute(&Action::Uncordon, TargetKind::Node, &node, "x", now()),
            Err(Error::NoChange(_))
        ));

        let deleted = compute(&Action::Delete, VWC, &vwc(), "x", now()).unwrap();
        assert!(deleted.after.is_none());
    }

    #[test]
    fn diff_patch_and_bookkeeping() {
        let before = vwc();
        let after = fail_open(Some("a.example.com"), &before, "x")
            .unwrap()
            .after
            .unwrap();
        let diff = unified_diff(Some(&before), Some(&after));
        assert!(
            diff.contains("-  failurePolicy: Fail") && diff.contains("+  failurePolicy: Ignore"),
            "{diff}"
        );
        assert!(!diff.contains("managedFields"), "{diff}");
        let patch = json_patch(&before, &after);
        assert_eq!(
            patch[0],
            json!({"op": "test", "path": "/metadata/resourceVersion", "value": "7"})
        );
        assert_eq!(patch[1]["path"], "/webhooks/0/failurePolicy");
        assert_eq!(
            changed_paths(&before, &after),
            vec!["/webhooks/0/failurePolicy"]
        );
        let gone = unified_diff(Some(&before), None);
        assert!(
            gone.contains("+++ /dev/null")
                && gone.contains("-kind: ValidatingWebhookConfiguration"),
            "{gone}"
        );
        assert_eq!(likely_manager(&before).as_deref(), Some("gatekeeper"));
        let stripped = without_server_fields(&before);
        assert!(
            stripped["metadata"].get("uid").is_none()
                && stripped["metadata"].get("managedFields").is_none()
        );
        assert_eq!(shell_quote("plain-ctx"), "plain-ctx");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(
            and_list(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
    }

    #[test]
    fn changed_fields_are_values_or_whole_lists_that_are_not_keyed_by_name() {
        let before = json!({"webhooks": [
            {"name": "a", "failurePolicy": "Fail", "namespaceSelector": {"matchExpressions": [
                {"key": "k", "operator": "NotIn", "values": ["x"]}]}},
            {"name": "b", "failurePolicy": "Fail"}
        ]});
        let mut after = before.clone();
        after["webhooks"][0]["failurePolicy"] = json!("Ignore");
        after["webhooks"][0]["namespaceSelector"]["matchExpressions"][0]["values"] =
            json!(["x", "kube-system", "kube-public"]);
        after["webhooks"][1]["namespaceSelector"] =
            json!({"matchExpressions": [{"key": "k", "operator": "NotIn", "values": ["y"]}]});
        assert_eq!(
            changed_fields(&before, &after),
            [
                "/webhooks/0/failurePolicy",
                "/webhooks/0/namespaceSelector/matchExpressions",
                "/webhooks/1/namespaceSelector",
            ]
        );
        // Items removed from the end of a list: one field, the list.
        let fewer = json!({"spec": {"taints": []}});
        let more = json!({"spec": {"taints": [{"key": "a"}, {"key": "b"}]}});
        assert_eq!(changed_fields(&more, &fewer), ["/spec/taints"]);
    }

    #[test]
    fn set_pointer_sets_removes_and_appends_without_making_what_it_removes() {
        let mut o = json!({"a": {"b": [1, 2]}, "c": "x"});
        set_pointer(&mut o, "/a/b/1", Some(json!(5)));
        set_pointer(&mut o, "/a/b/2", Some(json!(6)));
        set_pointer(&mut o, "/a/b/9", Some(json!(7)));
        set_pointer(&mut o, "/d~1e/f", Some(json!(true)));
        set_pointer(&mut o, "/c/under/a/string", Some(json!(1)));
        assert_eq!(o["c"], "x");
        set_pointer(&mut o, "/c", None);
        set_pointer(&mut o, "/no/such/thing", None);
        set_pointer(&mut o, "/a/b/0", None);
        assert_eq!(o, json!({"a": {"b": [5, 6]}, "d/e": {"f": true}}));
    }
}
