//! The apiserver's error answers: a `Status` object with the reason and code real clients
//! (kubectl, kube-rs) decode and print.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

use super::kinds::Kind;
use super::store::StoreError;
use crate::validate::{FieldError, invalid_message};

/// An error answer, rendered as a `Status` body.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    pub details: Option<Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

/// Who asked to do what, as an authorizer sees a resource request.
#[derive(Clone, Copy, Debug)]
pub struct Access<'a> {
    pub user: &'a str,
    pub verb: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub subresource: &'a str,
}

fn details(kind: &Kind, name: &str) -> Value {
    let mut d = json!({"name": name, "kind": kind.plural});
    if !kind.group.is_empty() {
        d["group"] = json!(kind.group);
    }
    d
}

/// `ValidatingWebhookConfiguration.admissionregistration.k8s.io` or `Node`: the kind as
/// validation errors name it (a GroupKind).
pub fn qualified_kind(kind: &Kind) -> String {
    if kind.group.is_empty() {
        kind.kind.to_string()
    } else {
        format!("{}.{}", kind.kind, kind.group)
    }
}

/// The details of a 422: the kind (not the resource), the group when there is one, the causes.
fn invalid_details(kind: &Kind, name: &str, errors: &[FieldError]) -> Value {
    let mut d = json!({"name": name, "kind": kind.kind});
    if !kind.group.is_empty() {
        d["group"] = json!(kind.group);
    }
    if !errors.is_empty() {
        d["causes"] = errors
            .iter()
            .map(|e| json!({"reason": e.reason(), "message": e.body(), "field": e.field}))
            .collect();
    }
    d
}

/// `configmaps` or `validatingwebhookconfigurations.admissionregistration.k8s.io`, as the
/// apiserver names a resource in messages.
pub fn qualified(kind: &Kind) -> String {
    if kind.group.is_empty() {
        kind.plural.to_string()
    } else {
        format!("{}.{}", kind.plural, kind.group)
    }
}

impl ApiError {
    pub fn new(code: u16, reason: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason.into(),
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn not_found(kind: &Kind, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(kind)),
        )
        .with_details(details(kind, name))
    }

    /// RBAC refused the request, worded as the apiserver's authorization filter words it.
    pub fn forbidden_by_rbac(kind: &Kind, access: &Access<'_>) -> Self {
        Self::forbidden(
            access.user,
            &super::rbac::Request::Resource {
                verb: access.verb,
                group: kind.group,
                resource: kind.plural,
                subresource: access.subresource,
                namespace: access.namespace,
                name: access.name,
            },
        )
    }

    /// The authorizer refused `request` to `user`, in the apiserver's words:
    /// `nodes is forbidden: User "alice" cannot list resource "nodes" in API group "" at the
    /// cluster scope`, or `forbidden: User "alice" cannot get path "/metrics"`.
    pub fn forbidden(user: &str, request: &super::rbac::Request<'_>) -> Self {
        use super::rbac::Request;
        match request {
            Request::NonResource { verb, path } => Self::new(
                403,
                "Forbidden",
                format!("forbidden: User \"{user}\" cannot {verb} path \"{path}\""),
            )
            .with_details(json!({})),
            Request::Resource {
                verb,
                group,
                resource,
                subresource,
                namespace,
                name,
            } => {
                let mut shown = resource.to_string();
                if !subresource.is_empty() {
                    shown = format!("{shown}/{subresource}");
                }
                let scope = if namespace.is_empty() {
                    "at the cluster scope".to_string()
                } else {
                    format!("in the namespace \"{namespace}\"")
                };
                let why = format!(
                    "User \"{user}\" cannot {verb} resource \"{shown}\" in API group \"{group}\" {scope}"
                );
                let qualified = if group.is_empty() {
                    resource.to_string()
                } else {
                    format!("{resource}.{group}")
                };
                let message = if name.is_empty() {
                    format!("{qualified} is forbidden: {why}")
                } else {
                    format!("{qualified} \"{name}\" is forbidden: {why}")
                };
                let mut details = json!({"name": name, "kind": resource});
                if !group.is_empty() {
                    details["group"] = json!(group);
                }
                Self::new(403, "Forbidden", message).with_details(details)
            }
        }
    }

    pub fn already_exists(kind: &Kind, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(kind)),
        )
        .with_details(details(kind, name))
    }

    pub fn conflict(kind: &Kind, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                qualified(kind)
            ),
        )
        .with_details(details(kind, name))
    }

    pub fn modified(kind: &Kind, name: &str) -> Self {
        Self::conflict(
            kind,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// A 422 for one error given as text: `Deployment.apps "web" is invalid: <why>`.
    pub fn invalid(kind: &Kind, name: &str, why: &str) -> Self {
        Self::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {why}", qualified_kind(kind)),
        )
        .with_details(invalid_details(kind, name, &[]))
    }

    /// The apiserver's 422 for validation errors, as `errors.NewInvalid` builds it: the message
    /// lists the errors, `details.causes` has one cause per error.
    pub fn invalid_fields(kind: &Kind, name: &str, errors: &[FieldError]) -> Self {
        Self::new(
            422,
            "Invalid",
            invalid_message(&qualified_kind(kind), name, errors),
        )
        .with_details(invalid_details(kind, name, errors))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// The answer for a path nothing is served at.
    pub fn no_such_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    pub fn method_not_allowed(verb: &str, kind: &Kind) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!(
                "{verb} is not supported on resources of kind \"{}\"",
                qualified(kind)
            ),
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    pub fn from_store(kind: &Kind, error: StoreError) -> Self {
        match error {
            StoreError::AlreadyExists(_, name) => Self::already_exists(kind, &name),
            StoreError::NotFound(_, name) => Self::not_found(kind, &name),
            StoreError::Conflict(_, name) => Self::modified(kind, &name),
            StoreError::Invalid(why) => Self::new(422, "Invalid", why),
        }
    }

    /// The `Status` object.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            status["details"] = d.clone();
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = json_response(code, &self.status());
        // As the apiserver's response writer does for a Status with details.retryAfterSeconds.
        if let Some(seconds) = self
            .details
            .as_ref()
            .and_then(|d| d["retryAfterSeconds"].as_u64())
            .filter(|s| *s > 0)
        {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// A JSON answer with the content type clients expect.
pub fn json_response(code: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        code,
        [(http::header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::kinds::by_resource;

    #[test]
    fn not_found_reads_like_the_apiserver() {
        let vwc = by_resource(
            "admissionregistration.k8s.io",
            "v1",
            "validatingwebhookconfigurations",
        )
        .unwrap();
        let e = ApiError::not_found(vwc, "opa");
        assert_eq!(
            e.message,
            "validatingwebhookconfigurations.admissionregistration.k8s.io \"opa\" not found"
        );
        let status = e.status();
        assert_eq!(status["code"], 404);
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(status["details"]["group"], "admissionregistration.k8s.io");
    }
}
