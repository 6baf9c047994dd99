//! The REST semantics of the simulated apiserver: reads (get, list, watch, with selectors,
//! pagination, resourceVersion rules, Table and metadata-only answers) and the write pipeline
//! (create, update, patch, delete; admission; dry run). HTTP plumbing lives in `server.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use super::errors::{ApiError, qualified};
use super::kinds::{self, KINDS, Kind};
use super::selector::{FieldSelector, LabelSelector, supported_field};
use super::server::Apiserver;
use super::store::{Change, Store, key_of};
use super::{admission, events, table};
use crate::managed_fields::record_update;
use crate::validate;

pub type ApiResult<T> = Result<T, ApiError>;

/// Who is asking, as admission webhooks are told.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub username: String,
    pub groups: Vec<String>,
}

impl User {
    pub fn admin() -> Self {
        User {
            username: "kube-rescue-admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }

    pub fn component(name: &str) -> Self {
        User {
            username: name.into(),
            groups: vec!["system:authenticated".into()],
        }
    }

    /// A request without credentials (health and version only).
    pub fn anonymous() -> Self {
        User {
            username: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        }
    }

    /// A scenario user: its groups and `system:authenticated`.
    pub fn from_scenario(user: &super::scenario::ScenarioUser) -> Self {
        let mut groups = user.groups.clone();
        if !groups.iter().any(|g| g == super::rbac::AUTHENTICATED_GROUP) {
            groups.push(super::rbac::AUTHENTICATED_GROUP.into());
        }
        User {
            username: user.name.clone(),
            groups,
        }
    }

    /// Whether every authorizer lets this user through (system:masters).
    pub fn is_superuser(&self) -> bool {
        self.groups
            .iter()
            .any(|g| g == super::rbac::SUPERUSER_GROUP)
    }
}

/// Options every write carries.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub user: User,
    /// The manager recorded in managedFields: the `fieldManager` parameter, else the
    /// User-Agent's product. None for the simulator's own writes, which record nothing.
    pub field_manager: Option<String>,
}

impl WriteOptions {
    pub fn as_user(user: User) -> Self {
        WriteOptions {
            dry_run: false,
            user,
            field_manager: None,
        }
    }
}

/// The patch formats the simulator accepts (strategic merge is applied as a JSON merge patch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    StrategicMerge,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            _ => None,
        }
    }
}

/// Delete preconditions: the write is refused unless the stored object still has these.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

/// What a list asked for.
#[derive(Clone, Debug, Default)]
pub struct ListParams {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

/// One page of a list.
#[derive(Clone, Debug)]
pub struct ListPage {
    pub items: Vec<Value>,
    pub resource_version: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

/// The namespace's labels, with the automatic `kubernetes.io/metadata.name`.
pub fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn encode_continue(resource_version: u64, after: &(String, String)) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": resource_version, "start": format!("{}/{}\u{0}", after.0, after.1)});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Option<(u64, (String, String))> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    let rv = value["rv"].as_u64()?;
    let start = value["start"].as_str()?.trim_end_matches('\u{0}');
    let (ns, name) = start.split_once('/')?;
    Some((rv, (ns.to_string(), name.to_string())))
}

fn invalid_continue() -> ApiError {
    ApiError::bad_request(
        "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
    )
}

/// Sets `metadata.labels["kubernetes.io/metadata.name"]` on a Namespace, as the apiserver does.
fn default_namespace(object: &mut Value) {
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !object["metadata"]["labels"].is_object() {
        object["metadata"]["labels"] = json!({});
    }
    object["metadata"]["labels"]["kubernetes.io/metadata.name"] = Value::String(name);
    if object["status"]["phase"].is_null() {
        object["status"] = json!({"phase": "Active"});
    }
    if object["spec"]["finalizers"].is_null() {
        object["spec"] = json!({"finalizers": ["kubernetes"]});
    }
}

/// The v1 defaults the apiserver stores on admission webhook configurations.
fn default_webhooks(object: &mut Value, mutating: bool) {
    let Some(webhooks) = object["webhooks"].as_array_mut() else {
        return;
    };
    for webhook in webhooks {
        let Some(w) = webhook.as_object_mut() else {
            continue;
        };
        w.entry("failurePolicy").or_insert(json!("Fail"));
        w.entry("matchPolicy").or_insert(json!("Equivalent"));
        w.entry("timeoutSeconds").or_insert(json!(10));
        w.entry("namespaceSelector").or_insert(json!({}));
        w.entry("objectSelector").or_insert(json!({}));
        if mutating {
            w.entry("reinvocationPolicy").or_insert(json!("Never"));
        }
        if let Some(rules) = w.get_mut("rules").and_then(Value::as_array_mut) {
            for rule in rules.iter_mut().filter_map(Value::as_object_mut) {
                rule.entry("scope").or_insert(json!("*"));
            }
        }
        if let Some(service) = w
            .get_mut("clientConfig")
            .and_then(|c| c.get_mut("service"))
            .and_then(Value::as_object_mut)
        {
            service.entry("port").or_insert(json!(443));
        }
    }
}

/// The apiserver's validation of a written object, after defaulting and before admission: a
/// field of the wrong JSON type is a 400 (the object cannot be decoded), anything else
/// `crate::validate` finds a 422 with one cause per error.
fn check_valid(kind: &Kind, name: &str, object: &Value) -> ApiResult<()> {
    let mut view = events::from_storage(kind, object);
    view["apiVersion"] = json!(kind.api_version());
    view["kind"] = json!(kind.kind);
    if let Some(message) = validate::decode_error(&view) {
        return Err(ApiError::bad_request(message));
    }
    let errors = validate::validate(&view);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_fields(kind, name, &errors))
    }
}

/// Defaults applied to every object written, before admission.
fn apply_defaults(kind: &Kind, object: &mut Value) {
    match kind.storage {
        "namespaces" => default_namespace(object),
        "validatingwebhookconfigurations" => default_webhooks(object, false),
        "mutatingwebhookconfigurations" => default_webhooks(object, true),
        _ => {}
    }
}

impl Apiserver {
    /// A stored object, in the kind's own representation.
    pub fn get_object(&self, kind: &'static Kind, namespace: &str, name: &str) -> ApiResult<Value> {
        let store = self.store();
        let object = store
            .get(kind.storage, namespace, name)
            .ok_or_else(|| ApiError::not_found(kind, name))?;
        Ok(events::from_storage(kind, object))
    }

    /// Labels of a namespace, if it exists.
    pub fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        let store = self.store();
        let object = store.get("namespaces", "", namespace)?;
        let mut labels = labels_of(object);
        labels.insert("kubernetes.io/metadata.name".into(), namespace.into());
        Some(labels)
    }

    /// One page of a list, filtered by selectors.
    pub fn list_objects(
        &self,
        kind: &'static Kind,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> ApiResult<ListPage> {
        let labels = match params.label_selector.as_deref() {
            Some(s) => LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?,
            None => LabelSelector::everything(),
        };
        let fields = match params.field_selector.as_deref() {
            Some(s) => {
                let f =
                    FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?;
                if let Some(bad) = f.fields().find(|field| !supported_field(kind.kind, field)) {
                    return Err(ApiError::bad_request(format!(
                        "field label not supported: {bad}"
                    )));
                }
                Some(f)
            }
            None => None,
        };
        let store = self.store();
        let current = store.resource_version();
        let rv = params.resource_version.as_deref().unwrap_or("");
        // resourceVersion=0 is served from the watch cache, which ignores limit.
        let limit = if rv == "0" {
            None
        } else {
            params.limit.filter(|l| *l > 0)
        };
        let mut start_after = None;
        if let Some(token) = params.continue_token.as_deref().filter(|t| !t.is_empty()) {
            if !rv.is_empty() {
                return Err(ApiError::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            let (_, after) = decode_continue(token).ok_or_else(invalid_continue)?;
            start_after = Some(after);
        } else if !rv.is_empty() && rv != "0" {
            let wanted: u64 = rv
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?;
            match params
                .resource_version_match
                .as_deref()
                .unwrap_or("NotOlderThan")
            {
                "Exact" if wanted < current => {
                    return Err(ApiError::new(
                        410,
                        "Expired",
                        "The resourceVersion for the provided list is too old.",
                    ));
                }
                "Exact" | "NotOlderThan" if wanted > current => {
                    return Err(ApiError::new(
                        504,
                        "Timeout",
                        format!("Too large resource version: {wanted}, current: {current}"),
                    )
                    .with_details(json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1})));
                }
                "Exact" | "NotOlderThan" => {}
                other => {
                    return Err(ApiError::bad_request(format!(
                        "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
                    )));
                }
            }
        } else if params.resource_version_match.is_some() && rv.is_empty() {
            return Err(ApiError::bad_request(
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }

        let mut items = Vec::new();
        let mut last_key = None;
        let mut remaining = 0usize;
        let mut more = false;
        for (key, object) in store.list(kind.storage, namespace) {
            if start_after.as_ref().is_some_and(|after| key <= after) {
                continue;
            }
            if !labels.matches(&labels_of(object)) {
                continue;
            }
            let view = events::from_storage(kind, object);
            if let Some(f) = &fields
                && !f.matches(&view)
            {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                more = true;
                remaining += 1;
                continue;
            }
            last_key = Some(key.clone());
            items.push(view);
        }
        let continue_token = match (more, last_key) {
            (true, Some(key)) => Some(encode_continue(current, &key)),
            _ => None,
        };
        Ok(ListPage {
            items,
            resource_version: current,
            continue_token,
            remaining: more.then_some(remaining),
        })
    }

    /// Runs admission for a write and returns the object as the webhooks left it. The
    /// arguments are the admission attributes of the apiserver, one for one.
    #[allow(clippy::too_many_arguments)]
    async fn admit(
        &self,
        operation: admission::Operation,
        kind: &'static Kind,
        subresource: &str,
        namespace: &str,
        name: &str,
        object: Option<Value>,
        old_object: Option<Value>,
        options: &WriteOptions,
    ) -> ApiResult<Option<Value>> {
        let mut attributes = admission::Attributes {
            operation,
            group: kind.group.into(),
            version: kind.version.into(),
            resource: kind.plural.into(),
            subresource: subresource.into(),
            kind: kind.kind.into(),
            namespaced: kind.namespaced,
            namespace: namespace.into(),
            name: name.into(),
            object,
            old_object,
            dry_run: options.dry_run,
            user: admission::UserInfo {
                username: options.user.username.clone(),
                groups: options.user.groups.clone(),
            },
        };
        let env = super::env::AdmissionContext::new(self);
        admission::admit(&env, &mut attributes)
            .await
            .map_err(|e| ApiError {
                code: e.code,
                reason: e.reason.clone(),
                message: e.message.clone(),
                details: e.details.clone(),
            })?;
        Ok(attributes.object)
    }

    fn check_namespace(&self, kind: &'static Kind, namespace: &str) -> ApiResult<()> {
        if !kind.namespaced {
            return Ok(());
        }
        if namespace.is_empty() {
            return Err(ApiError::bad_request(
                "the server could not find the requested resource",
            ));
        }
        let store = self.store();
        match store.get("namespaces", "", namespace) {
            None => Err(ApiError::not_found(
                kinds::by_resource("", "v1", "namespaces").unwrap_or(kind),
                namespace,
            )),
            Some(ns) if !ns["metadata"]["deletionTimestamp"].is_null() => Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "{} \"{}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                    qualified(kind),
                    key_of(ns).1
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    /// Creates an object: defaults, admission (mutating, then validating), then storage unless
    /// this is a dry run.
    pub async fn create(
        &self,
        kind: &'static Kind,
        namespace: &str,
        mut object: Value,
        options: &WriteOptions,
    ) -> ApiResult<Value> {
        if !object.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request was not a JSON object",
            ));
        }
        if !kind.is_stored() {
            return self.create_review(kind, object, &options.user);
        }
        if let Some(api_version) = object["apiVersion"].as_str()
            && api_version != kind.api_version()
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                kind.api_version()
            )));
        }
        if let Some(k) = object["kind"].as_str()
            && k != kind.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                kind.kind
            )));
        }
        if !object["metadata"].is_object() {
            object["metadata"] = json!({});
        }
        match (object["metadata"]["namespace"].as_str(), kind.namespaced) {
            (Some(ns), true) if !ns.is_empty() && ns != namespace => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            (_, true) => object["metadata"]["namespace"] = json!(namespace),
            (_, false) => {
                if let Some(m) = object["metadata"].as_object_mut() {
                    m.remove("namespace");
                }
            }
        }
        if object["metadata"]["name"]
            .as_str()
            .is_none_or(str::is_empty)
        {
            match object["metadata"]["generateName"].as_str() {
                Some(prefix) if !prefix.is_empty() => {
                    let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..5].into();
                    object["metadata"]["name"] = json!(format!("{prefix}{suffix}"));
                }
                _ => {
                    return Err(ApiError::invalid_fields(
                        kind,
                        "",
                        &[validate::FieldError {
                            field: "metadata.name".into(),
                            kind: validate::ErrorType::Required,
                            value: None,
                            detail: "name or generateName is required".into(),
                        }],
                    ));
                }
            }
        }
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.check_namespace(kind, namespace)?;
        let mut object = events::to_storage(kind, object);
        apply_defaults(kind, &mut object);
        check_valid(kind, &name, &object)?;
        Store::prepare_new(kind, &mut object).map_err(|e| ApiError::from_store(kind, e))?;
        if self.store().get(kind.storage, namespace, &name).is_some() {
            return Err(ApiError::already_exists(kind, &name));
        }
        let view = events::from_storage(kind, &object);
        let admitted = self
            .admit(
                admission::Operation::Create,
                kind,
                "",
                namespace,
                &name,
                Some(view),
                None,
                options,
            )
            .await?
            .unwrap_or_default();
        let mut object = events::to_storage(kind, admitted);
        if options.dry_run {
            if self.store().get(kind.storage, namespace, &name).is_some() {
                return Err(ApiError::already_exists(kind, &name));
            }
            return Ok(events::from_storage(kind, &object));
        }
        if let Some(manager) = &options.field_manager {
            record_update(None, &mut object, manager, &super::store::now_rfc3339());
        }
        let stored = self
            .store()
            .create(kind, object)
            .map_err(|e| ApiError::from_store(kind, e))?;
        Ok(events::from_storage(kind, &stored))
    }

    /// SelfSubjectAccessReview, answered by the same evaluation as requests: the simulator's
    /// admin may do everything the scenario's `deny` does not name; a scenario user what RBAC
    /// grants. A denial carries no reason, as RBAC gives none.
    fn create_review(
        &self,
        kind: &'static Kind,
        mut review: Value,
        user: &User,
    ) -> ApiResult<Value> {
        review["apiVersion"] = json!(kind.api_version());
        review["kind"] = json!(kind.kind);
        if !review["metadata"].is_object() {
            review["metadata"] = json!({});
        }
        review["metadata"]["creationTimestamp"] = Value::Null;
        let spec = &review["spec"];
        let resource_attributes = &spec["resourceAttributes"];
        let non_resource_attributes = &spec["nonResourceAttributes"];
        let text = |attributes: &Value, key: &str| {
            attributes[key].as_str().unwrap_or_default().to_string()
        };
        let (verb, group, resource, subresource) = (
            text(resource_attributes, "verb"),
            text(resource_attributes, "group"),
            text(resource_attributes, "resource"),
            text(resource_attributes, "subresource"),
        );
        let (mut namespace, name) = (
            text(resource_attributes, "namespace"),
            text(resource_attributes, "name"),
        );
        if resource == "namespaces" && namespace.is_empty() {
            namespace = name.clone();
        }
        let (path, path_verb) = (
            text(non_resource_attributes, "path"),
            text(non_resource_attributes, "verb"),
        );
        let request = if resource_attributes.is_object() {
            super::rbac::Request::Resource {
                verb: &verb,
                group: &group,
                resource: &resource,
                subresource: &subresource,
                namespace: &namespace,
                name: &name,
            }
        } else if non_resource_attributes.is_object() {
            super::rbac::Request::NonResource {
                verb: &path_verb,
                path: &path,
            }
        } else {
            return Err(ApiError::invalid(
                kind,
                "",
                "spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
            ));
        };
        let denied_by_scenario = user.is_superuser()
            && matches!(request, super::rbac::Request::Resource { .. })
            && self.denies(&super::scenario::FaultRequest {
                verb: &verb,
                resource: &resource,
                subresource: &subresource,
                namespace: Some(namespace.as_str()).filter(|n| !n.is_empty()),
                name: Some(name.as_str()).filter(|n| !n.is_empty()),
                path: "",
            });
        let decision = if denied_by_scenario {
            super::rbac::Decision::Denied
        } else {
            super::rbac::authorize(&self.store(), user, &request)
        };
        review["status"] = match decision {
            super::rbac::Decision::Allowed(reason) if reason.is_empty() => json!({"allowed": true}),
            super::rbac::Decision::Allowed(reason) => json!({"allowed": true, "reason": reason}),
            super::rbac::Decision::Denied => json!({"allowed": false}),
        };
        Ok(review)
    }

    /// Merges a write to the main resource or to a subresource with the stored object: the
    /// main resource cannot change status, the status subresource can change only status.
    fn merge_for_subresource(kind: &Kind, subresource: &str, old: &Value, new: Value) -> Value {
        let has_status = kind.subresources.contains(&"status");
        match subresource {
            "status" => {
                let mut merged = old.clone();
                merged["status"] = new["status"].clone();
                merged["metadata"]["resourceVersion"] = new["metadata"]["resourceVersion"].clone();
                merged
            }
            "" if has_status => {
                let mut merged = new;
                if let Some(m) = merged.as_object_mut() {
                    match old.get("status") {
                        Some(s) => {
                            m.insert("status".into(), s.clone());
                        }
                        None => {
                            m.remove("status");
                        }
                    }
                }
                merged
            }
            _ => new,
        }
    }

    fn check_subresource(kind: &'static Kind, subresource: &str) -> ApiResult<()> {
        if subresource.is_empty() || kind.subresources.contains(&subresource) {
            Ok(())
        } else {
            Err(ApiError::no_such_path())
        }
    }

    /// Replaces an object (PUT). A resourceVersion in the body must match the stored one.
    pub async fn update(
        &self,
        kind: &'static Kind,
        namespace: &str,
        name: &str,
        subresource: &str,
        object: Value,
        options: &WriteOptions,
    ) -> ApiResult<Value> {
        Self::check_subresource(kind, subresource)?;
        if subresource == "scale" {
            return self
                .update_scale(kind, namespace, name, object, options)
                .await;
        }
        if !object.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request was not a JSON object",
            ));
        }
        if let Some(body_name) = object["metadata"]["name"].as_str()
            && body_name != name
        {
            return Err(ApiError::bad_request(
                "the name of the object does not match the name on the URL",
            ));
        }
        let expected = object["metadata"]["resourceVersion"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        self.replace_with(
            kind,
            namespace,
            name,
            subresource,
            expected,
            options,
            move |_| Ok(object.clone()),
        )
        .await
    }

    /// The shared read-modify-admit-write loop of update and patch. `change` builds the new
    /// object from the stored one (in the kind's representation). Without an expected
    /// resourceVersion, a concurrent change makes the loop start again, as the apiserver's
    /// GuaranteedUpdate does.
    #[allow(clippy::too_many_arguments)]
    async fn replace_with(
        &self,
        kind: &'static Kind,
        namespace: &str,
        name: &str,
        subresource: &str,
        expected: Option<String>,
        options: &WriteOptions,
        change: impl Fn(&Value) -> ApiResult<Value>,
    ) -> ApiResult<Value> {
        for _ in 0..5 {
            let old = self.get_object(kind, namespace, name)?;
            let old_rv = old["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if let Some(expected) = &expected
                && *expected != old_rv
            {
                return Err(ApiError::modified(kind, name));
            }
            let mut new = change(&old)?;
            if !new.is_object() {
                return Err(ApiError::bad_request("the object must be a JSON object"));
            }
            if !new["metadata"].is_object() {
                new["metadata"] = json!({});
            }
            new["metadata"]["name"] = json!(name);
            if kind.namespaced {
                new["metadata"]["namespace"] = json!(namespace);
            }
            new["apiVersion"] = json!(kind.api_version());
            new["kind"] = json!(kind.kind);
            new["metadata"]["uid"] = old["metadata"]["uid"].clone();
            new["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
            new["metadata"]["resourceVersion"] = json!(old_rv);
            let mut new = Self::merge_for_subresource(kind, subresource, &old, new);
            apply_defaults(kind, &mut new);
            check_valid(kind, name, &new)?;
            let admitted = self
                .admit(
                    admission::Operation::Update,
                    kind,
                    subresource,
                    namespace,
                    name,
                    Some(new),
                    Some(old.clone()),
                    options,
                )
                .await?
                .unwrap_or_default();
            let mut storage_form = events::to_storage(kind, admitted);
            if options.dry_run {
                return Ok(events::from_storage(kind, &storage_form));
            }
            if let Some(manager) = &options.field_manager {
                let old = events::to_storage(kind, old.clone());
                record_update(
                    Some(&old),
                    &mut storage_form,
                    manager,
                    &super::store::now_rfc3339(),
                );
            }
            let mut store = self.store();
            match store.update(kind, storage_form, Some(&old_rv)) {
                Ok(stored) => return Ok(events::from_storage(kind, &stored)),
                Err(super::store::StoreError::Conflict(..)) if expected.is_none() => continue,
                Err(e) => return Err(ApiError::from_store(kind, e)),
            }
        }
        Err(ApiError::modified(kind, name))
    }

    async fn update_scale(
        &self,
        kind: &'static Kind,
        namespace: &str,
        name: &str,
        scale: Value,
        options: &WriteOptions,
    ) -> ApiResult<Value> {
        let replicas = scale["spec"]["replicas"].clone();
        let updated = self
            .replace_with(kind, namespace, name, "scale", None, options, |old| {
                let mut new = old.clone();
                new["spec"]["replicas"] = replicas.clone();
                Ok(new)
            })
            .await?;
        Ok(scale_of(&updated))
    }

    /// Patches an object: JSON patch, JSON merge patch, or strategic merge (applied as merge).
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        kind: &'static Kind,
        namespace: &str,
        name: &str,
        subresource: &str,
        patch_type: PatchType,
        patch: Value,
        options: &WriteOptions,
    ) -> ApiResult<Value> {
        Self::check_subresource(kind, subresource)?;
        let expected = match patch_type {
            PatchType::Json => None,
            _ => patch["metadata"]["resourceVersion"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        };
        let json_patch: Option<json_patch::Patch> = match patch_type {
            PatchType::Json => Some(
                serde_json::from_value(patch.clone())
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
            ),
            _ => {
                if !patch.is_object() {
                    return Err(ApiError::bad_request(
                        "error decoding patch: a merge patch must be a JSON object",
                    ));
                }
                None
            }
        };
        let scale = subresource == "scale";
        let result = self
            .replace_with(kind, namespace, name, subresource, expected, options, |old| {
                let mut target = if scale { scale_of(old) } else { old.clone() };
                match &json_patch {
                    Some(p) => json_patch::patch(&mut target, p).map_err(|e| {
                        ApiError::new(
                            422,
                            "Invalid",
                            format!("the server rejected our request due to an error in our request: {e}"),
                        )
                    })?,
                    None if patch_type == PatchType::StrategicMerge => {
                        strategic_merge(&mut target, &patch)
                    }
                    None => json_patch::merge(&mut target, &patch),
                }
                if scale {
                    let mut new = old.clone();
                    new["spec"]["replicas"] = target["spec"]["replicas"].clone();
                    Ok(new)
                } else {
                    Ok(target)
                }
            })
            .await?;
        Ok(if scale { scale_of(&result) } else { result })
    }

    /// Deletes an object after checking preconditions and running admission. A Namespace
    /// takes its contents with it.
    pub async fn delete(
        &self,
        kind: &'static Kind,
        namespace: &str,
        name: &str,
        preconditions: &Preconditions,
        options: &WriteOptions,
    ) -> ApiResult<Value> {
        let old = self.get_object(kind, namespace, name)?;
        let meta = &old["metadata"];
        if let Some(uid) = &preconditions.uid
            && meta["uid"].as_str() != Some(uid.as_str())
        {
            return Err(ApiError::conflict(
                kind,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta["uid"].as_str().unwrap_or_default()
                ),
            ));
        }
        if let Some(rv) = &preconditions.resource_version
            && meta["resourceVersion"].as_str() != Some(rv.as_str())
        {
            return Err(ApiError::conflict(
                kind,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta["resourceVersion"].as_str().unwrap_or_default()
                ),
            ));
        }
        self.admit(
            admission::Operation::Delete,
            kind,
            "",
            namespace,
            name,
            None,
            Some(old.clone()),
            options,
        )
        .await?;
        if options.dry_run {
            return Ok(old);
        }
        let mut store = self.store();
        let current_rv = store.get(kind.storage, namespace, name).and_then(|o| {
            o["metadata"]["resourceVersion"]
                .as_str()
                .map(str::to_string)
        });
        if current_rv.is_none() {
            return Err(ApiError::not_found(kind, name));
        }
        if preconditions.resource_version.is_some()
            && current_rv.as_deref() != meta["resourceVersion"].as_str()
        {
            return Err(ApiError::modified(kind, name));
        }
        if kind.storage == "namespaces" {
            store.delete_namespace_contents(KINDS, name);
        }
        let deleted = store
            .delete(kind, namespace, name)
            .map_err(|e| ApiError::from_store(kind, e))?;
        Ok(events::from_storage(kind, &deleted))
    }

    /// Deletes every object a list would return.
    pub async fn delete_collection(
        &self,
        kind: &'static Kind,
        namespace: Option<&str>,
        params: &ListParams,
        options: &WriteOptions,
    ) -> ApiResult<Vec<Value>> {
        let page = self.list_objects(
            kind,
            namespace,
            &ListParams {
                limit: None,
                continue_token: None,
                ..params.clone()
            },
        )?;
        let mut deleted = Vec::new();
        for item in page.items {
            let (ns, name) = key_of(&item);
            match self
                .delete(kind, &ns, &name, &Preconditions::default(), options)
                .await
            {
                Ok(d) => deleted.push(d),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }

    /// The changes a watch should send first: everything that matches now (for a watch from
    /// "now"), or the history after `since`.
    pub fn watch_start(&self, kind: &'static Kind, since: Option<u64>) -> ApiResult<WatchStart> {
        let store = self.store();
        let receiver = store.subscribe();
        let current = store.resource_version();
        let initial = match since {
            None => store
                .list(kind.storage, None)
                .map(|(_, o)| {
                    Arc::new(Change {
                        resource_version: current,
                        storage: kind.storage,
                        change: super::store::ChangeType::Added,
                        object: o.clone(),
                    })
                })
                .collect(),
            Some(since) => store
                .changes_since(since)
                .ok_or_else(|| {
                    ApiError::new(
                        410,
                        "Expired",
                        format!("too old resource version: {since} ({current})"),
                    )
                })?
                .into_iter()
                .filter(|c| c.storage == kind.storage)
                .collect(),
        };
        Ok((initial, receiver))
    }
}

/// What a watch sends first, and the feed of what follows.
pub type WatchStart = (
    Vec<Arc<Change>>,
    tokio::sync::broadcast::Receiver<Arc<Change>>,
);

/// The autoscaling/v1 Scale of a Deployment.
/// A strategic merge patch, as far as the simulator needs one: a JSON merge patch, except that
/// lists of objects keyed by `name` (webhooks, containers, env, volumes) merge element by
/// element, `$patch: delete` removes an element, and the other `$` directives kubectl sends
/// (`$setElementOrder/...`, `$retainKeys`) are dropped instead of stored.
fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let Some(target) = target.as_object_mut() else {
        return;
    };
    for (key, value) in patch {
        if key.starts_with('$') {
            continue;
        }
        if value.is_null() {
            target.remove(key);
            continue;
        }
        let current = target.entry(key.clone()).or_insert(Value::Null);
        match (current.as_array_mut(), value.as_array()) {
            (Some(old), Some(new)) if keyed_by_name(old) && keyed_by_name(new) => {
                for element in new {
                    let name = &element["name"];
                    let at = old.iter().position(|o| o["name"] == *name);
                    match (at, element["$patch"].as_str()) {
                        (Some(i), Some("delete")) => {
                            old.remove(i);
                        }
                        (None, Some("delete")) => {}
                        (Some(i), _) => strategic_merge(&mut old[i], element),
                        (None, _) => {
                            let mut added = json!({});
                            strategic_merge(&mut added, element);
                            old.push(added);
                        }
                    }
                }
            }
            _ if value.is_object() => strategic_merge(current, value),
            _ => *current = value.clone(),
        }
    }
}

fn keyed_by_name(list: &[Value]) -> bool {
    list.iter().all(|e| e["name"].is_string())
}

fn scale_of(object: &Value) -> Value {
    let meta = &object["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": object["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": object["status"]["replicas"].as_i64().unwrap_or(0),
                   "selector": selector_string(&object["spec"]["selector"])},
    })
}

fn selector_string(selector: &Value) -> String {
    selector["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// How long a watch may stay open when the client does not say.
pub const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// Whether a change belongs in a watch of `kind` in `namespace` with these selectors.
pub fn change_matches(
    kind: &'static Kind,
    namespace: Option<&str>,
    labels: &LabelSelector,
    fields: Option<&FieldSelector>,
    object: &Value,
) -> bool {
    if let Some(ns) = namespace
        && object["metadata"]["namespace"].as_str().unwrap_or_default() != ns
    {
        return false;
    }
    if !labels.matches(&labels_of(object)) {
        return false;
    }
    fields.is_none_or(|f| f.matches(&events::from_storage(kind, object)))
}

/// Table rendering is in its own module; re-exported for the server.
pub use table::to_table;

impl Apiserver {
    /// Stores a scenario object as it is described, without admission: defaults are applied,
    /// a given uid or creationTimestamp is kept. The error says what is wrong with the object.
    pub fn seed(&self, mut object: Value) -> Result<Value, String> {
        let api_version = object["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind_name = object["kind"].as_str().unwrap_or_default().to_string();
        let kind = kinds::by_api_version(&api_version, &kind_name)
            .filter(|k| k.is_stored())
            .ok_or_else(|| format!("the simulator does not serve {kind_name} in {api_version}"))?;
        if object["metadata"]["name"]
            .as_str()
            .is_none_or(str::is_empty)
        {
            return Err("metadata.name is required".into());
        }
        let given_uid = object["metadata"]["uid"].as_str().map(str::to_string);
        let given_created = object["metadata"]["creationTimestamp"]
            .as_str()
            .map(str::to_string);
        if kind.namespaced {
            let ns = object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string();
            object["metadata"]["namespace"] = json!(ns);
            if self.store().get("namespaces", "", &ns).is_none() {
                return Err(format!("namespace \"{ns}\" is not in the scenario"));
            }
        } else if let Some(m) = object["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        let mut object = events::to_storage(kind, object);
        apply_defaults(kind, &mut object);
        Store::prepare_new(kind, &mut object).map_err(|e| e.to_string())?;
        if let Some(uid) = given_uid {
            object["metadata"]["uid"] = json!(uid);
        }
        if let Some(created) = given_created {
            object["metadata"]["creationTimestamp"] = json!(created);
        }
        self.store().create(kind, object).map_err(|e| e.to_string())
    }

    /// Replaces or creates an object without admission (the timeline's `apply`).
    pub fn put_unadmitted(&self, object: Value) -> Result<Value, String> {
        let kind = kinds::by_api_version(
            object["apiVersion"].as_str().unwrap_or_default(),
            object["kind"].as_str().unwrap_or_default(),
        )
        .filter(|k| k.is_stored())
        .ok_or_else(|| "the simulator does not serve this kind".to_string())?;
        let (ns, name) = key_of(&object);
        let ns = if kind.namespaced && ns.is_empty() {
            "default".to_string()
        } else {
            ns
        };
        let exists = self.store().get(kind.storage, &ns, &name).is_some();
        if !exists {
            return self.seed(object);
        }
        let mut object = events::to_storage(kind, object);
        if kind.namespaced {
            object["metadata"]["namespace"] = json!(ns);
        }
        apply_defaults(kind, &mut object);
        self.store()
            .update(kind, object, None)
            .map_err(|e| e.to_string())
    }

    /// Deletes an object without admission (the timeline's `delete`).
    pub fn delete_unadmitted(
        &self,
        kind: &'static Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Value, String> {
        let mut store = self.store();
        if kind.storage == "namespaces" {
            store.delete_namespace_contents(KINDS, name);
        }
        store
            .delete(kind, namespace, name)
            .map_err(|e| e.to_string())
    }
}

impl Apiserver {
    /// Points every ownerReference at its owner's real uid (scenario files cannot know uids).
    pub fn link_owner_references(&self) {
        let mut store = self.store();
        let mut fixes = Vec::new();
        for kind in KINDS.iter().filter(|k| k.is_stored()) {
            for ((ns, name), object) in store.list(kind.storage, None) {
                let Some(refs) = object["metadata"]["ownerReferences"].as_array() else {
                    continue;
                };
                let mut changed = refs.clone();
                let mut any = false;
                for r in changed.iter_mut() {
                    let owner_kind = kinds::by_api_version(
                        r["apiVersion"].as_str().unwrap_or_default(),
                        r["kind"].as_str().unwrap_or_default(),
                    );
                    let Some(owner_kind) = owner_kind.filter(|k| k.is_stored()) else {
                        continue;
                    };
                    let owner_ns = if owner_kind.namespaced {
                        ns.as_str()
                    } else {
                        ""
                    };
                    let owner = store.get(
                        owner_kind.storage,
                        owner_ns,
                        r["name"].as_str().unwrap_or_default(),
                    );
                    if let Some(uid) = owner.and_then(|o| o["metadata"]["uid"].as_str())
                        && r["uid"] != uid
                    {
                        r["uid"] = json!(uid);
                        any = true;
                    }
                }
                if any {
                    fixes.push((kind, ns.clone(), name.clone(), changed));
                }
            }
        }
        for (kind, ns, name, refs) in fixes {
            if let Some(mut object) = store.get(kind.storage, &ns, &name).cloned() {
                object["metadata"]["ownerReferences"] = json!(refs);
                let _ = store.update(kind, object, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategic_merge_merges_named_lists_and_drops_directives() {
        let mut object = json!({
            "metadata": {"name": "w", "labels": {"a": "1"}},
            "webhooks": [
                {"name": "a.x.io", "failurePolicy": "Fail", "sideEffects": "None"},
                {"name": "b.x.io", "failurePolicy": "Fail"}
            ],
            "finalizers": ["f"]
        });
        strategic_merge(
            &mut object,
            &json!({
                "$setElementOrder/webhooks": [{"name": "a.x.io"}, {"name": "b.x.io"}],
                "metadata": {"labels": {"a": null, "b": "2"}},
                "webhooks": [
                    {"name": "a.x.io", "failurePolicy": "Ignore"},
                    {"name": "b.x.io", "$patch": "delete"},
                    {"name": "c.x.io", "timeoutSeconds": 3}
                ],
                "finalizers": []
            }),
        );
        assert_eq!(
            object,
            json!({
                "metadata": {"name": "w", "labels": {"b": "2"}},
                "webhooks": [
                    {"name": "a.x.io", "failurePolicy": "Ignore", "sideEffects": "None"},
                    {"name": "c.x.io", "timeoutSeconds": 3}
                ],
                "finalizers": []
            })
        );
    }
}
