//! Every failure to reach or use an apiserver, classified once into a small set of kinds, each
//! rendered as one line a person can act on. kube's errors hide timeouts and refused
//! connections in their source chain; this is the only place that digs for them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What went wrong, in the terms an on-call engineer acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// No answer within the deadline.
    Timeout,
    /// Nothing listens at the address (connection refused).
    Refused,
    /// The server name does not resolve.
    Dns,
    /// TLS failed: unknown CA, wrong name, expired certificate.
    Tls,
    /// The connection closed before an answer (reset, EOF): often an apiserver restarting.
    Disconnected,
    /// 401: the credentials were not accepted.
    Unauthorized,
    /// 403: the credentials are not allowed to do this.
    Forbidden,
    /// 404.
    NotFound,
    /// 409: the object changed, or a precondition failed.
    Conflict,
    /// 429: the apiserver is shedding load.
    TooManyRequests,
    /// 5xx.
    ServerError,
    /// An answer that could not be understood: not Kubernetes (an HTML page, a proxy's
    /// error), or cut short.
    BadResponse,
    /// An answer larger than kube-rescue reads (the cap on a response body).
    TooLarge,
    /// The exec auth plugin failed or did not answer.
    AuthPlugin,
    /// Read-only mode refused a write before it left the process.
    ReadOnly,
    /// The kubeconfig or a flag is wrong.
    Config,
}

impl ErrorKind {
    /// Whether the apiserver is struggling (back off) rather than refusing on purpose.
    pub fn is_overload(self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout
                | ErrorKind::TooManyRequests
                | ErrorKind::ServerError
                | ErrorKind::Disconnected
        )
    }

    /// Whether the credentials are at fault: answered 401, or the auth plugin failed.
    pub fn rejects_credentials(self) -> bool {
        matches!(self, ErrorKind::Unauthorized | ErrorKind::AuthPlugin)
    }

    /// Whether nothing answered at all (the apiserver is unreachable).
    pub fn is_unreachable(self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout
                | ErrorKind::Refused
                | ErrorKind::Dns
                | ErrorKind::Tls
                | ErrorKind::Disconnected
        )
    }
}

/// A classified failure: the kind, one actionable line, and the HTTP code when there was one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AccessError {
    pub kind: ErrorKind,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
}

pub type Result<T, E = AccessError> = std::result::Result<T, E>;

/// A duration as a person reads it: "3 s", "1.5 s".
pub(crate) fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 && (s - s.round()).abs() < 0.05 {
        format!("{} s", s.round() as u64)
    } else {
        format!("{s:.1} s")
    }
}

impl AccessError {
    /// Whether it says the apiserver went away (a refused or dropped connection: a restart),
    /// not how it answers.
    pub fn apiserver_gone(&self) -> bool {
        matches!(self.kind, ErrorKind::Refused | ErrorKind::Disconnected)
    }

    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        AccessError {
            kind,
            message: message.into(),
            code: None,
        }
    }

    /// The deadline passed with no answer.
    pub fn timeout(what: &str, after: Duration) -> Self {
        Self::new(
            ErrorKind::Timeout,
            format!("{what}: no answer within {}", secs(after)),
        )
    }

    /// Read-only mode refused a write.
    pub fn read_only(method: &str, path: &str) -> Self {
        Self::new(
            ErrorKind::ReadOnly,
            format!("read-only mode refused {method} {path}: nothing was sent"),
        )
    }

    /// Classifies a kube error from a call described by `what` (e.g. "list nodes").
    pub fn classify(what: &str, error: &kube::Error) -> Self {
        if let kube::Error::Api(status) = error {
            return Self::from_status(what, status.code, &status.reason, &status.message);
        }
        if let Some(found) = find_in_chain(error) {
            return Self::new(found.0, format!("{what}: {}", found.1));
        }
        match error {
            kube::Error::SerdeError(e) => Self::new(
                ErrorKind::BadResponse,
                format!("{what}: not the Kubernetes answer expected ({e})"),
            ),
            kube::Error::Auth(e) => Self::new(
                ErrorKind::AuthPlugin,
                format!("{what}: authentication failed: {e}"),
            ),
            other => Self::new(
                ErrorKind::BadResponse,
                format!("{what}: {}", one_line(other)),
            ),
        }
    }

    /// An error answer from the apiserver.
    pub fn from_status(what: &str, code: u16, reason: &str, message: &str) -> Self {
        let kind = match code {
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            429 => ErrorKind::TooManyRequests,
            504 => ErrorKind::Timeout,
            500..=599 => ErrorKind::ServerError,
            _ => ErrorKind::BadResponse,
        };
        let hint = match kind {
            ErrorKind::Unauthorized => {
                " (the credentials were not accepted: log in again or check the kubeconfig's user)"
            }
            // A webhook's or a policy's "no", or a quota, is no reason to ask for RBAC access.
            ErrorKind::Forbidden => match crate::failure::parse(message, Some(code)) {
                crate::failure::Cause::RbacDenied { .. } => RBAC_HINT,
                crate::failure::Cause::IamDenied { .. } => {
                    " (the cloud provider's IAM refused: grant this user the permission it names)"
                }
                crate::failure::Cause::Unparsed if !message.contains("forbidden:") => RBAC_HINT,
                _ => "",
            },
            ErrorKind::TooManyRequests => " (the apiserver is shedding load; backing off)",
            _ => "",
        };
        let message = if message.is_empty() { reason } else { message };
        // A proxy's page or a long text in place of a Status: a few words say what it was.
        let message = if message.contains('\n') || message.trim_start().starts_with('<') {
            super::read::excerpt(message)
        } else if message.chars().count() > 300 {
            let mut short: String = message.chars().take(300).collect();
            short.push('…');
            short
        } else {
            message.to_string()
        };
        AccessError {
            kind,
            message: format!("{what}: {code} {message}{hint}"),
            code: Some(code),
        }
    }
}

const RBAC_HINT: &str = " (this user may not do this: ask for RBAC access)";

/// Walks an error's source chain for the transport failure it hides.
fn find_in_chain(error: &(dyn std::error::Error + 'static)) -> Option<(ErrorKind, String)> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut texts = Vec::new();
    while let Some(e) = current {
        if let Some(failed) = e.downcast_ref::<super::connect::PluginFailure>() {
            return Some((ErrorKind::AuthPlugin, failed.0.message.clone()));
        }
        if let Some(large) = e.downcast_ref::<super::transport::TooLarge>() {
            return Some((ErrorKind::TooLarge, large.to_string()));
        }
        if let Some(many) = e.downcast_ref::<super::read::TooManyItems>() {
            return Some((ErrorKind::TooLarge, many.to_string()));
        }
        if let Some(odd) = e.downcast_ref::<super::read::NotKubernetes>() {
            return Some((ErrorKind::BadResponse, odd.to_string()));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as Io;
            match io.kind() {
                Io::TimedOut => {
                    return Some((ErrorKind::Timeout, "no answer in time (timed out)".into()));
                }
                Io::ConnectionRefused => {
                    return Some((
                        ErrorKind::Refused,
                        "connection refused: nothing listens there (apiserver down or restarting?)"
                            .into(),
                    ));
                }
                Io::ConnectionReset
                | Io::ConnectionAborted
                | Io::UnexpectedEof
                | Io::BrokenPipe => {
                    return Some((
                        ErrorKind::Disconnected,
                        "the connection was closed before an answer (apiserver restarting?)".into(),
                    ));
                }
                _ => {}
            }
            // An io::Error's source() skips the error it wraps, and TLS failures come as an
            // io::Error wrapping another wrapping the rustls::Error: look inside.
            if let Some(inner) = io.get_ref() {
                if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                    return Some(tls_failure(tls));
                }
                if let Some(found) = find_in_chain(inner) {
                    return Some(found);
                }
            }
        }
        if let Some(refused) = e.downcast_ref::<super::gate::ReadOnlyRefused>() {
            return Some((ErrorKind::ReadOnly, refused.to_string()));
        }
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls_failure(tls));
        }
        if e.downcast_ref::<tokio::time::error::Elapsed>().is_some() {
            return Some((ErrorKind::Timeout, "no answer in time (timed out)".into()));
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message() || h.is_canceled())
        {
            return Some((
                ErrorKind::Disconnected,
                "the connection was closed before an answer (apiserver restarting?)".into(),
            ));
        }
        texts.push(e.to_string());
        current = e.source();
    }
    let all = texts.join(": ").to_lowercase();
    if all.contains("dns error")
        || all.contains("failed to lookup address")
        || all.contains("name or service not known")
    {
        return Some((ErrorKind::Dns, "the server's name does not resolve (DNS): check the kubeconfig's server address and the network".into()));
    }
    if all.contains("timed out") || all.contains("deadline") {
        return Some((ErrorKind::Timeout, "no answer in time (timed out)".into()));
    }
    if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        return Some((
            ErrorKind::Tls,
            format!("TLS failed: {}", texts.last().cloned().unwrap_or_default()),
        ));
    }
    if all.contains("connection refused") {
        return Some((
            ErrorKind::Refused,
            "connection refused: nothing listens there (apiserver down or restarting?)".into(),
        ));
    }
    if all.contains("connection closed")
        || all.contains("connection reset")
        || all.contains("end of file")
    {
        return Some((
            ErrorKind::Disconnected,
            "the connection was closed before an answer (apiserver restarting?)".into(),
        ));
    }
    None
}

/// The first line of an error's text: YAML parsers add a drawn excerpt of the input below
/// it, which says nothing more on one line.
fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// An error and its sources on one line.
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![first_line(&error.to_string()).to_string()];
    let mut current = error.source();
    while let Some(e) = current {
        let text = e.to_string();
        let text = first_line(&text);
        if !text.is_empty() && !parts.iter().any(|p| p.contains(text)) {
            parts.push(text.to_string());
        }
        current = e.source();
    }
    parts.join(": ")
}

fn tls_failure(error: &rustls::Error) -> (ErrorKind, String) {
    let hint = match error {
        rustls::Error::InvalidCertificate(_) => {
            ": the server's certificate is not trusted; check the kubeconfig's certificate-authority and server address"
        }
        _ => "",
    };
    (ErrorKind::Tls, format!("TLS failed ({error}){hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rbac_gets_the_rbac_hint() {
        let rbac = "configmaps is forbidden: User \"u\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"default\"";
        let hint = |m: &str| AccessError::from_status("create", 403, "Forbidden", m).message;
        assert!(hint(rbac).contains("ask for RBAC access"), "{}", hint(rbac));
        for not_rbac in [
            "configmaps \"p\" is forbidden: admission webhook \"w.example.com\" denied the request: no",
            "configmaps \"p\" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: no",
            "pods \"p\" is forbidden: exceeded quota: q, requested: limits.cpu=1",
        ] {
            assert!(!hint(not_rbac).contains("RBAC"), "{}", hint(not_rbac));
        }
        let iam = "pods is forbidden: User \"u\" cannot create resource \"pods\" in API group \"\" in the namespace \"s\": requires one of [\"container.pods.create\"] permission(s).";
        assert!(hint(iam).contains("IAM"), "{}", hint(iam));
    }

    #[test]
    fn statuses_map_to_kinds_with_hints() {
        let e = AccessError::from_status("list events", 403, "Forbidden", "events is forbidden");
        assert_eq!(e.kind, ErrorKind::Forbidden);
        assert_eq!(e.code, Some(403));
        assert!(
            e.message
                .starts_with("list events: 403 events is forbidden")
        );
        assert!(e.message.contains("RBAC"));
        assert_eq!(
            AccessError::from_status("x", 429, "TooManyRequests", "").kind,
            ErrorKind::TooManyRequests
        );
        assert_eq!(
            AccessError::from_status("x", 503, "ServiceUnavailable", "").kind,
            ErrorKind::ServerError
        );
        assert_eq!(
            AccessError::from_status("x", 504, "Timeout", "").kind,
            ErrorKind::Timeout
        );
    }

    #[test]
    fn io_errors_in_the_chain_are_found() {
        #[derive(Debug, thiserror::Error)]
        #[error("client error (Connect)")]
        struct Outer(#[source] std::io::Error);
        let refused = Outer(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(find_in_chain(&refused).unwrap().0, ErrorKind::Refused);
        let timed_out = Outer(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert_eq!(find_in_chain(&timed_out).unwrap().0, ErrorKind::Timeout);
        let dns = Outer(std::io::Error::other(
            "dns error: failed to lookup address information",
        ));
        assert_eq!(find_in_chain(&dns).unwrap().0, ErrorKind::Dns);
        // As hyper-rustls reports a handshake: io::Error(Other) around io::Error(InvalidData)
        // around the rustls::Error, whose texts alone do not say TLS.
        let handshake = Outer(std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        )));
        let (kind, message) = find_in_chain(&handshake).unwrap();
        assert_eq!(kind, ErrorKind::Tls);
        assert!(message.contains("certificate-authority"), "{message}");
        let wrapped_refused = Outer(std::io::Error::other(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert_eq!(
            find_in_chain(&wrapped_refused).unwrap().0,
            ErrorKind::Refused
        );
    }

    #[test]
    fn one_line_keeps_the_first_line_of_each_source() {
        #[derive(Debug, thiserror::Error)]
        #[error("could not read the file")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other(
            "line 2 column 7: unclosed bracket\n --> <input>:2:7\n  | 1 | clusters: [",
        ));
        assert_eq!(
            one_line(&e),
            "could not read the file: line 2 column 7: unclosed bracket"
        );
    }

    #[test]
    fn timeouts_say_how_long() {
        assert_eq!(
            AccessError::timeout("list nodes", Duration::from_secs(3)).message,
            "list nodes: no answer within 3 s"
        );
        assert_eq!(
            AccessError::timeout("get /readyz", Duration::from_millis(1500)).message,
            "get /readyz: no answer within 1.5 s"
        );
    }
}
