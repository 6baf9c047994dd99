//! The apiserver's validation of the objects kube-rescue writes, worded as the apiserver words
//! it: admission webhook configurations (admissionregistration.k8s.io/v1), Nodes and
//! Deployments (apps/v1). Pure functions of a JSON object, shared by the simulator (which
//! answers 422 with them) and by `restore` (which checks a backup before writing it back).
//!
//! The wording follows k8s.io/apimachinery's `field.Error` and the apiserver's validation
//! functions, quirks included: Node taints are reported under `metadata.taints`, and a webhook
//! service without a name is reported as a missing `namespace` (and the other way round), as
//! the apiserver passes the two in swapped order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// The kind of a validation error, as `field.ErrorType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    Required,
    Invalid,
    NotSupported,
    Duplicate,
    Forbidden,
}

impl ErrorType {
    /// The words the apiserver prints for this kind of error.
    pub fn label(self) -> &'static str {
        match self {
            ErrorType::Required => "Required value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Forbidden => "Forbidden",
        }
    }
}

/// One validation error: the field, what is wrong with it, the value found and a detail.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// The field path, as the apiserver prints it: `webhooks[0].failurePolicy`.
    pub field: String,
    pub kind: ErrorType,
    /// The value found; printed for Invalid, NotSupported and Duplicate errors.
    pub value: Option<Value>,
    pub detail: String,
}

impl FieldError {
    fn new(field: &str, kind: ErrorType, value: Option<Value>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.to_string(),
            kind,
            value,
            detail: detail.into(),
        }
    }

    fn required(field: &str, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorType::Required, None, detail)
    }

    fn invalid(field: &str, value: Value, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorType::Invalid, Some(value), detail)
    }

    fn forbidden(field: &str, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorType::Forbidden, None, detail)
    }

    fn not_supported(field: &str, value: &str, supported: &[&str]) -> Self {
        let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
        let detail = if quoted.is_empty() {
            String::new()
        } else {
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(
            field,
            ErrorType::NotSupported,
            Some(Value::String(value.into())),
            detail,
        )
    }

    /// The reason of the Status cause this error becomes (`details.causes[].reason`).
    pub fn reason(&self) -> &'static str {
        match self.kind {
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Forbidden => "FieldValueForbidden",
        }
    }

    /// The message without the field, as in a Status cause (`field.Error.ErrorBody`).
    pub fn body(&self) -> String {
        let mut s = match (self.kind, &self.value) {
            (ErrorType::Required | ErrorType::Forbidden, _) | (_, None) => {
                self.kind.label().to_string()
            }
            (_, Some(value)) => format!("{}: {}", self.kind.label(), go_value(&self.field, value)),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// A string as Go's `%q` prints it.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A value as the apiserver prints it in an error: the Go value's `%v` or `%#v`, whose form
/// depends on the Go type, which the field determines.
fn go_value(field: &str, value: &Value) -> String {
    match value {
        Value::Null if field.ends_with("metadata.labels") => "map[string]string(nil)".into(),
        Value::Null => "null".into(),
        Value::String(s) => go_quote(s),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::Array(items) => {
            let element = if field.ends_with(".operations") {
                "admissionregistration.OperationType"
            } else {
                "string"
            };
            let shown: Vec<String> = items
                .iter()
                .map(|v| match v {
                    Value::String(s) => go_quote(s),
                    other => other.to_string(),
                })
                .collect();
            format!("[]{element}{{{}}}", shown.join(", "))
        }
        Value::Object(map) => {
            let shown: Vec<String> = map
                .iter()
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => go_quote(s),
                        other => other.to_string(),
                    };
                    format!("{}:{v}", go_quote(k))
                })
                .collect();
            format!("map[string]string{{{}}}", shown.join(", "))
        }
    }
}

/// `Kind.group "name" is invalid: <error>` or `... is invalid: [<e1>, <e2>]`, as
/// `errors.NewInvalid` words it. Identical messages are shown once.
pub fn invalid_message(qualified_kind: &str, name: &str, errors: &[FieldError]) -> String {
    let mut seen = BTreeSet::new();
    let messages: Vec<String> = errors
        .iter()
        .map(ToString::to_string)
        .filter(|m| seen.insert(m.clone()))
        .collect();
    let head = format!("{qualified_kind} {} is invalid", go_quote(name));
    match messages.len() {
        0 => head,
        1 => format!("{head}: {}", messages[0]),
        _ => format!("{head}: [{}]", messages.join(", ")),
    }
}

/// `Deployment.apps`, `Node`: the kind as the apiserver qualifies it in messages.
pub fn qualified_kind(api_version: &str, kind: &str) -> String {
    match api_version.split_once('/') {
        Some((group, _)) if !group.is_empty() => format!("{kind}.{group}"),
        _ => kind.to_string(),
    }
}

/// Validates an object of the given apiVersion/kind as the apiserver would on create/update,
/// AFTER defaulting. Unknown kinds: empty Vec.
///
/// A field of the wrong JSON type (`failurePolicy: 5`) is something the apiserver cannot even
/// decode; such errors are returned alone, each an Invalid error whose detail is the decoder's
/// message (see [`decode_error`] for the apiserver's 400 answer).
pub fn validate(object: &Value) -> Vec<FieldError> {
    let mut v = Validator::default();
    v.object(object);
    if v.type_errors.is_empty() {
        v.errors
    } else {
        v.type_errors.into_iter().map(|(e, _)| e).collect()
    }
}

/// The apiserver's answer (400 BadRequest) to an object it cannot decode because a known field
/// has the wrong JSON type, e.g. `ValidatingWebhookConfiguration in version "v1" cannot be
/// handled as a ValidatingWebhookConfiguration: json: cannot unmarshal number into Go struct
/// field ValidatingWebhook.webhooks.failurePolicy of type v1.FailurePolicyType`. None when the
/// object decodes.
pub fn decode_error(object: &Value) -> Option<String> {
    let mut v = Validator::default();
    v.object(object);
    let (_, message) = v.type_errors.into_iter().next()?;
    let kind = object["kind"].as_str().unwrap_or_default();
    let version = object["apiVersion"]
        .as_str()
        .map(|a| a.rsplit('/').next().unwrap_or(a))
        .unwrap_or_default();
    Some(format!(
        "{kind} in version {} cannot be handled as a {kind}: {message}",
        go_quote(version)
    ))
}

// ---- names and labels (k8s.io/apimachinery/pkg/util/validation) ----

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn is_dns1123_label_text(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !s.split('.').all(is_dns1123_label_text) {
        errs.push(DNS1123_SUBDOMAIN_MSG.into());
    }
    errs
}

fn is_dns1035_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len_error(63));
    }
    let ok = is_dns1123_label_text(s) && s.as_bytes()[0].is_ascii_lowercase();
    if !ok {
        errs.push(DNS1035_LABEL_MSG.into());
    }
    errs
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// `validation.IsQualifiedName`: label keys, taint keys.
fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".into());
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_error(63)));
    }
    if !is_qualified_name_part(name) {
        errs.push(format!("name part {QUALIFIED_NAME_MSG}"));
    }
    errs
}

fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errs.push(LABEL_VALUE_MSG.into());
    }
    errs
}

fn is_valid_port_num(port: i64) -> bool {
    (1..=65535).contains(&port)
}

// ---- the walk ----

/// Where the walk is: the field path as validation prints it, and the decoder's view of it
/// (innermost Go struct, dotted JSON path without indexes).
#[derive(Clone)]
struct Loc {
    field: String,
    json: String,
    go_struct: &'static str,
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}.{b}")
    }
}

impl Loc {
    fn root(go_struct: &'static str) -> Self {
        Loc {
            field: String::new(),
            json: String::new(),
            go_struct,
        }
    }

    fn key(&self, key: &str) -> Self {
        Loc {
            field: join(&self.field, key),
            json: join(&self.json, key),
            go_struct: self.go_struct,
        }
    }

    fn index(&self, i: usize) -> Self {
        Loc {
            field: format!("{}[{i}]", self.field),
            json: self.json.clone(),
            go_struct: self.go_struct,
        }
    }

    /// Inside an object decoded into the Go struct `go_struct`.
    fn inside(&self, go_struct: &'static str) -> Self {
        Loc {
            go_struct,
            ..self.clone()
        }
    }
}

/// The JSON types the decoder expects.
#[derive(Clone, Copy)]
enum Want {
    Str,
    Bool,
    Int32,
    Array,
    Object,
}

fn json_kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

#[derive(Default)]
struct Validator {
    errors: Vec<FieldError>,
    /// Fields the decoder would refuse, with the decoder's message.
    type_errors: Vec<(FieldError, String)>,
}

impl Validator {
    fn push(&mut self, e: FieldError) {
        self.errors.push(e);
    }

    /// Checks a field's JSON type; `null` is always accepted (the field stays unset).
    fn typed<'v>(
        &mut self,
        value: Option<&'v Value>,
        loc: &Loc,
        want: Want,
        go_type: &str,
    ) -> Option<&'v Value> {
        let value = value?;
        let fits = match (want, value) {
            (_, Value::Null) => return None,
            (Want::Str, Value::String(_))
            | (Want::Bool, Value::Bool(_))
            | (Want::Array, Value::Array(_))
            | (Want::Object, Value::Object(_)) => true,
            (Want::Int32, Value::Number(n)) => {
                if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) {
                    true
                } else {
                    let message = format!(
                        "json: cannot unmarshal number {n} into Go struct field {}.{} of type {go_type}",
                        loc.go_struct, loc.json
                    );
                    self.type_error(loc, value, message);
                    return None;
                }
            }
            _ => false,
        };
        if fits {
            return Some(value);
        }
        let message = format!(
            "json: cannot unmarshal {} into Go struct field {}.{} of type {go_type}",
            json_kind(value),
            loc.go_struct,
            loc.json
        );
        self.type_error(loc, value, message);
        None
    }

    fn type_error(&mut self, loc: &Loc, value: &Value, message: String) {
        let error = FieldError::invalid(&loc.field, value.clone(), message.clone());
        self.type_errors.push((error, message));
    }

    fn string(&mut self, obj: &Map<String, Value>, loc: &Loc, key: &str) -> Option<String> {
        self.typed_string(obj, loc, key, "string")
    }

    fn typed_string(
        &mut self,
        obj: &Map<String, Value>,
        loc: &Loc,
        key: &str,
        go_type: &str,
    ) -> Option<String> {
        self.typed(obj.get(key), &loc.key(key), Want::Str, go_type)
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// A list of strings; None when absent or null.
    fn strings(
        &mut self,
        obj: &Map<String, Value>,
        loc: &Loc,
        key: &str,
        go_element: &str,
    ) -> Option<Vec<String>> {
        let loc = loc.key(key);
        let items = self
            .typed(obj.get(key), &loc, Want::Array, &format!("[]{go_element}"))?
            .as_array()?;
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::Null => out.push(String::new()),
                Value::String(s) => out.push(s.clone()),
                other => {
                    self.typed(Some(other), &loc.index(i), Want::Str, go_element);
                }
            }
        }
        Some(out)
    }

    /// A list of objects decoded into `go_struct`; null elements decode as empty objects.
    fn objects(
        &mut self,
        obj: &Map<String, Value>,
        loc: &Loc,
        key: &str,
        go_struct: &'static str,
    ) -> Vec<(Loc, Map<String, Value>)> {
        let loc = loc.key(key);
        let Some(items) = self
            .typed(
                obj.get(key),
                &loc,
                Want::Array,
                &format!("[]v1.{go_struct}"),
            )
            .and_then(Value::as_array)
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = loc.index(i);
            match item {
                Value::Null => out.push((at.inside(go_struct), Map::new())),
                Value::Object(m) => out.push((at.inside(go_struct), m.clone())),
                other => {
                    self.typed(Some(other), &at, Want::Object, &format!("v1.{go_struct}"));
                }
            }
        }
        out
    }

    /// A nested object decoded into `go_struct`; None when absent, null or mistyped.
    fn object_at(
        &mut self,
        obj: &Map<String, Value>,
        loc: &Loc,
        key: &str,
        go_struct: &'static str,
    ) -> Option<(Loc, Map<String, Value>)> {
        let at = loc.key(key);
        let m = self
            .typed(obj.get(key), &at, Want::Object, &format!("v1.{go_struct}"))?
            .as_object()?
            .clone();
        Some((at.inside(go_struct), m))
    }

    fn int32(&mut self, obj: &Map<String, Value>, loc: &Loc, key: &str) -> Option<i64> {
        self.typed(obj.get(key), &loc.key(key), Want::Int32, "int32")
            .and_then(Value::as_i64)
    }

    fn string_map(
        &mut self,
        obj: &Map<String, Value>,
        loc: &Loc,
        key: &str,
    ) -> Option<BTreeMap<String, String>> {
        let at = loc.key(key);
        let m = self
            .typed(obj.get(key), &at, Want::Object, "map[string]string")?
            .as_object()?;
        let mut out = BTreeMap::new();
        for (k, v) in m {
            match v {
                Value::Null => {
                    out.insert(k.clone(), String::new());
                }
                Value::String(s) => {
                    out.insert(k.clone(), s.clone());
                }
                other => {
                    self.typed(Some(other), &at, Want::Str, "string");
                }
            }
        }
        Some(out)
    }

    fn object(&mut self, object: &Value) {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let Some(obj) = object.as_object() else {
            return;
        };
        match (api_version, kind) {
            ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => {
                self.webhook_configuration(obj, false)
            }
            ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration") => {
                self.webhook_configuration(obj, true)
            }
            ("v1", "Node") => self.node(obj),
            ("apps/v1", "Deployment") => self.deployment(obj),
            _ => {}
        }
    }

    /// `ValidateObjectMeta` with `NameIsDNSSubdomain`: the name.
    fn metadata(&mut self, obj: &Map<String, Value>, root: &Loc) {
        let meta = self.object_at(obj, root, "metadata", "ObjectMeta");
        let loc = root.key("metadata").inside("ObjectMeta");
        let meta = meta.map(|(_, m)| m).unwrap_or_default();
        let name = self.string(&meta, &loc, "name").unwrap_or_default();
        let field = loc.key("name").field;
        if name.is_empty() {
            self.push(FieldError::required(
                &field,
                "name or generateName is required",
            ));
        } else {
            for msg in is_dns1123_subdomain(&name) {
                self.push(FieldError::invalid(
                    &field,
                    Value::String(name.clone()),
                    msg,
                ));
            }
        }
    }

    // ---- admissionregistration.k8s.io/v1 ----

    fn webhook_configuration(&mut self, obj: &Map<String, Value>, mutating: bool) {
        let (configuration, webhook) = if mutating {
            ("MutatingWebhookConfiguration", "MutatingWebhook")
        } else {
            ("ValidatingWebhookConfiguration", "ValidatingWebhook")
        };
        let root = Loc::root(configuration);
        self.metadata(obj, &root);
        let mut names = BTreeSet::new();
        for (loc, hook) in self.objects(obj, &root, "webhooks", webhook) {
            self.webhook(&hook, &loc, mutating);
            self.admission_review_versions(&hook, &loc);
            let name = hook.get("name").and_then(Value::as_str).unwrap_or_default();
            if !name.is_empty() && !names.insert(name.to_string()) {
                self.push(FieldError::new(
                    &loc.key("name").field,
                    ErrorType::Duplicate,
                    Some(Value::String(name.into())),
                    "",
                ));
            }
        }
    }

    fn webhook(&mut self, hook: &Map<String, Value>, loc: &Loc, mutating: bool) {
        // The name must be fully qualified (utilvalidation.IsFullyQualifiedName).
        let name = self.string(hook, loc, "name").unwrap_or_default();
        let name_field = loc.key("name").field;
        if name.is_empty() {
            self.push(FieldError::required(&name_field, ""));
        } else {
            let errs = is_dns1123_subdomain(&name);
            if !errs.is_empty() {
                self.push(FieldError::invalid(
                    &name_field,
                    Value::String(name.clone()),
                    errs.join(","),
                ));
            } else if name.split('.').count() < 3 {
                self.push(FieldError::invalid(
                    &name_field,
                    Value::String(name.clone()),
                    "should be a domain with at least three segments separated by dots",
                ));
            }
        }
        for (rule_loc, rule) in self.objects(hook, loc, "rules", "RuleWithOperations") {
            self.rule(&rule, &rule_loc);
        }
        let enums: [(&str, &str, &[&str]); 2] = [
            ("failurePolicy", "v1.FailurePolicyType", &["Fail", "Ignore"]),
            (
                "matchPolicy",
                "v1.MatchPolicyType",
                &["Equivalent", "Exact"],
            ),
        ];
        for (key, go_type, supported) in enums {
            if let Some(value) = self.typed_string(hook, loc, key, go_type)
                && !supported.contains(&value.as_str())
            {
                self.push(FieldError::not_supported(
                    &loc.key(key).field,
                    &value,
                    supported,
                ));
            }
        }
        const NO_SIDE_EFFECTS: &[&str] = &["None", "NoneOnDryRun"];
        match self.typed_string(hook, loc, "sideEffects", "v1.SideEffectClass") {
            None => self.push(FieldError::required(
                &loc.key("sideEffects").field,
                format!("must specify one of {}", NO_SIDE_EFFECTS.join(", ")),
            )),
            Some(value) if !NO_SIDE_EFFECTS.contains(&value.as_str()) => {
                self.push(FieldError::not_supported(
                    &loc.key("sideEffects").field,
                    &value,
                    NO_SIDE_EFFECTS,
                ));
            }
            Some(_) => {}
        }
        if let Some(timeout) = self.int32(hook, loc, "timeoutSeconds")
            && !(1..=30).contains(&timeout)
        {
            self.push(FieldError::invalid(
                &loc.key("timeoutSeconds").field,
                Value::from(timeout),
                "the timeout value must be between 1 and 30 seconds",
            ));
        }
        for key in ["namespaceSelector", "objectSelector"] {
            if let Some((selector_loc, selector)) = self.object_at(hook, loc, key, "LabelSelector")
            {
                self.label_selector(&selector, &selector_loc);
            }
        }
        if mutating
            && let Some(value) =
                self.typed_string(hook, loc, "reinvocationPolicy", "v1.ReinvocationPolicyType")
        {
            let supported = &["IfNeeded", "Never"];
            if !supported.contains(&value.as_str()) {
                self.push(FieldError::not_supported(
                    &loc.key("reinvocationPolicy").field,
                    &value,
                    supported,
                ));
            }
        }
        let client_config = self.object_at(hook, loc, "clientConfig", "WebhookClientConfig");
        let (cc_loc, cc) =
            client_config.unwrap_or_else(|| (loc.key("clientConfig"), Map::default()));
        let url = self.string(&cc, &cc_loc, "url");
        let service = self.object_at(&cc, &cc_loc, "service", "ServiceReference");
        match (url, service) {
            (Some(url), None) => {
                for e in validate_webhook_url(&cc_loc.key("url").field, &url) {
                    self.push(e);
                }
            }
            (None, Some((service_loc, service))) => self.service(&service, &service_loc),
            _ => self.push(FieldError::required(
                &cc_loc.field,
                "exactly one of url or service is required",
            )),
        }
        // matchConditions (CEL expressions) are not checked here.
        self.typed(
            hook.get("matchConditions"),
            &loc.key("matchConditions"),
            Want::Array,
            "[]v1.MatchCondition",
        );
    }

    /// `ValidateWebhookService`, called by the apiserver with name and namespace swapped: a
    /// missing name is reported on `namespace` and a missing namespace on `name`.
    fn service(&mut self, service: &Map<String, Value>, loc: &Loc) {
        let name = self.string(service, loc, "name").unwrap_or_default();
        let namespace = self.string(service, loc, "namespace").unwrap_or_default();
        let port = self.int32(service, loc, "port");
        let path = self.string(service, loc, "path");
        if namespace.is_empty() {
            self.push(FieldError::required(&loc.key("name").field, ""));
        }
        if name.is_empty() {
            self.push(FieldError::required(&loc.key("namespace").field, ""));
        }
        // The port defaults to 443; an unset port here is the zero value.
        let set = service.get("port").is_some_and(|p| !p.is_null());
        let port = port.unwrap_or(if set { 0 } else { 443 });
        if !is_valid_port_num(port) {
            self.push(FieldError::invalid(
                &loc.key("port").field,
                Value::from(port),
                "port is not valid: must be between 1 and 65535, inclusive",
            ));
        }
        let Some(path) = path else {
            return;
        };
        let path_field = loc.key("path").field;
        if path == "/" || path.is_empty() {
            return;
        }
        if path == "//" {
            self.push(FieldError::invalid(
                &path_field,
                Value::String(path),
                "segment[0] may not be empty",
            ));
            return;
        }
        if !path.starts_with('/') {
            self.push(FieldError::invalid(
                &path_field,
                Value::String(path.clone()),
                "must start with a '/'",
            ));
        }
        // As the apiserver does, the first character is dropped whatever it is.
        let mut check = match path.strip_prefix('/') {
            Some(rest) => rest,
            None => &path[path.chars().next().map_or(0, char::len_utf8)..],
        };
        if let Some(stripped) = check.strip_suffix('/') {
            check = stripped;
        }
        for (i, step) in check.split('/').enumerate() {
            if step.is_empty() {
                self.push(FieldError::invalid(
                    &path_field,
                    Value::String(path.clone()),
                    format!("segment[{i}] may not be empty"),
                ));
                continue;
            }
            for failure in is_dns1123_subdomain(step) {
                self.push(FieldError::invalid(
                    &path_field,
                    Value::String(path.clone()),
                    format!("segment[{i}]: {failure}"),
                ));
            }
        }
    }

    /// `validateRuleWithOperations` and `validateRule`.
    fn rule(&mut self, rule: &Map<String, Value>, loc: &Loc) {
        const OPERATIONS: &[&str] = &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
        let operations = self
            .strings(rule, loc, "operations", "v1.OperationType")
            .unwrap_or_default();
        let ops_field = loc.key("operations").field;
        if operations.is_empty() {
            self.push(FieldError::required(&ops_field, ""));
        }
        if operations.len() > 1 && operations.iter().any(|o| o == "*") {
            self.push(FieldError::invalid(
                &ops_field,
                Value::from(operations.clone()),
                "if '*' is present, must not specify other operations",
            ));
        }
        for (i, op) in operations.iter().enumerate() {
            if !OPERATIONS.contains(&op.as_str()) {
                self.push(FieldError::not_supported(
                    &format!("{ops_field}[{i}]"),
                    op,
                    OPERATIONS,
                ));
            }
        }
        let groups = self
            .strings(rule, loc, "apiGroups", "string")
            .unwrap_or_default();
        let groups_field = loc.key("apiGroups").field;
        if groups.is_empty() {
            self.push(FieldError::required(&groups_field, ""));
        }
        if groups.len() > 1 && groups.iter().any(|g| g == "*") {
            self.push(FieldError::invalid(
                &groups_field,
                Value::from(groups.clone()),
                "if '*' is present, must not specify other API groups",
            ));
        }
        let versions = self
            .strings(rule, loc, "apiVersions", "string")
            .unwrap_or_default();
        let versions_field = loc.key("apiVersions").field;
        if versions.is_empty() {
            self.push(FieldError::required(&versions_field, ""));
        }
        if versions.len() > 1 && versions.iter().any(|v| v == "*") {
            self.push(FieldError::invalid(
                &versions_field,
                Value::from(versions.clone()),
                "if '*' is present, must not specify other API versions",
            ));
        }
        for (i, version) in versions.iter().enumerate() {
            if version.is_empty() {
                self.push(FieldError::required(&format!("{versions_field}[{i}]"), ""));
            }
        }
        let resources = self
            .strings(rule, loc, "resources", "string")
            .unwrap_or_default();
        self.resources(&resources, &loc.key("resources").field);
        if let Some(scope) = self.typed_string(rule, loc, "scope", "v1.ScopeType") {
            let supported = &["*", "Cluster", "Namespaced"];
            if !supported.contains(&scope.as_str()) {
                self.push(FieldError::not_supported(
                    &loc.key("scope").field,
                    &scope,
                    supported,
                ));
            }
        }
    }

    /// `validateResources` (subresources allowed).
    fn resources(&mut self, resources: &[String], field: &str) {
        if resources.is_empty() {
            self.push(FieldError::required(field, ""));
        }
        let mut with_wildcard_sub = BTreeSet::new();
        let mut sub_with_wildcard_res = BTreeSet::new();
        let mut double_wildcard = false;
        let mut single_wildcard = false;
        let mut without_sub = false;
        for (i, res_sub) in resources.iter().enumerate() {
            let at = format!("{field}[{i}]");
            if res_sub.is_empty() {
                self.push(FieldError::required(&at, ""));
                continue;
            }
            if res_sub == "*/*" {
                double_wildcard = true;
            }
            if res_sub == "*" {
                single_wildcard = true;
            }
            let Some((res, sub)) = res_sub.split_once('/') else {
                without_sub = res_sub != "*";
                continue;
            };
            if with_wildcard_sub.contains(res) {
                self.push(FieldError::invalid(
                    &at,
                    Value::String(res_sub.clone()),
                    format!("if '{res}/*' is present, must not specify {res_sub}"),
                ));
            }
            if sub_with_wildcard_res.contains(sub) {
                self.push(FieldError::invalid(
                    &at,
                    Value::String(res_sub.clone()),
                    format!("if '*/{sub}' is present, must not specify {res_sub}"),
                ));
            }
            if sub == "*" {
                with_wildcard_sub.insert(res.to_string());
            }
            if res == "*" {
                sub_with_wildcard_res.insert(sub.to_string());
            }
        }
        if resources.len() > 1 && double_wildcard {
            self.push(FieldError::invalid(
                field,
                Value::from(resources.to_vec()),
                "if '*/*' is present, must not specify other resources",
            ));
        }
        if single_wildcard && without_sub {
            self.push(FieldError::invalid(
                field,
                Value::from(resources.to_vec()),
                "if '*' is present, must not specify other resources without subresources",
            ));
        }
    }

    fn admission_review_versions(&mut self, hook: &Map<String, Value>, loc: &Loc) {
        const ACCEPTED: &[&str] = &["v1", "v1beta1"];
        let field = loc.key("admissionReviewVersions").field;
        let versions = self
            .strings(hook, loc, "admissionReviewVersions", "string")
            .unwrap_or_default();
        if versions.is_empty() {
            self.push(FieldError::required(
                &field,
                format!("must specify one of {}", ACCEPTED.join(", ")),
            ));
            return;
        }
        let mut seen = BTreeSet::new();
        let mut accepted = false;
        for (i, v) in versions.iter().enumerate() {
            let at = format!("{field}[{i}]");
            if !seen.insert(v.clone()) {
                self.push(FieldError::invalid(
                    &at,
                    Value::String(v.clone()),
                    "duplicate version",
                ));
                continue;
            }
            for msg in is_dns1035_label(v) {
                self.push(FieldError::invalid(&at, Value::String(v.clone()), msg));
            }
            accepted |= ACCEPTED.contains(&v.as_str());
        }
        if !accepted {
            self.push(FieldError::invalid(
                &field,
                Value::from(versions),
                format!("must include at least one of {}", ACCEPTED.join(", ")),
            ));
        }
    }

    /// `metav1validation.ValidateLabelSelector`.
    fn label_selector(&mut self, selector: &Map<String, Value>, loc: &Loc) {
        if let Some(labels) = self.string_map(selector, loc, "matchLabels") {
            self.labels(&labels, &loc.key("matchLabels").field);
        }
        for (expr_loc, expr) in self.objects(
            selector,
            loc,
            "matchExpressions",
            "LabelSelectorRequirement",
        ) {
            let operator = self
                .typed_string(&expr, &expr_loc, "operator", "v1.LabelSelectorOperator")
                .unwrap_or_default();
            let key = self.string(&expr, &expr_loc, "key").unwrap_or_default();
            let values = self
                .strings(&expr, &expr_loc, "values", "string")
                .unwrap_or_default();
            let values_field = expr_loc.key("values").field;
            match operator.as_str() {
                "In" | "NotIn" => {
                    if values.is_empty() {
                        self.push(FieldError::required(
                            &values_field,
                            "must be specified when `operator` is 'In' or 'NotIn'",
                        ));
                    }
                }
                "Exists" | "DoesNotExist" => {
                    if !values.is_empty() {
                        self.push(FieldError::forbidden(
                            &values_field,
                            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                        ));
                    }
                }
                _ => self.push(FieldError::invalid(
                    &expr_loc.key("operator").field,
                    Value::String(operator.clone()),
                    "not a valid selector operator",
                )),
            }
            let key_field = expr_loc.key("key").field;
            for msg in is_qualified_name(&key) {
                self.push(FieldError::invalid(
                    &key_field,
                    Value::String(key.clone()),
                    msg,
                ));
            }
            for (i, value) in values.iter().enumerate() {
                for msg in is_valid_label_value(value) {
                    self.push(FieldError::invalid(
                        &format!("{values_field}[{i}]"),
                        Value::String(value.clone()),
                        msg,
                    ));
                }
            }
        }
    }

    /// `ValidateLabels`: keys are qualified names, values label values.
    fn labels(&mut self, labels: &BTreeMap<String, String>, field: &str) {
        for (k, v) in labels {
            for msg in is_qualified_name(k) {
                self.push(FieldError::invalid(field, Value::String(k.clone()), msg));
            }
            for msg in is_valid_label_value(v) {
                self.push(FieldError::invalid(field, Value::String(v.clone()), msg));
            }
        }
    }

    // ---- core/v1 Node ----

    fn node(&mut self, obj: &Map<String, Value>) {
        let root = Loc::root("Node");
        self.metadata(obj, &root);
        let Some((spec_loc, spec)) = self.object_at(obj, &root, "spec", "NodeSpec") else {
            return;
        };
        self.typed(
            spec.get("unschedulable"),
            &spec_loc.key("unschedulable"),
            Want::Bool,
            "bool",
        );
        // The apiserver reports taints under metadata.taints.
        let taints = self.objects(&spec, &spec_loc, "taints", "Taint");
        for (i, (taint_loc, taint)) in taints.into_iter().enumerate() {
            let shown = format!("metadata.taints[{i}]");
            let key = self.string(&taint, &taint_loc, "key").unwrap_or_default();
            let value = self.string(&taint, &taint_loc, "value").unwrap_or_default();
            let effect = self
                .typed_string(&taint, &taint_loc, "effect", "v1.TaintEffect")
                .unwrap_or_default();
            for msg in is_qualified_name(&key) {
                self.push(FieldError::invalid(
                    &format!("{shown}.key"),
                    Value::String(key.clone()),
                    msg,
                ));
            }
            let errs = is_valid_label_value(&value);
            if !errs.is_empty() {
                self.push(FieldError::invalid(
                    &format!("{shown}.value"),
                    Value::String(value.clone()),
                    errs.join(";"),
                ));
            }
            let effect_field = format!("{shown}.effect");
            if effect.is_empty() {
                self.push(FieldError::required(&effect_field, ""));
            } else if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect.as_str()) {
                self.push(FieldError::not_supported(
                    &effect_field,
                    &effect,
                    &["NoSchedule", "PreferNoSchedule", "NoExecute"],
                ));
            }
        }
    }

    // ---- apps/v1 Deployment ----

    fn deployment(&mut self, obj: &Map<String, Value>) {
        let root = Loc::root("Deployment");
        self.metadata(obj, &root);
        let (spec_loc, spec) = self
            .object_at(obj, &root, "spec", "DeploymentSpec")
            .unwrap_or_else(|| (root.key("spec").inside("DeploymentSpec"), Map::new()));
        if let Some(replicas) = self.int32(&spec, &spec_loc, "replicas")
            && replicas < 0
        {
            self.push(FieldError::invalid(
                &spec_loc.key("replicas").field,
                Value::from(replicas),
                "must be greater than or equal to 0",
            ));
        }
        let selector = self.object_at(&spec, &spec_loc, "selector", "LabelSelector");
        let compiled = match &selector {
            None => {
                self.push(FieldError::required(&spec_loc.key("selector").field, ""));
                None
            }
            Some((selector_loc, selector)) => {
                self.label_selector(selector, selector_loc);
                crate::selector::LabelSelector::from_json(&Value::Object(selector.clone())).ok()
            }
        };
        let template = self.object_at(&spec, &spec_loc, "template", "PodTemplateSpec");
        let (template_loc, template) = template.unwrap_or_else(|| {
            (
                spec_loc.key("template").inside("PodTemplateSpec"),
                Map::new(),
            )
        });
        let (meta_loc, meta) = self
            .object_at(&template, &template_loc, "metadata", "ObjectMeta")
            .unwrap_or_else(|| {
                (
                    template_loc.key("metadata").inside("ObjectMeta"),
                    Map::new(),
                )
            });
        let labels = self.string_map(&meta, &meta_loc, "labels");
        // A missing selector selects nothing; an empty one everything.
        let matches = match (&selector, &compiled) {
            (None, _) => Some(false),
            (Some(_), Some(s)) if s.is_empty() => Some(true),
            (Some(_), Some(s)) => Some(s.matches(&labels.clone().unwrap_or_default())),
            (Some(_), None) => None,
        };
        if matches == Some(false) {
            let shown = match &labels {
                Some(l) => Value::Object(
                    l.iter()
                        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                        .collect(),
                ),
                None => Value::Null,
            };
            self.push(FieldError::invalid(
                &meta_loc.key("labels").field,
                shown,
                "`selector` does not match template `labels`",
            ));
        }
    }
}

/// `ValidateWebhookURL` with https required. The URL is split as Go's `url.Parse` splits it.
fn validate_webhook_url(field: &str, url: &str) -> Vec<FieldError> {
    const FORM: &str = "; desired format: https://host[/path]";
    let mut errs = Vec::new();
    let parsed = match go_parse_url(url) {
        Ok(p) => p,
        Err(e) => {
            errs.push(FieldError::required(
                field,
                format!("url must be a valid URL: {e}{FORM}"),
            ));
            return errs;
        }
    };
    if parsed.scheme != "https" {
        errs.push(FieldError::invalid(
            field,
            Value::String(parsed.scheme.clone()),
            format!("'https' is the only allowed URL scheme{FORM}"),
        ));
    }
    if parsed.host.is_empty() {
        errs.push(FieldError::invalid(
            field,
            Value::String(String::new()),
            format!("host must be specified{FORM}"),
        ));
    }
    if let Some(user) = parsed.user {
        errs.push(FieldError::invalid(
            field,
            Value::String(user),
            "user information is not permitted in the URL",
        ));
    }
    if !parsed.fragment.is_empty() {
        errs.push(FieldError::invalid(
            field,
            Value::String(parsed.fragment),
            "fragments are not permitted in the URL",
        ));
    }
    if !parsed.query.is_empty() {
        errs.push(FieldError::invalid(
            field,
            Value::String(parsed.query),
            "query parameters are not permitted in the URL",
        ));
    }
    errs
}

struct GoUrl {
    scheme: String,
    user: Option<String>,
    host: String,
    query: String,
    fragment: String,
}

/// The parts of a URL as Go's `url.Parse` finds them, with its commonest errors.
fn go_parse_url(raw: &str) -> Result<GoUrl, String> {
    let fail = |why: &str| Err(format!("parse {}: {why}", go_quote(raw)));
    if raw.chars().any(|c| (c as u32) < 0x20 || c as u32 == 0x7f) {
        return fail("net/url: invalid control character in URL");
    }
    let (rest, fragment) = match raw.split_once('#') {
        Some((r, f)) => (r, f.to_string()),
        None => (raw, String::new()),
    };
    let (scheme, rest) = match rest.find(':') {
        Some(0) => return fail("missing protocol scheme"),
        Some(i)
            if rest[..i].starts_with(|c: char| c.is_ascii_alphabetic())
                && rest[..i]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            (rest[..i].to_ascii_lowercase(), &rest[i + 1..])
        }
        _ => (String::new(), rest),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, q.to_string()),
        None => (rest, String::new()),
    };
    let mut user = None;
    let mut host = String::new();
    if let Some(after) = rest.strip_prefix("//") {
        let authority = after.split('/').next().unwrap_or_default();
        let hostport = match authority.rsplit_once('@') {
            Some((u, h)) => {
                user = Some(u.to_string());
                h
            }
            None => authority,
        };
        if let Some((_, port)) = hostport.rsplit_once(':')
            && !hostport.ends_with(']')
            && !port.chars().all(|c| c.is_ascii_digit())
        {
            return fail(&format!(
                "invalid port {} after host",
                go_quote(&format!(":{port}"))
            ));
        }
        host = hostport.to_string();
    } else if scheme.is_empty() && rest.split('/').next().unwrap_or_default().contains(':') {
        return fail("first path segment in URL cannot contain colon");
    }
    Ok(GoUrl {
        scheme,
        user,
        host,
        query,
        fragment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vwc(webhooks: Value) -> Value {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "x"},
            "webhooks": webhooks,
        })
    }

    fn good_hook() -> Value {
        json!({
            "name": "a.b.c",
            "clientConfig": {"service": {"name": "svc", "namespace": "ns", "path": "/validate", "port": 443}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "*"}],
            "failurePolicy": "Fail",
            "matchPolicy": "Equivalent",
            "sideEffects": "None",
            "timeoutSeconds": 10,
            "namespaceSelector": {},
            "objectSelector": {},
            "admissionReviewVersions": ["v1"],
        })
    }

    fn with(patch: Value) -> Value {
        let mut hook = good_hook();
        json_patch::merge(&mut hook, &patch);
        hook
    }

    fn messages(object: &Value) -> Vec<String> {
        validate(object).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn each_webhook_rule_reads_as_the_apiserver_words_it() {
        let bad_name =
            format!("webhooks[0].name: Invalid value: \"Bad.Name.io\": {DNS1123_SUBDOMAIN_MSG}");
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (with(json!({})), vec![]),
            (
                with(json!({"failurePolicy": "Bogus"})),
                vec![
                    r#"webhooks[0].failurePolicy: Unsupported value: "Bogus": supported values: "Fail", "Ignore""#,
                ],
            ),
            (
                with(json!({"matchPolicy": "Loose"})),
                vec![
                    r#"webhooks[0].matchPolicy: Unsupported value: "Loose": supported values: "Equivalent", "Exact""#,
                ],
            ),
            (
                with(json!({"name": null})),
                vec!["webhooks[0].name: Required value"],
            ),
            (
                with(json!({"name": "x"})),
                vec![
                    r#"webhooks[0].name: Invalid value: "x": should be a domain with at least three segments separated by dots"#,
                ],
            ),
            (with(json!({"name": "Bad.Name.io"})), vec![&bad_name]),
            (
                with(json!({"sideEffects": null})),
                vec![
                    "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
                ],
            ),
            (
                with(json!({"sideEffects": "Some"})),
                vec![
                    r#"webhooks[0].sideEffects: Unsupported value: "Some": supported values: "None", "NoneOnDryRun""#,
                ],
            ),
            (
                with(json!({"sideEffects": "Unknown"})),
                vec![
                    r#"webhooks[0].sideEffects: Unsupported value: "Unknown": supported values: "None", "NoneOnDryRun""#,
                ],
            ),
            (
                with(json!({"timeoutSeconds": 31})),
                vec![
                    "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds",
                ],
            ),
            (
                with(json!({"timeoutSeconds": 0})),
                vec![
                    "webhooks[0].timeoutSeconds: Invalid value: 0: the timeout value must be between 1 and 30 seconds",
                ],
            ),
            (
                with(json!({"admissionReviewVersions": null})),
                vec![
                    "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1",
                ],
            ),
            (
                with(json!({"admissionReviewVersions": []})),
                vec![
                    "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1",
                ],
            ),
            (
                with(json!({"admissionReviewVersions": ["v2"]})),
                vec![
                    r#"webhooks[0].admissionReviewVersions: Invalid value: []string{"v2"}: must include at least one of v1, v1beta1"#,
                ],
            ),
            (
                with(json!({"admissionReviewVersions": ["v1", "v1"]})),
                vec![
                    r#"webhooks[0].admissionReviewVersions[1]: Invalid value: "v1": duplicate version"#,
                ],
            ),
            (
                with(json!({"clientConfig": {"service": null}})),
                vec![
                    "webhooks[0].clientConfig: Required value: exactly one of url or service is required",
                ],
            ),
            (
                with(json!({"clientConfig": {"url": "https://x.example.com/v"}})),
                vec![
                    "webhooks[0].clientConfig: Required value: exactly one of url or service is required",
                ],
            ),
            (
                with(
                    json!({"clientConfig": {"service": null, "url": "https://hooks.example.com:8443/validate"}}),
                ),
                vec![],
            ),
            (
                with(
                    json!({"clientConfig": {"service": null, "url": "http://hooks.example.com/v"}}),
                ),
                vec![
                    r#"webhooks[0].clientConfig.url: Invalid value: "http": 'https' is the only allowed URL scheme; desired format: https://host[/path]"#,
                ],
            ),
            (
                with(json!({"clientConfig": {"service": null, "url": "https:///v"}})),
                vec![
                    r#"webhooks[0].clientConfig.url: Invalid value: "": host must be specified; desired format: https://host[/path]"#,
                ],
            ),
            (
                with(
                    json!({"clientConfig": {"service": null, "url": "https://u:p@h.example.com/v?a=b#frag"}}),
                ),
                vec![
                    r#"webhooks[0].clientConfig.url: Invalid value: "u:p": user information is not permitted in the URL"#,
                    r#"webhooks[0].clientConfig.url: Invalid value: "frag": fragments are not permitted in the URL"#,
                    r#"webhooks[0].clientConfig.url: Invalid value: "a=b": query parameters are not permitted in the URL"#,
                ],
            ),
            (
                with(json!({"clientConfig": {"service": null, "url": ":nope"}})),
                vec![
                    r#"webhooks[0].clientConfig.url: Required value: url must be a valid URL: parse ":nope": missing protocol scheme; desired format: https://host[/path]"#,
                ],
            ),
            (
                with(json!({"clientConfig": {"service": {"name": null}}})),
                vec!["webhooks[0].clientConfig.service.namespace: Required value"],
            ),
            (
                with(json!({"clientConfig": {"service": {"namespace": ""}}})),
                vec!["webhooks[0].clientConfig.service.name: Required value"],
            ),
            (
                with(json!({"clientConfig": {"service": {"port": 70000}}})),
                vec![
                    "webhooks[0].clientConfig.service.port: Invalid value: 70000: port is not valid: must be between 1 and 65535, inclusive",
                ],
            ),
            (
                with(json!({"clientConfig": {"service": {"path": "validate"}}})),
                vec![
                    r#"webhooks[0].clientConfig.service.path: Invalid value: "validate": must start with a '/'"#,
                ],
            ),
            (
                with(json!({"clientConfig": {"service": {"path": "/a//b"}}})),
                vec![
                    r#"webhooks[0].clientConfig.service.path: Invalid value: "/a//b": segment[1] may not be empty"#,
                ],
            ),
            (
                with(
                    json!({"rules": [{"operations": ["CREATE", "PATCH"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]}),
                ),
                vec![
                    r#"webhooks[0].rules[0].operations[1]: Unsupported value: "PATCH": supported values: "*", "CONNECT", "CREATE", "DELETE", "UPDATE""#,
                ],
            ),
            (
                with(
                    json!({"rules": [{"operations": ["*", "CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]}),
                ),
                vec![
                    r#"webhooks[0].rules[0].operations: Invalid value: []admissionregistration.OperationType{"*", "CREATE"}: if '*' is present, must not specify other operations"#,
                ],
            ),
            (
                with(json!({"rules": [{}]})),
                vec![
                    "webhooks[0].rules[0].operations: Required value",
                    "webhooks[0].rules[0].apiGroups: Required value",
                    "webhooks[0].rules[0].apiVersions: Required value",
                    "webhooks[0].rules[0].resources: Required value",
                ],
            ),
            (
                with(
                    json!({"rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "Global"}]}),
                ),
                vec![
                    r#"webhooks[0].rules[0].scope: Unsupported value: "Global": supported values: "*", "Cluster", "Namespaced""#,
                ],
            ),
            (
                with(
                    json!({"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}),
                ),
                vec![
                    "webhooks[0].namespaceSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                ],
            ),
            (
                with(
                    json!({"objectSelector": {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}}),
                ),
                vec![
                    "webhooks[0].objectSelector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ],
            ),
            (
                with(
                    json!({"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]}}),
                ),
                vec![
                    r#"webhooks[0].namespaceSelector.matchExpressions[0].operator: Invalid value: "Equals": not a valid selector operator"#,
                ],
            ),
        ];
        for (hook, want) in cases {
            let got = messages(&vwc(json!([hook.clone()])));
            assert_eq!(got, want, "for {hook}");
        }
    }

    #[test]
    fn duplicate_names_and_metadata() {
        let got = messages(&vwc(json!([good_hook(), good_hook()])));
        assert_eq!(got, vec![r#"webhooks[1].name: Duplicate value: "a.b.c""#]);
        let mut object = vwc(json!([good_hook()]));
        object["metadata"] = json!({});
        assert_eq!(
            messages(&object),
            vec!["metadata.name: Required value: name or generateName is required"]
        );
    }

    #[test]
    fn a_null_webhook_is_an_empty_one() {
        let errors = validate(&vwc(json!([null])));
        let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            vec![
                "webhooks[0].name: Required value",
                "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
                "webhooks[0].clientConfig: Required value: exactly one of url or service is required",
                "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1",
            ]
        );
        assert_eq!(
            invalid_message(
                "ValidatingWebhookConfiguration.admissionregistration.k8s.io",
                "x",
                &errors
            ),
            "ValidatingWebhookConfiguration.admissionregistration.k8s.io \"x\" is invalid: [webhooks[0].name: Required value, webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun, webhooks[0].clientConfig: Required value: exactly one of url or service is required, webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1]"
        );
        assert_eq!(errors[0].reason(), "FieldValueRequired");
        assert_eq!(errors[0].body(), "Required value");
    }

    #[test]
    fn mutating_reinvocation_policy() {
        let mut object = vwc(json!([with(json!({"reinvocationPolicy": "Always"}))]));
        object["kind"] = json!("MutatingWebhookConfiguration");
        assert_eq!(
            messages(&object),
            vec![
                r#"webhooks[0].reinvocationPolicy: Unsupported value: "Always": supported values: "IfNeeded", "Never""#
            ]
        );
        // Validating configurations have no such field.
        object["kind"] = json!("ValidatingWebhookConfiguration");
        assert!(messages(&object).is_empty());
    }

    #[test]
    fn wrong_json_types_are_errors_not_panics() {
        let object = vwc(json!([with(json!({"failurePolicy": 5}))]));
        assert_eq!(
            messages(&object),
            vec![
                "webhooks[0].failurePolicy: Invalid value: 5: json: cannot unmarshal number into Go struct field ValidatingWebhook.webhooks.failurePolicy of type v1.FailurePolicyType"
            ]
        );
        assert_eq!(
            decode_error(&object).unwrap(),
            "ValidatingWebhookConfiguration in version \"v1\" cannot be handled as a ValidatingWebhookConfiguration: json: cannot unmarshal number into Go struct field ValidatingWebhook.webhooks.failurePolicy of type v1.FailurePolicyType"
        );
        assert_eq!(
            decode_error(&vwc(json!("x"))).unwrap(),
            "ValidatingWebhookConfiguration in version \"v1\" cannot be handled as a ValidatingWebhookConfiguration: json: cannot unmarshal string into Go struct field ValidatingWebhookConfiguration.webhooks of type []v1.ValidatingWebhook"
        );
        assert_eq!(decode_error(&vwc(json!([good_hook()]))), None);
        for odd in [
            json!("x"),
            json!(5),
            json!([1, "a", true, {"clientConfig": 3}]),
            json!([{"rules": "x"}]),
            json!([{"rules": [1, {"operations": "x", "resources": [1]}]}]),
            json!([{"namespaceSelector": {"matchLabels": 1, "matchExpressions": [1, {"values": "v"}]}}]),
            json!([{"clientConfig": {"service": {"port": "443", "path": 1}}}]),
            json!([{"timeoutSeconds": 1.5, "admissionReviewVersions": "v1"}]),
        ] {
            assert!(!validate(&vwc(odd.clone())).is_empty(), "for {odd}");
        }
        assert!(validate(&json!("not an object")).is_empty());
        assert!(validate(&json!({"apiVersion": "v1", "kind": "Node", "spec": 3})).len() == 1);
    }

    #[test]
    fn unknown_kinds_are_not_checked() {
        assert!(validate(&json!({"apiVersion": "v1", "kind": "ConfigMap", "data": 5})).is_empty());
    }

    /// OPA Gatekeeper's ValidatingWebhookConfiguration as its chart publishes it (v3.x), after
    /// the apiserver's defaults.
    #[test]
    fn gatekeeper_as_published_is_valid() {
        let object = json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "gatekeeper-validating-webhook-configuration", "labels": {"gatekeeper.sh/system": "yes"}},
            "webhooks": [
                {
                    "admissionReviewVersions": ["v1", "v1beta1"],
                    "clientConfig": {"service": {"name": "gatekeeper-webhook-service", "namespace": "gatekeeper-system", "path": "/v1/admit", "port": 443}},
                    "failurePolicy": "Ignore",
                    "matchPolicy": "Exact",
                    "name": "validation.gatekeeper.sh",
                    "namespaceSelector": {"matchExpressions": [
                        {"key": "admission.gatekeeper.sh/ignore", "operator": "DoesNotExist"},
                        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["gatekeeper-system"]}
                    ]},
                    "objectSelector": {},
                    "rules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"], "resources": ["*", "pods/ephemeralcontainers", "pods/exec", "pods/log", "pods/eviction", "pods/portforward", "pods/proxy", "pods/attach", "pods/binding", "deployments/scale", "replicasets/scale", "statefulsets/scale", "replicationcontrollers/scale", "services/proxy", "nodes/proxy", "services/status"], "scope": "*"}],
                    "sideEffects": "None",
                    "timeoutSeconds": 3
                },
                {
                    "admissionReviewVersions": ["v1", "v1beta1"],
                    "clientConfig": {"service": {"name": "gatekeeper-webhook-service", "namespace": "gatekeeper-system", "path": "/v1/admitlabel", "port": 443}},
                    "failurePolicy": "Fail",
                    "matchPolicy": "Exact",
                    "name": "check-ignore-label.gatekeeper.sh",
                    "namespaceSelector": {},
                    "objectSelector": {},
                    "rules": [{"apiGroups": [""], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"], "resources": ["namespaces"], "scope": "*"}],
                    "sideEffects": "None",
                    "timeoutSeconds": 3
                }
            ]
        });
        assert_eq!(validate(&object), vec![]);
    }

    /// The published manifests among the test fixtures (cert-manager, Gatekeeper, ingress-nginx,
    /// Istio, OPA) are all accepted, webhook configurations and Deployments alike.
    #[test]
    fn fixture_manifests_are_valid() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/manifests");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let shown = path.display().to_string();
            for manifest in crate::manifests::parse(&text, &shown).unwrap() {
                let errors = validate(&manifest.object);
                assert!(errors.is_empty(), "{shown}: {errors:?}");
                checked += 1;
            }
        }
        assert!(checked > 20, "{checked} objects");
    }

    #[test]
    fn node_taints() {
        let node = json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
            "spec": {"taints": [
                {"key": "a", "effect": "NoSchedule"},
                {"key": "b", "effect": "Sometimes"},
                {"key": "c"},
                {"key": "", "effect": "NoExecute"}
            ]}
        });
        assert_eq!(
            messages(&node),
            vec![
                r#"metadata.taints[1].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute""#,
                "metadata.taints[2].effect: Required value",
                r#"metadata.taints[3].key: Invalid value: "": name part must be non-empty"#,
                &format!(
                    r#"metadata.taints[3].key: Invalid value: "": name part {QUALIFIED_NAME_MSG}"#
                ),
            ]
        );
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": {"unschedulable": "yes"}});
        assert_eq!(
            decode_error(&node).unwrap(),
            "Node in version \"v1\" cannot be handled as a Node: json: cannot unmarshal string into Go struct field NodeSpec.spec.unschedulable of type bool"
        );
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": {"unschedulable": true}});
        assert!(validate(&node).is_empty());
    }

    #[test]
    fn deployment_selector_and_replicas() {
        let deployment = |spec: Value| json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"}, "spec": spec});
        let ok = deployment(json!({
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web", "tier": "front"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
        }));
        assert!(validate(&ok).is_empty());
        let bad = deployment(json!({
            "replicas": -1,
            "selector": {"matchLabels": {"app": "api"}},
            "template": {"metadata": {"labels": {"app": "web"}}}
        }));
        assert_eq!(
            messages(&bad),
            vec![
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                r#"spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`"#,
            ]
        );
        let no_selector = deployment(json!({"template": {"metadata": {"labels": {"app": "web"}}}}));
        assert_eq!(
            messages(&no_selector),
            vec![
                "spec.selector: Required value",
                r#"spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`"#,
            ]
        );
        assert_eq!(
            decode_error(&deployment(json!({"replicas": "3"}))).unwrap(),
            "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
        );
    }

    #[test]
    fn invalid_message_forms() {
        let one = FieldError::required("metadata.name", "name or generateName is required");
        assert_eq!(
            invalid_message("Node", "", std::slice::from_ref(&one)),
            "Node \"\" is invalid: metadata.name: Required value: name or generateName is required"
        );
        assert_eq!(
            invalid_message("Deployment.apps", "web", &[one.clone(), one.clone()]),
            "Deployment.apps \"web\" is invalid: metadata.name: Required value: name or generateName is required"
        );
        assert_eq!(invalid_message("Node", "n", &[]), "Node \"n\" is invalid");
        assert_eq!(
            qualified_kind(
                "admissionregistration.k8s.io/v1",
                "ValidatingWebhookConfiguration"
            ),
            "ValidatingWebhookConfiguration.admissionregistration.k8s.io"
        );
        assert_eq!(qualified_kind("v1", "Node"), "Node");
        let reasons: Vec<&str> = [
            ErrorType::Required,
            ErrorType::Invalid,
            ErrorType::NotSupported,
            ErrorType::Duplicate,
            ErrorType::Forbidden,
        ]
        .into_iter()
        .map(|kind| FieldError::new("f", kind, None, "").reason())
        .collect();
        assert_eq!(
            reasons,
            vec![
                "FieldValueRequired",
                "FieldValueInvalid",
                "FieldValueNotSupported",
                "FieldValueDuplicate",
                "FieldValueForbidden"
            ]
        );
    }
}
