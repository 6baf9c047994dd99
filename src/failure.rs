//! One reading of an apiserver's failure text, whatever wrote it: the message of a refused
//! write, a Warning event, a verification's answer. It returns what failed, typed, from the
//! wording of every Kubernetes minor since 1.9 (`failed calling admission webhook` until 1.12,
//! `failed calling webhook` since, `failed to call webhook:` since 1.22) and of Go before and
//! after 1.14 (unquoted and quoted URLs) and 1.20 (`tls: failed to verify certificate:`).
//! The catalogue it is tested against is tests/fixtures/apiserver-wording/cases.yaml.
//!
//! Nothing is dropped: text that matches no known wording is [`Cause::Unparsed`], and the
//! caller keeps the whole message either way.

/// Why a webhook call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallFailure {
    /// No answer within the webhook's timeout (`context deadline exceeded`,
    /// `Client.Timeout exceeded while awaiting headers`, `i/o timeout`, `request canceled`).
    Timeout,
    Refused,
    NoRoute,
    Dns,
    X509UnknownAuthority,
    X509Expired,
    /// The certificate is not valid for the name called (or only has a Common Name).
    X509Hostname,
    X509Other,
    /// The webhook's Service (or its port) does not exist.
    ServiceNotFound,
    /// The Service has no ready endpoints.
    NoEndpoints,
    /// The backend answered, but not with an AdmissionReview (or ConversionReview).
    BadResponse,
    /// The backend closed the connection.
    Eof,
    Other,
}

impl CallFailure {
    /// The name used in fixtures and JSON: `timeout`, `x509-unknown-authority`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            CallFailure::Timeout => "timeout",
            CallFailure::Refused => "refused",
            CallFailure::NoRoute => "no-route",
            CallFailure::Dns => "dns",
            CallFailure::X509UnknownAuthority => "x509-unknown-authority",
            CallFailure::X509Expired => "x509-expired",
            CallFailure::X509Hostname => "x509-hostname",
            CallFailure::X509Other => "x509-other",
            CallFailure::ServiceNotFound => "service-not-found",
            CallFailure::NoEndpoints => "no-endpoints",
            CallFailure::BadResponse => "bad-response",
            CallFailure::Eof => "eof",
            CallFailure::Other => "other",
        }
    }
}

/// What an apiserver's failure text says failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// An admission webhook (or, with `conversion`, a CRD's conversion webhook) could not be
    /// called: it did not answer, or not properly. `detail` is the text after the URL.
    WebhookCall {
        webhook: Option<String>,
        /// The kind being converted (`stable.example.com/v1, Kind=CronTab`), for a conversion
        /// webhook.
        conversion: Option<String>,
        url: Option<String>,
        failure: CallFailure,
        detail: String,
    },
    /// An admission webhook answered and said no: failurePolicy has nothing to do with it.
    WebhookDenied {
        webhook: String,
        /// None: `denied the request without explanation`.
        message: Option<String>,
    },
    /// A ValidatingAdmissionPolicy denied the request.
    PolicyDenied {
        policy: String,
        binding: Option<String>,
        message: String,
    },
    /// RBAC said no (`is forbidden: User "u" cannot ...`).
    RbacDenied { user: Option<String> },
    /// The cloud provider's IAM said no (GKE names the permission it wanted).
    IamDenied { permissions: Vec<String> },
    /// etcd is out of space: every write fails until it is compacted and defragmented.
    EtcdNoSpace,
    /// The apiserver gave up on the request (504 `Timeout: request did not complete ...`).
    RequestTimeout,
    /// The apiserver cannot serve yet or any more (storage initializing, shutting down).
    Unavailable,
    /// The apiserver sheds load (429).
    Throttled,
    /// No known wording: the message says it all.
    Unparsed,
}

impl Cause {
    /// The name used in fixtures and JSON: `webhook-failure`, `webhook-denial`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            Cause::WebhookCall { .. } => "webhook-failure",
            Cause::WebhookDenied { .. } => "webhook-denial",
            Cause::PolicyDenied { .. } => "policy-denial",
            Cause::RbacDenied { .. } => "rbac-denial",
            Cause::IamDenied { .. } => "iam-denial",
            Cause::EtcdNoSpace => "etcd-no-space",
            Cause::RequestTimeout => "request-timeout",
            Cause::Unavailable => "unavailable",
            Cause::Throttled => "throttled",
            Cause::Unparsed => "unparsed",
        }
    }

    /// The admission webhook the text names, if any.
    pub fn webhook(&self) -> Option<&str> {
        match self {
            Cause::WebhookCall { webhook, .. } => webhook.as_deref(),
            Cause::WebhookDenied { webhook, .. } => Some(webhook),
            _ => None,
        }
    }
}

/// Reads `message`, and the HTTP status `code` when there was one (a 429, 503 or 504 with
/// wording of its own is read from its code).
pub fn parse(message: &str, code: Option<u16>) -> Cause {
    if let Some(cause) = webhook_call(message) {
        return cause;
    }
    if let Some(cause) = webhook_denial(message) {
        return cause;
    }
    if let Some(cause) = policy_denial(message) {
        return cause;
    }
    if message.contains("mvcc: database space exceeded") {
        return Cause::EtcdNoSpace;
    }
    if message.contains("Timeout: request did not complete within")
        || message.contains("the server was unable to return a response in the time allotted")
        || (message.contains("admission plugin \"") && message.contains("failed to complete"))
    {
        return Cause::RequestTimeout;
    }
    let lower = message.to_ascii_lowercase();
    if lower.contains("too many requests") {
        return Cause::Throttled;
    }
    if lower.contains("is shutting down")
        || message.contains("storage is (re)initializing")
        || message.contains("the server is currently unable to handle the request")
    {
        // Shutting down with `--shutdown-send-retry-after` answers 429: come back later.
        return if code == Some(429) && lower.contains("is shutting down") {
            Cause::Throttled
        } else {
            Cause::Unavailable
        };
    }
    if let Some(cause) = forbidden(message) {
        return cause;
    }
    match code {
        Some(429) => Cause::Throttled,
        Some(503) => Cause::Unavailable,
        Some(504) => Cause::RequestTimeout,
        _ => Cause::Unparsed,
    }
}

/// The text between `open` and the next `close` after `at`, and what follows it.
fn quoted<'a>(text: &'a str, open: &str, close: char) -> Option<(&'a str, &'a str)> {
    let start = text.find(open)? + open.len();
    let rest = &text[start..];
    let end = rest.find(close)?;
    Some((&rest[..end], &rest[end + close.len_utf8()..]))
}

/// The start of a failed admission webhook call, up to the webhook's name: as Kubernetes 1.13
/// and later word it, and as 1.9-1.12 did.
pub const FAILED_CALLING: [&str; 2] = [
    "failed calling webhook \"",
    "failed calling admission webhook \"",
];

fn webhook_call(message: &str) -> Option<Cause> {
    if let Some(at) = message.find("conversion webhook for ") {
        let rest = &message[at + "conversion webhook for ".len()..];
        let (kind, tail) = rest.split_once(" failed: ")?;
        let (url, failure, detail) = call_tail(tail);
        return Some(Cause::WebhookCall {
            webhook: None,
            conversion: Some(kind.to_string()),
            url,
            failure,
            detail,
        });
    }
    let (webhook, tail) = FAILED_CALLING
        .iter()
        .find_map(|open| quoted(message, open, '"'))?;
    let tail = tail.trim_start_matches(':').trim_start();
    let tail = tail
        .strip_prefix("failed to call webhook:")
        .map_or(tail, str::trim_start);
    let (url, mut failure, detail) = match tail.strip_prefix("received invalid webhook response:") {
        Some(rest) => (None, CallFailure::BadResponse, rest.trim().to_string()),
        None => call_tail(tail),
    };
    if failure == CallFailure::Other && url.is_none() {
        // No request went out, or no URL was printed: what came back was not a review.
        failure = CallFailure::BadResponse;
    }
    Some(Cause::WebhookCall {
        webhook: Some(webhook.to_string()),
        conversion: None,
        url,
        failure,
        detail,
    })
}

/// `Post "URL": CAUSE` (Go 1.14 and later) or `Post URL: CAUSE` (before): the URL, the cause
/// read, and the cause's text.
fn call_tail(tail: &str) -> (Option<String>, CallFailure, String) {
    let (url, cause) = if let Some(rest) = tail.strip_prefix("Post \"") {
        match rest.split_once('"') {
            Some((url, cause)) => (Some(url.to_string()), cause.trim_start_matches(':').trim()),
            None => (None, tail),
        }
    } else if let Some(rest) = tail.strip_prefix("Post ") {
        // A URL has no ": " in it; the cause follows the first.
        match rest.split_once(": ") {
            Some((url, cause)) => (Some(url.to_string()), cause.trim()),
            None => (None, tail),
        }
    } else {
        (None, tail)
    };
    (url, call_failure(cause), cause.to_string())
}

fn call_failure(cause: &str) -> CallFailure {
    let has = |s: &str| cause.contains(s);
    if has("context deadline exceeded")
        || has("Client.Timeout exceeded")
        || has("i/o timeout")
        || has("request canceled")
        || has("timeout awaiting")
    {
        CallFailure::Timeout
    } else if has("connection refused") {
        CallFailure::Refused
    } else if has("no route to host") {
        CallFailure::NoRoute
    } else if has("no such host") || (has("lookup ") && has("server misbehaving")) {
        CallFailure::Dns
    } else if has("x509: certificate signed by unknown authority") {
        CallFailure::X509UnknownAuthority
    } else if has("x509: certificate has expired or is not yet valid") {
        CallFailure::X509Expired
    } else if has("x509: certificate is valid for")
        || has("legacy Common Name")
        || has("doesn't contain any IP SANs")
        || has("x509: cannot validate certificate")
    {
        CallFailure::X509Hostname
    } else if has("x509: ") {
        CallFailure::X509Other
    } else if has("no endpoints available for service") {
        CallFailure::NoEndpoints
    } else if (has("service \"") && has("\" not found")) || has("no service port") {
        CallFailure::ServiceNotFound
    } else if cause.trim_end().ends_with("EOF") {
        CallFailure::Eof
    } else if has("an error on the server")
        || has("the server is currently unable to handle the request")
        || has("0-length response")
        || has("expected response")
        || has("invalid webhook response")
        || has("unexpected end of JSON")
    {
        CallFailure::BadResponse
    } else {
        CallFailure::Other
    }
}

fn webhook_denial(message: &str) -> Option<Cause> {
    let (webhook, rest) = quoted(message, "admission webhook \"", '"')?;
    let rest = rest.trim_start();
    // The apiserver's own refusal to send a dry run to a webhook with side effects: to a
    // dry-run probe, that webhook says no.
    if rest.starts_with("does not support dry run") {
        return Some(Cause::WebhookDenied {
            webhook: webhook.to_string(),
            message: Some("does not support dry run".to_string()),
        });
    }
    if rest.starts_with("denied the request without explanation") {
        return Some(Cause::WebhookDenied {
            webhook: webhook.to_string(),
            message: None,
        });
    }
    let said = rest.strip_prefix("denied the request:")?;
    Some(Cause::WebhookDenied {
        webhook: webhook.to_string(),
        message: Some(said.trim().to_string()),
    })
}

fn policy_denial(message: &str) -> Option<Cause> {
    let (policy, rest) = quoted(message, "ValidatingAdmissionPolicy '", '\'')?;
    let (binding, rest) = match quoted(rest, " with binding '", '\'') {
        Some((binding, rest)) if rest.trim_start().starts_with("denied request") => {
            (Some(binding.to_string()), rest)
        }
        _ => (None, rest),
    };
    let said = rest.trim_start().strip_prefix("denied request:")?;
    Some(Cause::PolicyDenied {
        policy: policy.to_string(),
        binding,
        message: said.trim().to_string(),
    })
}

/// `... is forbidden: ...`: RBAC, or a provider's IAM when it names a permission or does not
/// know the user. Anything else forbidden (a quota, a policy of an admission plugin) is not a
/// denial of who asked, and stays unparsed.
fn forbidden(message: &str) -> Option<Cause> {
    let why = match message.split_once(" is forbidden: ") {
        Some((_, why)) => why,
        None => message.strip_prefix("forbidden: ")?,
    };
    let permissions: Vec<String> = if let Some((_, list)) = why.split_once("requires one of [") {
        list.split(']')
            .next()
            .unwrap_or_default()
            .split(',')
            .map(|p| p.trim().trim_matches('"').to_string())
            .filter(|p| !p.is_empty())
            .collect()
    } else if let Some((permission, _)) = quoted(why, "Required \"", '"') {
        vec![permission.to_string()]
    } else {
        Vec::new()
    };
    if !permissions.is_empty() || why.contains(": Unknown user \"") {
        return Some(Cause::IamDenied { permissions });
    }
    if let Some((user, rest)) = quoted(why, "User \"", '"')
        && rest.trim_start().starts_with("cannot ")
    {
        return Some(Cause::RbacDenied {
            user: Some(user.to_string()),
        });
    }
    // RBAC's escalation check: a Role may not grant what its writer does not hold.
    if why.starts_with("attempt to grant extra privileges") {
        return Some(Cause::RbacDenied { user: None });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_wording_of_a_hanging_webhook() {
        let m = r#"Internal error occurred: failed calling webhook "validating-webhook.openpolicyagent.org": failed to call webhook: Post "https://opa.opa.svc:443/v0/data?timeout=10s": context deadline exceeded"#;
        assert_eq!(
            parse(m, Some(500)),
            Cause::WebhookCall {
                webhook: Some("validating-webhook.openpolicyagent.org".into()),
                conversion: None,
                url: Some("https://opa.opa.svc:443/v0/data?timeout=10s".into()),
                failure: CallFailure::Timeout,
                detail: "context deadline exceeded".into(),
            }
        );
    }

    #[test]
    fn an_unquoted_url_is_not_part_of_the_cause() {
        let m = "Internal error occurred: failed calling webhook \"w.example.com\": Post https://svc.ns.svc:443/?timeout=30s: context deadline exceeded";
        let Cause::WebhookCall { url, detail, .. } = parse(m, None) else {
            panic!("a call failure");
        };
        assert_eq!(url.as_deref(), Some("https://svc.ns.svc:443/?timeout=30s"));
        assert_eq!(detail, "context deadline exceeded");
    }

    #[test]
    fn the_old_wording_of_a_call_failure_is_not_a_denial() {
        let m = "Internal error occurred: failed calling admission webhook \"w.example.com\": Post https://svc.ns.svc:443/: dial tcp 10.0.0.1:443: getsockopt: connection refused";
        let cause = parse(m, Some(500));
        assert_eq!(cause.kind(), "webhook-failure", "{cause:?}");
        assert_eq!(cause.webhook(), Some("w.example.com"));
    }

    #[test]
    fn a_quota_is_not_a_denial_of_who_asked() {
        let m = "pods \"p\" is forbidden: exceeded quota: q, requested: limits.cpu=1";
        assert_eq!(parse(m, Some(403)), Cause::Unparsed);
    }
}
