//! Probes of the apiserver's health as a client feels it: latency per verb (a short history
//! for sparklines, filled by every refresh and probe) and the write-path probe, a server-side
//! dry-run create of a ConfigMap in kube-system and in default that goes through admission like
//! any write and so names the webhook that blocks writes. Nothing is ever persisted
//! (`dryRun=All`), and nothing is sent in read-only mode.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::error::AccessError;
use super::snapshot::millis;

/// How many samples are kept per verb.
pub const LATENCY_HISTORY: usize = 60;

/// One latency sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencySample {
    pub at: Timestamp,
    #[serde(rename = "tookMs", with = "millis")]
    pub took: Duration,
    /// Whether the apiserver answered (any answer but a timeout or a broken connection).
    pub answered: bool,
}

/// Recent latency per verb (`get`, `list`, `create` for the dry-run probe), oldest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyHistory {
    pub verbs: BTreeMap<String, VecDeque<LatencySample>>,
}

impl LatencyHistory {
    /// Appends one sample, dropping the oldest beyond [`LATENCY_HISTORY`].
    pub fn record(&mut self, verb: &str, took: Duration, answered: bool, at: Timestamp) {
        let ring = self.verbs.entry(verb.to_string()).or_default();
        ring.push_back(LatencySample { at, took, answered });
        while ring.len() > LATENCY_HISTORY {
            ring.pop_front();
        }
    }

    /// The samples of one verb, oldest first.
    pub fn samples(&self, verb: &str) -> impl Iterator<Item = &LatencySample> {
        self.verbs.get(verb).into_iter().flatten()
    }

    /// The latest sample of one verb.
    pub fn latest(&self, verb: &str) -> Option<&LatencySample> {
        self.verbs.get(verb).and_then(|r| r.back())
    }
}

/// Why a dry-run write failed, as the apiserver worded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum WriteFailure {
    /// `failed calling webhook "NAME": failed to call webhook: Post "URL": CAUSE`.
    WebhookCall {
        webhook: String,
        url: Option<String>,
        /// e.g. `context deadline exceeded`, `connection refused`,
        /// `no endpoints available for service "S"`.
        cause: String,
        message: String,
    },
    /// `admission webhook "NAME" denied the request: MSG`.
    WebhookDenied {
        webhook: String,
        reason: String,
        message: String,
    },
    /// Anything else: no answer, refused, forbidden, ...
    Access { error: AccessError },
}

impl WriteFailure {
    /// The webhook to blame, if the failure names one.
    pub fn webhook(&self) -> Option<&str> {
        match self {
            WriteFailure::WebhookCall { webhook, .. }
            | WriteFailure::WebhookDenied { webhook, .. } => Some(webhook),
            WriteFailure::Access { .. } => None,
        }
    }
}

/// Parses the apiserver's message of a failed write for the webhook it names.
pub fn parse_webhook_failure(message: &str) -> Option<WriteFailure> {
    const CALLING: &str = "failed calling webhook \"";
    const DENIED: &str = "admission webhook \"";
    if let Some(at) = message.find(CALLING) {
        let rest = &message[at + CALLING.len()..];
        let (webhook, rest) = rest.split_once('"')?;
        let rest = rest.trim_start_matches(':').trim_start();
        let rest = rest
            .strip_prefix("failed to call webhook:")
            .map(str::trim_start)
            .unwrap_or(rest);
        let (url, cause) = match rest.strip_prefix("Post \"") {
            Some(post) => match post.split_once('"') {
                Some((url, cause)) => (
                    Some(url.to_string()),
                    cause.trim_start_matches(':').trim().to_string(),
                ),
                None => (None, post.to_string()),
            },
            None => (None, rest.trim().to_string()),
        };
        return Some(WriteFailure::WebhookCall {
            webhook: webhook.to_string(),
            url,
            cause,
            message: message.to_string(),
        });
    }
    if let Some(at) = message.find(DENIED) {
        let rest = &message[at + DENIED.len()..];
        let (webhook, rest) = rest.split_once('"')?;
        let reason = rest
            .trim_start()
            .strip_prefix("denied the request:")
            .map(str::trim)
            .unwrap_or(rest.trim())
            .to_string();
        return Some(WriteFailure::WebhookDenied {
            webhook: webhook.to_string(),
            reason,
            message: message.to_string(),
        });
    }
    None
}

/// Where the probe of one namespace stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum ProbeState {
    /// Not sent, and why (e.g. `read-only`).
    Skipped { reason: String },
    /// Sent, no answer yet.
    Waiting {
        #[serde(rename = "waitedMs", with = "millis")]
        waited: Duration,
    },
    /// The dry-run create was admitted.
    Passed {
        #[serde(rename = "tookMs", with = "millis")]
        took: Duration,
    },
    /// The dry-run create failed.
    Failed {
        #[serde(rename = "tookMs", with = "millis")]
        took: Duration,
        failure: WriteFailure,
    },
}

/// The write probe in one namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceProbe {
    pub namespace: String,
    pub started_at: Option<Timestamp>,
    /// The probe's own deadline: the largest timeoutSeconds of the matching webhooks plus a
    /// margin.
    #[serde(rename = "deadlineMs", with = "millis")]
    pub deadline: Duration,
    /// Fail-closed webhooks whose rules and selectors match this write.
    pub fail_closed_webhooks: Vec<String>,
    /// All webhooks (fail-open too) that match this write.
    pub matching_webhooks: Vec<String>,
    pub state: ProbeState,
}

impl NamespaceProbe {
    /// One line for a person: "no answer after 4 s (fail-closed webhooks that match: ...)".
    pub fn describe(&self) -> String {
        match &self.state {
            ProbeState::Skipped { reason } => format!("skipped: {reason}"),
            ProbeState::Waiting { waited } => {
                let mut s = format!("no answer after {} s", waited.as_secs());
                if !self.fail_closed_webhooks.is_empty() {
                    s.push_str(&format!(
                        " (fail-closed webhooks that match: {})",
                        self.fail_closed_webhooks.join(", ")
                    ));
                }
                s
            }
            ProbeState::Passed { took } => format!("passed in {} ms", took.as_millis()),
            ProbeState::Failed { took, failure } => {
                let what = match failure {
                    WriteFailure::WebhookCall { webhook, cause, .. } => {
                        format!("webhook {webhook}: {cause}")
                    }
                    WriteFailure::WebhookDenied {
                        webhook, reason, ..
                    } => format!("webhook {webhook} denied: {reason}"),
                    WriteFailure::Access { error } => error.message.clone(),
                };
                format!("failed after {:.1} s: {what}", took.as_secs_f64())
            }
        }
    }
}

/// The latest write-path probe: one entry per probed namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeReport {
    pub namespaces: Vec<NamespaceProbe>,
}

impl ProbeReport {
    pub fn namespace(&self, namespace: &str) -> Option<&NamespaceProbe> {
        self.namespaces.iter().find(|n| n.namespace == namespace)
    }

    /// Whether every namespace has an outcome (none is waiting).
    pub fn is_finished(&self) -> bool {
        !self
            .namespaces
            .iter()
            .any(|n| matches!(n.state, ProbeState::Waiting { .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_call_failures_parse() {
        let m = r#"Internal error occurred: failed calling webhook "validating-webhook.openpolicyagent.org": failed to call webhook: Post "https://opa.opa.svc:443/v0/data?timeout=10s": context deadline exceeded"#;
        let Some(WriteFailure::WebhookCall {
            webhook,
            url,
            cause,
            ..
        }) = parse_webhook_failure(m)
        else {
            panic!("not parsed: {m}");
        };
        assert_eq!(webhook, "validating-webhook.openpolicyagent.org");
        assert_eq!(
            url.as_deref(),
            Some("https://opa.opa.svc:443/v0/data?timeout=10s")
        );
        assert_eq!(cause, "context deadline exceeded");

        let m = r#"Internal error occurred: failed calling webhook "a.b": failed to call webhook: Post "https://s.n.svc:443/x?timeout=3s": no endpoints available for service "s""#;
        let Some(WriteFailure::WebhookCall { cause, .. }) = parse_webhook_failure(m) else {
            panic!("not parsed");
        };
        assert_eq!(cause, r#"no endpoints available for service "s""#);

        let m = r#"configmaps "p" is forbidden: admission webhook "deny.example.com" denied the request: no configmaps here"#;
        let Some(WriteFailure::WebhookDenied {
            webhook, reason, ..
        }) = parse_webhook_failure(m)
        else {
            panic!("not parsed");
        };
        assert_eq!(webhook, "deny.example.com");
        assert_eq!(reason, "no configmaps here");
        assert!(parse_webhook_failure("etcdserver: request timed out").is_none());
    }

    #[test]
    fn latency_history_is_bounded() {
        let mut h = LatencyHistory::default();
        for i in 0..(LATENCY_HISTORY + 5) {
            h.record(
                "get",
                Duration::from_millis(i as u64),
                true,
                Timestamp::UNIX_EPOCH,
            );
        }
        assert_eq!(h.samples("get").count(), LATENCY_HISTORY);
        assert_eq!(
            h.latest("get").map(|s| s.took),
            Some(Duration::from_millis(LATENCY_HISTORY as u64 + 4))
        );
    }
}
