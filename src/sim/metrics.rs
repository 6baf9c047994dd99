//! The simulated apiserver's Prometheus metrics: request and admission webhook counters and
//! histograms with the real apiserver's names, labels, help text and buckets, rendered in the
//! text exposition format. Pure and thread-safe; it never does I/O.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Buckets of `apiserver_request_duration_seconds` (k8s.io/apiserver/pkg/endpoints/metrics).
pub const REQUEST_DURATION_BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

/// Buckets of `apiserver_admission_webhook_admission_duration_seconds`
/// (k8s.io/apiserver/pkg/admission/metrics).
pub const WEBHOOK_DURATION_BUCKETS: &[f64] = &[0.005, 0.025, 0.1, 0.5, 1.0, 2.5, 10.0, 25.0];

/// One request the apiserver answered.
#[derive(Debug, Clone, Copy)]
pub struct RequestRecord<'a> {
    /// The apiserver's verb: get, list, watch, create, update, patch, delete, deletecollection.
    /// The metric label is the apiserver's reported verb (GET, LIST, WATCH, POST, PUT, PATCH,
    /// DELETE), see [`reported_verb`].
    pub verb: &'a str,
    pub dry_run: bool,
    /// `""` for the core group.
    pub group: &'a str,
    pub version: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    /// `resource` (one named object), `namespace` or `cluster`.
    pub scope: &'a str,
    /// `apiserver`.
    pub component: &'a str,
    pub code: u16,
    pub duration: Duration,
}

/// Validating or mutating webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookKind {
    Validating,
    Mutating,
}

impl WebhookKind {
    /// The `type` label: `validating` or `admit`, as the apiserver writes it.
    pub fn label(self) -> &'static str {
        match self {
            WebhookKind::Validating => "validating",
            WebhookKind::Mutating => "admit",
        }
    }
}

/// One call of an admission webhook.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRecord<'a> {
    pub name: &'a str,
    pub kind: WebhookKind,
    /// CREATE, UPDATE, DELETE, CONNECT.
    pub operation: &'a str,
    /// The request was refused because of this webhook (denied, or failed with policy Fail).
    pub rejected: bool,
    pub duration: Duration,
    /// HTTP status of the webhook's answer; `None` when there was none (timeout, refused).
    pub code: Option<u16>,
    /// `calling_webhook_error`, `apiserver_internal_error` or `no_error` (the default).
    pub error_type: Option<&'a str>,
    /// The HTTP code the webhook rejected with (its `status.code`); `None` is 0.
    pub rejection_code: Option<u16>,
    /// The call failed and failurePolicy Ignore let the request through.
    pub fail_open: bool,
}

/// The apiserver's reported verb for a request verb: get -> GET, list -> LIST, watch -> WATCH,
/// create -> POST, update -> PUT, patch -> PATCH, delete and deletecollection -> DELETE.
pub fn reported_verb(verb: &str) -> String {
    match verb {
        "create" => "POST".to_owned(),
        "update" => "PUT".to_owned(),
        "deletecollection" => "DELETE".to_owned(),
        other => other.to_ascii_uppercase(),
    }
}

#[derive(Debug, Clone)]
struct Histogram {
    /// Observations per bucket (not cumulative); one extra slot for +Inf.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(buckets: &[f64]) -> Self {
        Histogram {
            counts: vec![0; buckets.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, buckets: &[f64], value: f64) {
        let slot = buckets
            .iter()
            .position(|&b| value <= b)
            .unwrap_or(buckets.len());
        if let Some(c) = self.counts.get_mut(slot) {
            *c += 1;
        }
        self.sum += value;
        self.count += 1;
    }
}

/// Series of one family, keyed by label values in the family's (sorted) label order.
type Series<T> = BTreeMap<Vec<String>, T>;

#[derive(Debug, Default)]
struct Families {
    webhook_duration: Series<Histogram>,
    webhook_rejection: Series<u64>,
    webhook_request: Series<u64>,
    webhook_fail_open: Series<u64>,
    request_total: Series<u64>,
    request_duration: Series<Histogram>,
}

/// The registry. Cheap to share (`Arc<Metrics>`) and call from many tasks.
#[derive(Debug, Default)]
pub struct Metrics {
    families: Mutex<Families>,
}

struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    /// Label names, sorted as the Prometheus client writes them.
    labels: &'static [&'static str],
}

const WEBHOOK_DURATION: Family = Family {
    name: "apiserver_admission_webhook_admission_duration_seconds",
    help: "[STABLE] Admission webhook latency histogram in seconds, identified by name and broken out for each operation and API resource and type (validate or admit).",
    kind: "histogram",
    labels: &["name", "operation", "rejected", "type"],
};
const WEBHOOK_FAIL_OPEN: Family = Family {
    name: "apiserver_admission_webhook_fail_open_count",
    help: "[ALPHA] Admission webhook fail open count, identified by name and broken out for each admission type (validating or mutating).",
    kind: "counter",
    labels: &["name", "type"],
};
const WEBHOOK_REJECTION: Family = Family {
    name: "apiserver_admission_webhook_rejection_count",
    help: "[ALPHA] Admission webhook rejection count, identified by name and broken out for each admission type (validating or admit) and operation. Additional labels specify an error type (calling_webhook_error or apiserver_internal_error if an error occurred; no_error otherwise) and optionally a non-zero rejection code if the webhook rejects the request with an HTTP status code (honored by the apiserver when the code is greater or equal to 400). Codes greater than 600 are truncated to 600, to keep the metrics cardinality bounded.",
    kind: "counter",
    labels: &["error_type", "name", "operation", "rejection_code", "type"],
};
const WEBHOOK_REQUEST: Family = Family {
    name: "apiserver_admission_webhook_request_total",
    help: "[ALPHA] Admission webhook request total, identified by name and broken out for each admission type (validating or mutating) and operation. Additional labels specify whether the request was rejected or not and an HTTP status code. Codes greater than 600 are truncated to 600, to keep the metrics cardinality bounded.",
    kind: "counter",
    labels: &["code", "name", "operation", "rejected", "type"],
};
const REQUEST_DURATION: Family = Family {
    name: "apiserver_request_duration_seconds",
    help: "[STABLE] Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.",
    kind: "histogram",
    labels: &[
        "component",
        "dry_run",
        "group",
        "resource",
        "scope",
        "subresource",
        "verb",
        "version",
    ],
};
const REQUEST_TOTAL: Family = Family {
    name: "apiserver_request_total",
    help: "[STABLE] Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.",
    kind: "counter",
    labels: &[
        "code",
        "component",
        "dry_run",
        "group",
        "resource",
        "scope",
        "subresource",
        "verb",
        "version",
    ],
};

/// Codes above 600 are reported as 600, as the apiserver does.
fn truncate_code(code: u16) -> String {
    code.min(600).to_string()
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Families> {
        // A panic elsewhere while holding the lock leaves plain counters behind: keep counting.
        self.families
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Count one answered request.
    pub fn record_request(&self, r: &RequestRecord<'_>) {
        let verb = reported_verb(r.verb);
        let dry_run = if r.dry_run { "All" } else { "" };
        let common = [
            r.component,
            dry_run,
            r.group,
            r.resource,
            r.scope,
            r.subresource,
            verb.as_str(),
            r.version,
        ];
        let key: Vec<String> = common.iter().map(|s| (*s).to_owned()).collect();
        let mut total_key = Vec::with_capacity(key.len() + 1);
        total_key.push(r.code.to_string());
        total_key.extend(key.iter().cloned());

        let mut f = self.lock();
        f.request_duration
            .entry(key)
            .or_insert_with(|| Histogram::new(REQUEST_DURATION_BUCKETS))
            .observe(REQUEST_DURATION_BUCKETS, r.duration.as_secs_f64());
        *f.request_total.entry(total_key).or_insert(0) += 1;
    }

    /// Count one webhook call.
    pub fn record_webhook(&self, w: &WebhookRecord<'_>) {
        let kind = w.kind.label();
        let rejected = if w.rejected { "true" } else { "false" };
        let own = |s: &str| s.to_owned();
        let mut f = self.lock();
        f.webhook_duration
            .entry(vec![
                own(w.name),
                own(w.operation),
                own(rejected),
                own(kind),
            ])
            .or_insert_with(|| Histogram::new(WEBHOOK_DURATION_BUCKETS))
            .observe(WEBHOOK_DURATION_BUCKETS, w.duration.as_secs_f64());
        *f.webhook_request
            .entry(vec![
                truncate_code(w.code.unwrap_or(0)),
                own(w.name),
                own(w.operation),
                own(rejected),
                own(kind),
            ])
            .or_insert(0) += 1;
        if w.rejected {
            *f.webhook_rejection
                .entry(vec![
                    own(w.error_type.unwrap_or("no_error")),
                    own(w.name),
                    own(w.operation),
                    truncate_code(w.rejection_code.unwrap_or(0)),
                    own(kind),
                ])
                .or_insert(0) += 1;
        }
        if w.fail_open {
            *f.webhook_fail_open
                .entry(vec![own(w.name), own(kind)])
                .or_insert(0) += 1;
        }
    }

    /// Everything, in the Prometheus text exposition format (version 0.0.4), families sorted by
    /// name as the apiserver's registry writes them.
    pub fn render(&self) -> String {
        let f = self.lock();
        let mut out = String::new();
        render_histograms(
            &mut out,
            &WEBHOOK_DURATION,
            WEBHOOK_DURATION_BUCKETS,
            &f.webhook_duration,
        );
        render_counters(&mut out, &WEBHOOK_FAIL_OPEN, &f.webhook_fail_open);
        render_counters(&mut out, &WEBHOOK_REJECTION, &f.webhook_rejection);
        render_counters(&mut out, &WEBHOOK_REQUEST, &f.webhook_request);
        render_histograms(
            &mut out,
            &REQUEST_DURATION,
            REQUEST_DURATION_BUCKETS,
            &f.request_duration,
        );
        render_counters(&mut out, &REQUEST_TOTAL, &f.request_total);
        out
    }
}

fn header(out: &mut String, family: &Family) {
    let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(family.help));
    let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
}

fn render_counters(out: &mut String, family: &Family, series: &Series<u64>) {
    if series.is_empty() {
        return;
    }
    header(out, family);
    for (values, count) in series {
        let _ = writeln!(out, "{}{{{}}} {count}", family.name, labels(family, values));
    }
}

fn render_histograms(
    out: &mut String,
    family: &Family,
    buckets: &[f64],
    series: &Series<Histogram>,
) {
    if series.is_empty() {
        return;
    }
    header(out, family);
    for (values, h) in series {
        let base = labels(family, values);
        let mut cumulative = 0;
        for (i, bound) in buckets.iter().enumerate() {
            cumulative += h.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "{}_bucket{{{base},le=\"{}\"}} {cumulative}",
                family.name,
                format_float(*bound)
            );
        }
        let _ = writeln!(
            out,
            "{}_bucket{{{base},le=\"+Inf\"}} {}",
            family.name, h.count
        );
        let _ = writeln!(out, "{}_sum{{{base}}} {}", family.name, format_float(h.sum));
        let _ = writeln!(out, "{}_count{{{base}}} {}", family.name, h.count);
    }
}

fn labels(family: &Family, values: &[String]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in family.labels.iter().zip(values).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{name}=\"{}\"", escape_label(value));
    }
    out
}

/// Label values escape backslash, double quote and line feed.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text escapes backslash and line feed.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Floats as Go's Prometheus client writes them: `1`, `0.005`, `2.5`.
fn format_float(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v.is_nan() {
        return "NaN".into();
    }
    format!("{v}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One sample line: metric name, labels in order, value.
    #[derive(Debug)]
    struct Sample {
        name: String,
        labels: Vec<(String, String)>,
        value: f64,
    }

    impl Sample {
        fn label(&self, name: &str) -> Option<&str> {
            self.labels
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// A small parser for the text format: enough to read back what `render` writes.
    fn parse(text: &str) -> (Vec<(String, String)>, Vec<Sample>) {
        let mut meta = Vec::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# ") {
                let mut parts = rest.splitn(3, ' ');
                let kind = parts.next().unwrap_or_default();
                let name = parts.next().unwrap_or_default();
                let text = parts.next().unwrap_or_default();
                meta.push((format!("{kind} {name}"), text.to_owned()));
                continue;
            }
            let (name, rest) = line.split_once('{').expect("labels");
            let mut labels = Vec::new();
            let mut chars = rest.chars().peekable();
            loop {
                let mut key = String::new();
                for c in chars.by_ref() {
                    if c == '=' {
                        break;
                    }
                    key.push(c);
                }
                assert_eq!(chars.next(), Some('"'), "in {line}");
                let mut value = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some(other) => value.push(other),
                            None => panic!("dangling escape in {line}"),
                        },
                        '"' => break,
                        c => value.push(c),
                    }
                }
                labels.push((key, value));
                match chars.next() {
                    Some(',') => continue,
                    Some('}') => break,
                    other => panic!("unexpected {other:?} in {line}"),
                }
            }
            let value: String = chars.collect();
            samples.push(Sample {
                name: name.to_owned(),
                labels,
                value: value.trim().parse().expect("value"),
            });
        }
        (meta, samples)
    }

    fn request(verb: &str, code: u16, millis: u64) -> RequestRecord<'static> {
        RequestRecord {
            verb: match verb {
                "list" => "list",
                "create" => "create",
                _ => "get",
            },
            dry_run: false,
            group: "",
            version: "v1",
            resource: "nodes",
            subresource: "",
            scope: "cluster",
            component: "apiserver",
            code,
            duration: Duration::from_millis(millis),
        }
    }

    #[test]
    fn empty_registry_renders_nothing() {
        assert_eq!(Metrics::new().render(), "");
    }

    #[test]
    fn requests_count_and_histogram() {
        let m = Metrics::new();
        m.record_request(&request("list", 200, 3));
        m.record_request(&request("list", 200, 70));
        m.record_request(&request("list", 504, 61_000));
        m.record_request(&RequestRecord {
            dry_run: true,
            ..request("create", 500, 10)
        });
        let text = m.render();
        let (meta, samples) = parse(&text);
        assert!(meta.contains(&("TYPE apiserver_request_total".into(), "counter".into())));
        assert!(meta.contains(&(
            "TYPE apiserver_request_duration_seconds".into(),
            "histogram".into()
        )));

        let total = |code: &str, verb: &str| {
            samples
                .iter()
                .find(|s| {
                    s.name == "apiserver_request_total"
                        && s.label("code") == Some(code)
                        && s.label("verb") == Some(verb)
                })
                .map(|s| s.value)
        };
        assert_eq!(total("200", "LIST"), Some(2.0));
        assert_eq!(total("504", "LIST"), Some(1.0));
        assert_eq!(total("500", "POST"), Some(1.0));
        let post = samples
            .iter()
            .find(|s| s.name == "apiserver_request_total" && s.label("verb") == Some("POST"))
            .expect("POST sample");
        assert_eq!(post.label("dry_run"), Some("All"));
        let names: Vec<&str> = post.labels.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "code",
                "component",
                "dry_run",
                "group",
                "resource",
                "scope",
                "subresource",
                "verb",
                "version"
            ]
        );

        let bucket = |le: &str| {
            samples
                .iter()
                .find(|s| {
                    s.name == "apiserver_request_duration_seconds_bucket"
                        && s.label("verb") == Some("LIST")
                        && s.label("le") == Some(le)
                })
                .map(|s| s.value)
        };
        assert_eq!(bucket("0.005"), Some(1.0));
        assert_eq!(bucket("0.05"), Some(1.0));
        assert_eq!(bucket("0.1"), Some(2.0));
        assert_eq!(bucket("60"), Some(2.0));
        assert_eq!(bucket("+Inf"), Some(3.0));
        let sum = samples
            .iter()
            .find(|s| {
                s.name == "apiserver_request_duration_seconds_sum"
                    && s.label("verb") == Some("LIST")
            })
            .expect("sum");
        assert!((sum.value - 61.073).abs() < 1e-9);
        assert!(text.contains("le=\"1.25\""));
        // le comes last, after the sorted labels
        assert!(text.contains("version=\"v1\",le=\"0.005\"}"));
    }

    #[test]
    fn webhook_timeout_rejects_and_fail_open_counts() {
        let m = Metrics::new();
        let timeout = WebhookRecord {
            name: "validating-webhook.openpolicyagent.org",
            kind: WebhookKind::Validating,
            operation: "UPDATE",
            rejected: true,
            duration: Duration::from_secs(10),
            code: None,
            error_type: Some("calling_webhook_error"),
            rejection_code: None,
            fail_open: false,
        };
        m.record_webhook(&timeout);
        m.record_webhook(&timeout);
        m.record_webhook(&WebhookRecord {
            name: "sidecar-injector.example.com",
            kind: WebhookKind::Mutating,
            operation: "CREATE",
            rejected: false,
            duration: Duration::from_millis(3),
            code: None,
            error_type: None,
            rejection_code: None,
            fail_open: true,
        });
        m.record_webhook(&WebhookRecord {
            name: "deny.example.com",
            kind: WebhookKind::Validating,
            operation: "CREATE",
            rejected: true,
            duration: Duration::from_millis(20),
            code: Some(200),
            error_type: Some("no_error"),
            rejection_code: Some(999),
            fail_open: false,
        });
        let (meta, samples) = parse(&m.render());
        assert!(meta.iter().any(
            |(k, v)| k == "HELP apiserver_admission_webhook_rejection_count"
                && v.starts_with("[ALPHA] Admission webhook rejection count")
        ));

        let find = |name: &str, webhook: &str| {
            samples
                .iter()
                .filter(|s| s.name == name && s.label("name") == Some(webhook))
                .collect::<Vec<_>>()
        };
        let opa = "validating-webhook.openpolicyagent.org";
        let rejections = find("apiserver_admission_webhook_rejection_count", opa);
        assert_eq!(rejections.len(), 1);
        assert_eq!(rejections[0].value, 2.0);
        assert_eq!(
            rejections[0].label("error_type"),
            Some("calling_webhook_error")
        );
        assert_eq!(rejections[0].label("rejection_code"), Some("0"));
        assert_eq!(rejections[0].label("type"), Some("validating"));

        let requests = find("apiserver_admission_webhook_request_total", opa);
        assert_eq!(requests[0].label("code"), Some("0"));
        assert_eq!(requests[0].label("rejected"), Some("true"));
        assert_eq!(requests[0].value, 2.0);

        let buckets = find(
            "apiserver_admission_webhook_admission_duration_seconds_bucket",
            opa,
        );
        let le = |b: &str| {
            buckets
                .iter()
                .find(|s| s.label("le") == Some(b))
                .map(|s| s.value)
        };
        assert_eq!(le("2.5"), Some(0.0));
        assert_eq!(le("10"), Some(2.0));
        assert_eq!(le("+Inf"), Some(2.0));

        let fail_open = find(
            "apiserver_admission_webhook_fail_open_count",
            "sidecar-injector.example.com",
        );
        assert_eq!(fail_open[0].label("type"), Some("admit"));
        assert_eq!(fail_open[0].value, 1.0);
        // not rejected: no rejection series
        assert!(
            find(
                "apiserver_admission_webhook_rejection_count",
                "sidecar-injector.example.com"
            )
            .is_empty()
        );

        let deny = find(
            "apiserver_admission_webhook_rejection_count",
            "deny.example.com",
        );
        assert_eq!(deny[0].label("rejection_code"), Some("600"));
        assert_eq!(deny[0].label("error_type"), Some("no_error"));
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.record_webhook(&WebhookRecord {
            name: "we\"ird\\name\nx",
            kind: WebhookKind::Validating,
            operation: "CREATE",
            rejected: false,
            duration: Duration::ZERO,
            code: Some(200),
            error_type: None,
            rejection_code: None,
            fail_open: false,
        });
        let text = m.render();
        assert!(text.contains(r#"name="we\"ird\\name\nx""#));
        let (_, samples) = parse(&text);
        assert!(
            samples
                .iter()
                .all(|s| s.label("name") == Some("we\"ird\\name\nx"))
        );
    }

    #[test]
    fn shared_between_threads() {
        let m = std::sync::Arc::new(Metrics::new());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        m.record_request(&request("get", 200, 1));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        let (_, samples) = parse(&m.render());
        let total = samples
            .iter()
            .find(|s| s.name == "apiserver_request_total")
            .expect("total");
        assert_eq!(total.value, 1000.0);
    }

    #[test]
    fn verbs_are_reported_as_the_apiserver_does() {
        assert_eq!(reported_verb("create"), "POST");
        assert_eq!(reported_verb("update"), "PUT");
        assert_eq!(reported_verb("watch"), "WATCH");
        assert_eq!(reported_verb("deletecollection"), "DELETE");
    }
}
