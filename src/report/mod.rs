//! The output of `kube-rescue check`: text for a terminal, JSON as DESIGN.md fixes it, and
//! Markdown for tickets; and the exit code that goes with the findings.

pub mod audit;
pub mod plan;
pub mod timeline;

use std::fmt::Write as _;

use serde::Serialize;

use crate::diagnose::{Finding, Severity, Subject, Summary};

/// Where the findings came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Origin {
    Cluster { context: String, server: String },
    Files { paths: Vec<String> },
}

/// One finding as `check --output json` prints it.
#[derive(Serialize)]
struct JsonFinding<'a> {
    id: &'a str,
    severity: Severity,
    subject: &'a Subject,
    title: &'a str,
    evidence: &'a [String],
    runbook: &'a str,
    actions: &'a [String],
}

#[derive(Serialize)]
struct JsonReport<'a> {
    version: u32,
    source: &'a Origin,
    findings: Vec<JsonFinding<'a>>,
    summary: Summary,
}

/// The exit code of `check`: 0 nothing at warning or above, 1 warnings, 2 a critical finding.
pub fn exit_code(findings: &[Finding]) -> u8 {
    match findings.iter().map(|f| f.severity).max() {
        Some(Severity::Critical) => 2,
        Some(Severity::Warning) => 1,
        _ => 0,
    }
}

/// `check --output json`: one object, as DESIGN.md shows it.
pub fn json(origin: &Origin, findings: &[Finding]) -> String {
    let report = JsonReport {
        version: 1,
        source: origin,
        findings: findings
            .iter()
            .map(|f| JsonFinding {
                id: &f.id,
                severity: f.severity,
                subject: &f.subject,
                title: &f.title,
                evidence: &f.evidence,
                runbook: &f.runbook,
                actions: &f.actions,
            })
            .collect(),
        summary: Summary::of(findings),
    };
    serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The `kube-rescue fix` command that plans an action on a finding's subject (it changes
/// nothing until confirmed), when the subject is something `fix` acts on.
pub fn fix_command(action: &str, subject: &Subject) -> Option<String> {
    let short = match subject.kind.as_str() {
        "ValidatingWebhookConfiguration" => "vwc",
        "MutatingWebhookConfiguration" => "mwc",
        "Node" => "node",
        _ => return None,
    };
    let mut command = format!("kube-rescue fix {action} {short}/{}", subject.name);
    let per_webhook = [
        "fail-open",
        "exclude-system-namespaces",
        "set-timeout",
        "restart-backend",
    ];
    if let Some(webhook) = &subject.webhook
        && per_webhook.contains(&action)
    {
        command.push_str(&format!(" --webhook {webhook}"));
    }
    if action == "set-timeout" {
        command.push_str(" --seconds 3");
    }
    Some(command)
}

/// What an action does, in words, for the "first action to consider" line.
pub fn describe_action(action: &str, subject: &Subject) -> String {
    let webhook = subject
        .webhook
        .as_deref()
        .map(|w| format!(" on {w}"))
        .unwrap_or_default();
    match action {
        "fail-open" => format!(
            "fail-open: set failurePolicy Ignore{webhook}, so writes pass while its backend is down"
        ),
        "exclude-system-namespaces" => format!(
            "exclude-system-namespaces: keep kube-system, kube-node-lease and kube-public out of the namespaceSelector{webhook}"
        ),
        "delete" => format!(
            "delete: remove the {} {} (backed up first)",
            subject.kind, subject.name
        ),
        "set-timeout" => format!("set-timeout: lower timeoutSeconds{webhook} (e.g. to 3)"),
        "restart-backend" => format!(
            "restart-backend: rollout-restart the Deployment behind{}",
            if webhook.is_empty() {
                " the webhook".to_string()
            } else {
                webhook.trim_start_matches(" on").to_string()
            }
        ),
        "cordon" => format!("cordon: mark {} unschedulable", subject.name),
        "uncordon" => format!("uncordon: make {} schedulable again", subject.name),
        other => other.to_string(),
    }
}

fn subject_line(s: &Subject) -> String {
    let mut line = format!("{} {}", s.kind, s.name);
    if let Some(ns) = &s.namespace {
        line = format!("{} {ns}/{}", s.kind, s.name);
    }
    if let Some(w) = &s.webhook {
        line.push_str(&format!(" / {w}"));
    }
    line
}

/// Whether text output may use colour: only on a terminal, and never with NO_COLOR set.
pub fn use_colour(is_terminal: bool, no_colour: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_colour.is_none_or(|v| v.is_empty())
}

fn origin_line(origin: &Origin) -> String {
    match origin {
        Origin::Cluster { context, server } => format!("cluster {context} ({server})"),
        Origin::Files { paths } => format!("files {}", paths.join(", ")),
    }
}

/// `check --output text`: grouped by severity, each finding with its evidence and the first
/// action to consider.
pub fn text(origin: &Origin, findings: &[Finding], colour: bool) -> String {
    let paint = |code: &str, s: &str| {
        if colour {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let mut out = String::new();
    let _ = writeln!(out, "kube-rescue check: {}", origin_line(origin));
    if findings.is_empty() {
        let _ = writeln!(out, "\n{}", paint("32", "No findings."));
    }
    for severity in [Severity::Critical, Severity::Warning, Severity::Info] {
        let group: Vec<&Finding> = findings.iter().filter(|f| f.severity == severity).collect();
        if group.is_empty() {
            continue;
        }
        let (label, code) = match severity {
            Severity::Critical => ("CRITICAL", "1;31"),
            Severity::Warning => ("WARNING", "1;33"),
            Severity::Info => ("INFO", "1;36"),
        };
        let _ = writeln!(
            out,
            "\n{}",
            paint(code, &format!("{label} ({})", group.len()))
        );
        for f in group {
            let _ = writeln!(out, "  {}  {}", paint("1", &f.id), subject_line(&f.subject));
            let _ = writeln!(out, "    {}", f.title);
            for e in &f.evidence {
                let _ = writeln!(out, "      - {e}");
            }
            if let Some(first) = f.actions.first() {
                let _ = writeln!(
                    out,
                    "    first action to consider: {}",
                    describe_action(first, &f.subject)
                );
                if let Some(command) = fix_command(first, &f.subject) {
                    let _ = writeln!(out, "    plan it: {command}");
                }
            }
            if !f.runbook.is_empty() {
                let _ = writeln!(out, "    runbook: {}", f.runbook);
            }
        }
    }
    let s = Summary::of(findings);
    let _ = writeln!(
        out,
        "\nsummary: {} critical, {} warning, {} info",
        s.critical, s.warning, s.info
    );
    out
}

/// `check --output markdown`: for a ticket or a postmortem.
pub fn markdown(origin: &Origin, findings: &[Finding]) -> String {
    let mut out = String::new();
    let s = Summary::of(findings);
    let _ = writeln!(
        out,
        "# kube-rescue check\n\nSource: {}\n",
        origin_line(origin)
    );
    let _ = writeln!(
        out,
        "**{} critical, {} warning, {} info**",
        s.critical, s.warning, s.info
    );
    for severity in [Severity::Critical, Severity::Warning, Severity::Info] {
        let group: Vec<&Finding> = findings.iter().filter(|f| f.severity == severity).collect();
        if group.is_empty() {
            continue;
        }
        let title = match severity {
            Severity::Critical => "Critical",
            Severity::Warning => "Warning",
            Severity::Info => "Info",
        };
        let _ = writeln!(out, "\n## {title}");
        for f in group {
            let _ = writeln!(
                out,
                "\n### `{}` — {}\n\n{}\n",
                f.id,
                subject_line(&f.subject),
                f.title
            );
            for e in &f.evidence {
                let _ = writeln!(out, "- {}", e.replace('|', "\\|"));
            }
            if !f.actions.is_empty() {
                let actions: Vec<String> = f.actions.iter().map(|a| format!("`{a}`")).collect();
                let _ = writeln!(out, "\nActions: {}", actions.join(", "));
            }
            if !f.runbook.is_empty() {
                let _ = writeln!(out, "Runbook: `{}`", f.runbook);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(id: &str, severity: Severity) -> Finding {
        Finding {
            id: id.into(),
            severity,
            subject: Subject::webhook(
                "ValidatingWebhookConfiguration",
                "opa-validating-webhook",
                "validating-webhook.openpolicyagent.org",
            ),
            title: "writes fail".into(),
            evidence: vec!["probe kube-system: context deadline exceeded after 10.0 s".into()],
            runbook: "webhook-outage".into(),
            actions: vec!["fail-open".into(), "delete".into()],
            caused_by: Some("x".into()),
        }
    }

    #[test]
    fn json_has_the_design_shape() {
        let origin = Origin::Cluster {
            context: "c".into(),
            server: "https://s".into(),
        };
        let text = json(
            &origin,
            &[finding("webhook-blocking-writes", Severity::Critical)],
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(
            v["source"],
            serde_json::json!({"kind": "cluster", "context": "c", "server": "https://s"})
        );
        let f = &v["findings"][0];
        assert_eq!(f["severity"], "critical");
        assert_eq!(
            f["subject"],
            serde_json::json!({"kind": "ValidatingWebhookConfiguration", "name": "opa-validating-webhook", "webhook": "validating-webhook.openpolicyagent.org"})
        );
        assert_eq!(f["actions"], serde_json::json!(["fail-open", "delete"]));
        assert!(f.get("caused_by").is_none());
        assert_eq!(
            v["summary"],
            serde_json::json!({"critical": 1, "warning": 0, "info": 0})
        );
        let files = json(
            &Origin::Files {
                paths: vec!["a.yaml".into()],
            },
            &[],
        );
        let v: serde_json::Value = serde_json::from_str(&files).unwrap();
        assert_eq!(
            v["source"],
            serde_json::json!({"kind": "files", "paths": ["a.yaml"]})
        );
    }

    #[test]
    fn exit_codes_follow_the_worst_finding() {
        assert_eq!(exit_code(&[]), 0);
        assert_eq!(exit_code(&[finding("a", Severity::Info)]), 0);
        assert_eq!(
            exit_code(&[
                finding("a", Severity::Warning),
                finding("b", Severity::Info)
            ]),
            1
        );
        assert_eq!(
            exit_code(&[
                finding("a", Severity::Warning),
                finding("b", Severity::Critical)
            ]),
            2
        );
    }

    #[test]
    fn text_groups_and_colours_only_when_asked() {
        let origin = Origin::Files {
            paths: vec!["a.yaml".into()],
        };
        let findings = [
            finding("webhook-long-timeout", Severity::Warning),
            finding("webhook-blocking-writes", Severity::Critical),
        ];
        let plain = text(&origin, &findings, false);
        assert!(!plain.contains('\x1b'));
        let critical = plain.find("CRITICAL (1)").unwrap();
        let warning = plain.find("WARNING (1)").unwrap();
        assert!(critical < warning);
        assert!(plain.contains("first action to consider: fail-open: set failurePolicy Ignore on validating-webhook.openpolicyagent.org"));
        assert!(
            plain.contains("    plan it: kube-rescue fix fail-open vwc/opa-validating-webhook --webhook validating-webhook.openpolicyagent.org\n"),
            "{plain}"
        );
        let node = Subject::new("Node", "n1");
        assert_eq!(
            fix_command("cordon", &node).as_deref(),
            Some("kube-rescue fix cordon node/n1")
        );
        assert_eq!(
            fix_command("cordon", &Subject::new("APIService", "x")),
            None
        );
        assert!(text(&origin, &findings, true).contains("\x1b[1;31m"));
        assert!(use_colour(true, None));
        assert!(!use_colour(true, Some(std::ffi::OsStr::new("1"))));
        assert!(use_colour(true, Some(std::ffi::OsStr::new(""))));
        assert!(!use_colour(false, None));
        let md = markdown(&origin, &findings);
        assert!(md.contains("## Critical") && md.contains("### `webhook-blocking-writes`"));
    }
}
