//! `kube-rescue report`: one run's incident journal as a postmortem timeline: when the outage
//! was first seen, what was done, when writes, nodes and the apiserver recovered, how long each
//! finding lasted, and every event with its UTC time.

use std::fmt::Write as _;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::cluster::snapshot::age_between;
use crate::journal::{Entry, Event, Journal};

/// One finding's life in the journal.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FindingSpan {
    pub id: String,
    pub severity: String,
    pub subject: String,
    pub title: String,
    pub appeared: Timestamp,
    /// None: still raised when the journal ends.
    pub cleared: Option<Timestamp>,
    pub seconds: u64,
}

/// A recovery: the first good reading after a bad one.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recovery {
    pub what: String,
    pub at: Timestamp,
    pub detail: String,
    /// Seconds after the latest change done before it, if any.
    pub after_action_seconds: Option<u64>,
    /// Whether it lasted to the end of the journal: a recovery undone by a later bad reading
    /// of the same kind (nodes back for a moment in a repair loop) was a flap.
    pub held: bool,
}

/// What the report says, before it is rendered.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    pub version: u32,
    pub journal: String,
    pub context: String,
    pub server: String,
    pub started: Option<Timestamp>,
    pub ended: Option<Timestamp>,
    /// The first critical finding, or the apiserver's first bad status.
    pub outage_seen: Option<(Timestamp, String)>,
    pub actions: Vec<(Timestamp, String)>,
    pub recoveries: Vec<Recovery>,
    pub findings: Vec<FindingSpan>,
    pub entries: Vec<Entry>,
    /// Lines of the journal that could not be read: (line, why).
    pub unreadable: Vec<(usize, String)>,
}

fn describe(event: &Event) -> String {
    match event {
        Event::Started {
            context,
            server,
            read_only,
            version,
        } => format!(
            "kube-rescue {version} opened on {context} ({server}){}",
            if *read_only { ", read-only" } else { "" }
        ),
        Event::FindingAppeared {
            id,
            severity,
            subject,
            title,
        } => format!(
            "{} {id} raised: {title} ({subject})",
            severity.to_uppercase()
        ),
        Event::FindingCleared { id, subject, .. } => format!("{id} cleared ({subject})"),
        Event::Apiserver { status, detail } if detail.is_empty() => format!("apiserver {status}"),
        Event::Apiserver { status, detail } => format!("apiserver {status}: {detail}"),
        Event::WriteProbe { passing, detail } => format!(
            "write probe {}: {detail}",
            if *passing { "passes" } else { "fails" }
        ),
        Event::Nodes {
            ready,
            total,
            all_ready,
        } => format!(
            "{ready} of {total} nodes Ready{}",
            if *all_ready { " (all)" } else { "" }
        ),
        Event::Action {
            action,
            target,
            result,
            backup,
            ..
        } => {
            let backup = backup
                .as_ref()
                .map(|b| format!(", backup {b}"))
                .unwrap_or_default();
            format!("change {action} {target}: {result}{backup}")
        }
        Event::RunbookStep { runbook, step, how } => {
            format!("runbook {runbook}: step \"{step}\" done ({how})")
        }
        Event::Stopped => "kube-rescue closed".into(),
    }
}

/// `4s`, `2m05s`, `1h10m`.
fn span(d: Duration) -> String {
    crate::tui::rows::age(d)
}

/// `10:02:03Z`.
fn clock(t: Timestamp) -> String {
    crate::tui::rows::clock(t)
}

/// How long after a journal's last entry a change in the audit log still belongs to its run
/// (a screen killed while it applied a change wrote nothing more).
const AUDIT_SLACK: jiff::SignedDuration = jiff::SignedDuration::from_secs(120);

/// Adds to a journal the changes the audit log has from its run that it lacks: those made
/// from the command line meanwhile, and those whose run was cut short (the journal records a
/// change once it is verified; the audit log before it is sent). Same context, between the
/// journal's first entry and shortly after its last.
pub fn add_audit(journal: &mut Journal, log: &crate::remediate::audit::Log) {
    let context = journal.entries.iter().find_map(|e| match &e.event {
        Event::Started { context, .. } => Some(context.clone()),
        _ => None,
    });
    let (Some(context), Some(first), Some(last)) = (
        context,
        journal.entries.iter().map(|e| e.time).min(),
        journal.entries.iter().map(|e| e.time).max(),
    ) else {
        return;
    };
    let journalled = |backup: &Option<String>, action: &str, target: &str, at: Timestamp| {
        journal.entries.iter().any(|e| match &e.event {
            Event::Action {
                action: a,
                target: t,
                backup: b,
                ..
            } => {
                a == action
                    && t == target
                    && (backup.is_some() && b == backup
                        || backup.is_none() && age_between(at, e.time).as_secs() < 60)
            }
            _ => false,
        })
    };
    let mut added = Vec::new();
    for attempt in &log.attempts {
        let Ok(at) = attempt.time.parse::<Timestamp>() else {
            continue;
        };
        if attempt.context != context
            || at < first
            || last.checked_add(AUDIT_SLACK).is_ok_and(|end| at > end)
            || journalled(&attempt.backup, &attempt.action, &attempt.target, at)
        {
            continue;
        }
        added.push(Entry {
            time: at,
            event: Event::Action {
                action: attempt.action.clone(),
                target: attempt.target.clone(),
                result: attempt.result.clone(),
                backup: attempt.backup.clone(),
                verification: attempt.verification.clone(),
            },
        });
    }
    journal.entries.extend(added);
}

/// Reads the journal's story.
pub fn timeline(journal: &Journal) -> Timeline {
    // In time order: a change is journalled once verified, but dated when it was confirmed,
    // so it can land after what it caused.
    let mut entries = journal.entries.clone();
    entries.sort_by_key(|e| e.time);
    let mut t = Timeline {
        version: 1,
        journal: journal.path.display().to_string(),
        context: String::new(),
        server: String::new(),
        started: entries.first().map(|e| e.time),
        ended: entries.last().map(|e| e.time),
        outage_seen: None,
        actions: Vec::new(),
        recoveries: Vec::new(),
        findings: Vec::new(),
        entries: entries.clone(),
        unreadable: journal.unreadable.clone(),
    };
    let mut open: Vec<FindingSpan> = Vec::new();
    let mut last_done_action: Option<Timestamp> = None;
    // The latest bad reading per kind, waiting for its recovery.
    let mut writes_bad = false;
    let mut nodes_bad = false;
    let mut apiserver_bad = false;
    // One reading of a kind: good after bad is a recovery; bad after good undoes the recovery
    // of its kind before it (a flap).
    let reading = |t: &mut Timeline,
                   bad: &mut bool,
                   good: bool,
                   what: &str,
                   at: Timestamp,
                   detail: String,
                   last_done_action: Option<Timestamp>| {
        if good && *bad {
            t.recoveries.push(Recovery {
                what: what.into(),
                at,
                detail,
                after_action_seconds: last_done_action.map(|a| age_between(a, at).as_secs()),
                held: true,
            });
        } else if !good
            && !*bad
            && let Some(r) = t.recoveries.iter_mut().rev().find(|r| r.what == what)
        {
            r.held = false;
        }
        *bad = !good;
    };
    for entry in &entries {
        let at = entry.time;
        match &entry.event {
            Event::Started {
                context, server, ..
            } => {
                t.context = context.clone();
                t.server = server.clone();
            }
            Event::FindingAppeared {
                id,
                severity,
                subject,
                title,
            } => {
                if severity == "critical" && t.outage_seen.is_none() {
                    t.outage_seen = Some((at, format!("{id}: {title}")));
                }
                open.push(FindingSpan {
                    id: id.clone(),
                    severity: severity.clone(),
                    subject: subject.clone(),
                    title: title.clone(),
                    appeared: at,
                    cleared: None,
                    seconds: 0,
                });
            }
            Event::FindingCleared { id, subject, .. } => {
                if let Some(i) = open
                    .iter()
                    .position(|f| &f.id == id && &f.subject == subject)
                {
                    let mut f = open.remove(i);
                    f.cleared = Some(at);
                    f.seconds = age_between(f.appeared, at).as_secs();
                    t.findings.push(f);
                }
            }
            Event::Apiserver { status, detail } => {
                let ready = status == "ready";
                if !ready && t.outage_seen.is_none() {
                    t.outage_seen = Some((at, format!("apiserver {status} {detail}")));
                }
                let what = "apiserver ready";
                reading(
                    &mut t,
                    &mut apiserver_bad,
                    ready,
                    what,
                    at,
                    String::new(),
                    last_done_action,
                );
            }
            Event::WriteProbe { passing, detail } => {
                let detail = detail.clone();
                let what = "writes pass";
                reading(
                    &mut t,
                    &mut writes_bad,
                    *passing,
                    what,
                    at,
                    detail,
                    last_done_action,
                );
            }
            Event::Nodes {
                ready,
                total,
                all_ready,
            } => {
                let detail = format!("{ready} of {total}");
                let what = "nodes all Ready";
                reading(
                    &mut t,
                    &mut nodes_bad,
                    *all_ready,
                    what,
                    at,
                    detail,
                    last_done_action,
                );
            }
            Event::Action {
                action,
                target,
                result,
                ..
            } => {
                if result == "done" {
                    last_done_action = Some(at);
                }
                t.actions.push((at, format!("{action} {target}: {result}")));
            }
            Event::RunbookStep { .. } | Event::Stopped => {}
        }
    }
    let end = t.ended;
    for mut f in open {
        f.seconds = end.map_or(0, |e| age_between(f.appeared, e).as_secs());
        t.findings.push(f);
    }
    t.findings.sort_by_key(|f| f.appeared);
    t
}

pub fn json(journal: &Journal) -> String {
    serde_json::to_string_pretty(&timeline(journal)).unwrap_or_default() + "\n"
}

/// The timeline as Markdown for the postmortem document.
pub fn markdown(journal: &Journal) -> String {
    let t = timeline(journal);
    let mut out = String::new();
    let title = if t.context.is_empty() {
        "Incident timeline".to_string()
    } else {
        format!("Incident timeline: {}", t.context)
    };
    let _ = writeln!(out, "# {title}\n");
    if !t.server.is_empty() {
        let _ = writeln!(out, "- Cluster: `{}` ({})", t.context, t.server);
    }
    if let (Some(s), Some(e)) = (t.started, t.ended) {
        let _ = writeln!(
            out,
            "- Recorded: {} to {} UTC ({})",
            s.strftime("%Y-%m-%d %H:%M:%S"),
            e.strftime("%H:%M:%S"),
            span(age_between(s, e))
        );
    }
    let _ = writeln!(out, "- Journal: `{}`", t.journal);
    if !t.unreadable.is_empty() {
        let lines: Vec<String> = t.unreadable.iter().map(|(n, _)| n.to_string()).collect();
        let _ = writeln!(
            out,
            "- Unreadable lines, left out: {} (first: {})",
            lines.join(", "),
            t.unreadable[0].1
        );
    }

    let _ = writeln!(out, "\n## Summary\n");
    match &t.outage_seen {
        Some((at, what)) => {
            let _ = writeln!(out, "- **Outage first seen** {}: {what}", clock(*at));
        }
        None => {
            let _ = writeln!(
                out,
                "- No critical finding and no apiserver failure was seen."
            );
        }
    }
    for (at, what) in &t.actions {
        let _ = writeln!(out, "- **Change** {}: {what}", clock(*at));
    }
    if t.actions.is_empty() {
        let _ = writeln!(out, "- No change was made from kube-rescue.");
    }
    // The recoveries that lasted; the flaps stay in the timeline below.
    for r in t.recoveries.iter().filter(|r| r.held) {
        let after = r
            .after_action_seconds
            .map(|s| format!(" ({} after the change)", span(Duration::from_secs(s))))
            .unwrap_or_default();
        let detail = if r.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", r.detail)
        };
        let _ = writeln!(
            out,
            "- **Recovered: {}** {}{after}{detail}",
            r.what,
            clock(r.at)
        );
    }
    let still: Vec<&FindingSpan> = t.findings.iter().filter(|f| f.cleared.is_none()).collect();
    if !still.is_empty() {
        let ids: Vec<&str> = still.iter().map(|f| f.id.as_str()).collect();
        let _ = writeln!(out, "- **Still raised at the end**: {}", ids.join(", "));
    }

    if !t.findings.is_empty() {
        let _ = writeln!(out, "\n## Findings\n");
        let _ = writeln!(out, "| finding | subject | raised | cleared | lasted |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for f in &t.findings {
            let _ = writeln!(
                out,
                "| {} {} | {} | {} | {} | {} |",
                f.severity.to_uppercase(),
                f.id,
                f.subject,
                clock(f.appeared),
                f.cleared.map_or("still raised".into(), clock),
                span(Duration::from_secs(f.seconds))
            );
        }
    }

    let _ = writeln!(out, "\n## Timeline\n");
    let _ = writeln!(out, "| time (UTC) | since start | event |");
    let _ = writeln!(out, "|---|---|---|");
    for e in &t.entries {
        let since = t
            .started
            .map(|s| format!("+{}", span(age_between(s, e.time))))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {since} | {} |",
            clock(e.time),
            describe(&e.event).replace('|', "\\|")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn at(t0: Timestamp, s: i64) -> Timestamp {
        t0 + SignedDuration::from_secs(s)
    }

    #[test]
    fn the_story_of_an_outage() {
        let t0: Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        let e = |s, event| Entry {
            time: at(t0, s),
            event,
        };
        let journal = Journal {
            path: "j.jsonl".into(),
            entries: vec![
                e(
                    0,
                    Event::Started {
                        context: "prod".into(),
                        server: "https://x".into(),
                        read_only: false,
                        version: "0.1.0".into(),
                    },
                ),
                e(
                    2,
                    Event::FindingAppeared {
                        id: "webhook-blocking-writes".into(),
                        severity: "critical".into(),
                        subject: "ValidatingWebhookConfiguration opa".into(),
                        title: "Writes fail because of webhook w".into(),
                    },
                ),
                e(
                    2,
                    Event::WriteProbe {
                        passing: false,
                        detail: "default: failed".into(),
                    },
                ),
                e(
                    20,
                    Event::Nodes {
                        ready: 0,
                        total: 6,
                        all_ready: false,
                    },
                ),
                e(
                    60,
                    Event::Action {
                        action: "delete".into(),
                        target: "validatingwebhookconfiguration/opa".into(),
                        result: "done".into(),
                        backup: Some("/b.yaml".into()),
                        verification: None,
                    },
                ),
                e(
                    62,
                    Event::WriteProbe {
                        passing: true,
                        detail: "default: passed".into(),
                    },
                ),
                e(
                    65,
                    Event::FindingCleared {
                        id: "webhook-blocking-writes".into(),
                        subject: "ValidatingWebhookConfiguration opa".into(),
                        title: "Writes fail because of webhook w".into(),
                    },
                ),
                e(
                    90,
                    Event::Nodes {
                        ready: 6,
                        total: 6,
                        all_ready: true,
                    },
                ),
                e(95, Event::Stopped),
            ],
            unreadable: vec![],
        };
        let t = timeline(&journal);
        assert_eq!(t.outage_seen.as_ref().unwrap().0, at(t0, 2));
        let recoveries: Vec<(&str, Option<u64>)> = t
            .recoveries
            .iter()
            .map(|r| (r.what.as_str(), r.after_action_seconds))
            .collect();
        assert_eq!(
            recoveries,
            [("writes pass", Some(2)), ("nodes all Ready", Some(30))]
        );
        assert_eq!(t.findings[0].seconds, 63);
        let md = markdown(&journal);
        for line in [
            "- **Outage first seen** 10:00:02Z: webhook-blocking-writes: Writes fail because of webhook w",
            "- **Change** 10:01:00Z: delete validatingwebhookconfiguration/opa: done",
            "- **Recovered: writes pass** 10:01:02Z (2s after the change): default: passed",
            "- **Recovered: nodes all Ready** 10:01:30Z (30s after the change): 6 of 6",
            "| CRITICAL webhook-blocking-writes | ValidatingWebhookConfiguration opa | 10:00:02Z | 10:01:05Z | 1m03s |",
            "| 10:01:00Z | +1m00s | change delete validatingwebhookconfiguration/opa: done, backup /b.yaml |",
        ] {
            assert!(md.contains(line), "missing {line:?} in\n{md}");
        }
        // Journalled out of order (the change after its effects): read in time order.
        let mut shuffled = journal.clone();
        let action = shuffled.entries.remove(4);
        shuffled.entries.insert(6, action);
        assert_eq!(timeline(&shuffled).recoveries, t.recoveries);
        let json: serde_json::Value = serde_json::from_str(&super::json(&journal)).unwrap();
        assert_eq!(json["recoveries"][1]["afterActionSeconds"], 30);
        assert_eq!(json["entries"][4]["event"], "action");
    }

    #[test]
    fn nodes_back_for_a_moment_in_a_repair_loop_are_not_the_recovery() {
        let t0: Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        let nodes = |s, ready| Entry {
            time: at(t0, s),
            event: Event::Nodes {
                ready,
                total: 6,
                all_ready: ready == 6,
            },
        };
        let journal = Journal {
            path: "j.jsonl".into(),
            entries: vec![
                nodes(0, 0),
                // Auto-repair brings them back, and they go again.
                nodes(30, 6),
                nodes(50, 0),
                Entry {
                    time: at(t0, 60),
                    event: Event::Action {
                        action: "fail-open".into(),
                        target: "validatingwebhookconfiguration/opa".into(),
                        result: "done".into(),
                        backup: None,
                        verification: None,
                    },
                },
                nodes(75, 6),
                Entry {
                    time: at(t0, 80),
                    event: Event::Stopped,
                },
            ],
            unreadable: vec![],
        };
        let t = timeline(&journal);
        let held: Vec<(bool, Option<u64>)> = t
            .recoveries
            .iter()
            .map(|r| (r.held, r.after_action_seconds))
            .collect();
        assert_eq!(held, [(false, None), (true, Some(15))]);
        let md = markdown(&journal);
        let summary: Vec<&str> = md.lines().filter(|l| l.contains("**Recovered")).collect();
        assert_eq!(
            summary,
            ["- **Recovered: nodes all Ready** 10:01:15Z (15s after the change): 6 of 6"],
            "{md}"
        );
        // The flap is still in the timeline.
        assert!(md.contains("| 10:00:30Z |"), "{md}");
    }

    #[test]
    fn changes_the_journal_lacks_come_from_the_audit_log() {
        use crate::remediate::audit::{self, AuditRecord, RecordKind};
        let t0: Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        let e = |s, event| Entry {
            time: at(t0, s),
            event,
        };
        let mut journal = Journal {
            path: "j.jsonl".into(),
            entries: vec![
                e(
                    0,
                    Event::Started {
                        context: "prod".into(),
                        server: "https://x".into(),
                        read_only: false,
                        version: "0.1.0".into(),
                    },
                ),
                e(
                    40,
                    Event::Action {
                        action: "delete".into(),
                        target: "validatingwebhookconfiguration/a".into(),
                        result: "done".into(),
                        backup: Some("/a.yaml".into()),
                        verification: None,
                    },
                ),
                e(60, Event::Stopped),
            ],
            unreadable: vec![],
        };
        let state = tempfile::tempdir().unwrap();
        let write = |kind, id: &str, context: &str, target: &str, s: i64, backup: &str| {
            let mut r = AuditRecord::new(
                kind,
                Some(id.into()),
                ("oncall", context, "https://x"),
                if target.ends_with("/a") {
                    "delete"
                } else {
                    "fail-open"
                },
                target,
                "u",
                if kind == RecordKind::Attempt {
                    "attempted"
                } else {
                    "done"
                }
                .into(),
            );
            r.time = at(t0, s).to_string();
            r.backup = Some(backup.into());
            audit::append(state.path(), &r).unwrap();
        };
        // Already in the journal; interrupted in this run; another cluster; long after.
        write(
            RecordKind::Attempt,
            "1",
            "prod",
            "validatingwebhookconfiguration/a",
            38,
            "/a.yaml",
        );
        write(
            RecordKind::Outcome,
            "1",
            "prod",
            "validatingwebhookconfiguration/a",
            39,
            "/a.yaml",
        );
        write(
            RecordKind::Attempt,
            "2",
            "prod",
            "validatingwebhookconfiguration/b",
            70,
            "/b.yaml",
        );
        write(
            RecordKind::Attempt,
            "3",
            "staging",
            "validatingwebhookconfiguration/c",
            30,
            "/c.yaml",
        );
        write(
            RecordKind::Attempt,
            "4",
            "prod",
            "validatingwebhookconfiguration/d",
            900,
            "/d.yaml",
        );
        add_audit(&mut journal, &audit::read(state.path()));
        let md = markdown(&journal);
        assert!(
            md.contains("fail-open validatingwebhookconfiguration/b: outcome unknown: interrupted"),
            "{md}"
        );
        for absent in ["/c", "/d"] {
            assert!(
                !md.contains(&format!("validatingwebhookconfiguration{absent}")),
                "{md}"
            );
        }
        assert_eq!(
            md.matches("delete validatingwebhookconfiguration/a")
                .count(),
            2,
            "{md}"
        );
    }
}
