//! `kube-rescue runbooks list | show | lint` as a user runs them, the shipped runbooks against
//! the findings they answer, and team runbooks that override shipped ones.

use std::path::Path;
use std::process::{Command, Output};

use kube_rescue::runbook::{Catalog, FINDING_IDS};

const BROKEN: &str = "tests/fixtures/runbooks/broken";
const TEAM: &str = "tests/fixtures/runbooks/team";

/// Runs the binary from the crate's folder (so that relative paths print as given).
fn run(args: &[&str]) -> Output {
    let logs = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_kube-rescue"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .arg("--log-file")
        .arg(logs.path().join("kube-rescue.log"))
        .env("NO_COLOR", "1")
        .output()
        .expect("kube-rescue runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_shipped_runbooks_lint_clean_and_answer_every_finding() {
    let out = run(&["runbooks", "lint", "runbooks", "--complete"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(stdout(&out), "7 runbooks, no errors\n");
    let catalog = Catalog::shipped();
    for id in FINDING_IDS {
        assert!(
            !catalog.for_finding_id(id, None).is_empty(),
            "no shipped runbook answers {id}"
        );
    }
}

#[test]
fn lint_reports_every_broken_runbook_with_file_line_and_reason() {
    let out = run(&["runbooks", "lint", BROKEN]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let findings = FINDING_IDS.join(", ");
    let expected = [
        format!(
            "{BROKEN}/action-without-heading.md:9: a step block before the first step: give it a `## ` heading of its own"
        ),
        format!(
            "{BROKEN}/bad-id.md:2: id \"Bad_ID\" is not kebab-case (lowercase letters and digits joined by single dashes)"
        ),
        format!("{BROKEN}/bad-seconds.md:11: bad seconds 45: give a whole number from 1 to 30"),
        format!(
            "{BROKEN}/bad-yaml.md:5: front matter: findings: illegal placement of ':' indicator"
        ),
        format!(
            "{BROKEN}/duplicate-a.md:2: duplicate id \"duplicate\": also in {BROKEN}/duplicate-b.md"
        ),
        format!(
            "{BROKEN}/duplicate-b.md:3: duplicate id \"duplicate\": also in {BROKEN}/duplicate-a.md"
        ),
        format!("{BROKEN}/missing-title.md:5: missing required field `title`"),
        format!(
            "{BROKEN}/no-front-matter.md:1: no front matter: a runbook starts with a `---` line, then YAML (id, title, findings, severity), then `---`"
        ),
        format!("{BROKEN}/no-steps.md:6: no steps: each step is a level-2 heading (`## `)"),
        format!(
            "{BROKEN}/unclosed-front-matter.md:1: the front matter opened here is never closed: end it with a `---` line"
        ),
        format!(
            "{BROKEN}/unknown-action.md:12: unknown action \"reboot-cluster\" (known: delete, fail-open, exclude-system-namespaces, set-timeout, restart-backend, cordon, uncordon)"
        ),
        format!(
            "{BROKEN}/unknown-applies-to.md:6: unknown applies-to \"openshift\" (use gke, eks, aks, self-managed, any)"
        ),
        format!(
            "{BROKEN}/unknown-check.md:11: unknown check kind \"vanished\" (use gone or present)"
        ),
        format!(
            "{BROKEN}/unknown-finding.md:6: unknown finding id \"webhook-is-sad\" (known: {findings})"
        ),
    ];
    let printed = stdout(&out);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines, expected, "stdout:\n{printed}");
    assert_eq!(stderr(&out), "14 runbooks, 14 errors\n");
    // Every fixture is there to show one error: a new file without its expected line fails.
    for file in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(BROKEN)).unwrap() {
        let name = file.unwrap().file_name().to_string_lossy().into_owned();
        let prefix = format!("{BROKEN}/{name}:");
        assert_eq!(
            expected.iter().filter(|l| l.starts_with(&prefix)).count(),
            1,
            "{name}: one expected error per fixture"
        );
    }
}

#[test]
fn lint_of_a_folder_that_cannot_be_read_could_not_run() {
    let out = run(&["runbooks", "lint", "tests/fixtures/runbooks/no-such-folder"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).starts_with(
            "kube-rescue: could not read the runbook folder tests/fixtures/runbooks/no-such-folder: "
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1);
}

#[test]
fn show_renders_a_shipped_runbook_with_numbered_steps_actions_and_checks() {
    let out = run(&["runbooks", "show", "webhook-outage"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("An admission webhook is blocking writes\n====="),
        "{text}"
    );
    assert!(
        text.contains("webhook-outage · critical · applies to any\n"),
        "{text}"
    );
    let order = [
        "1. Confirm which webhook blocks writes\n",
        "\n       kubectl create configmap kube-rescue-probe -n kube-system --dry-run=server\n",
        "2. Restart the webhook's backend\n",
        "3. Fail open\n",
        "   Action: fail-open\n     set failurePolicy Ignore, so writes pass while its backend is down\n   Check: `kube-rescue check` no longer reports webhook-blocking-writes\n",
        "4. Keep the system namespaces out of it\n",
        "   Action: exclude-system-namespaces\n",
        "5. Delete the webhook configuration (last resort)\n",
        "   Action: delete\n     remove the webhook configuration the finding names (backed up first)\n",
        "7. After the incident\n",
    ];
    let mut from = 0;
    for piece in order {
        let at = text[from..]
            .find(piece)
            .unwrap_or_else(|| panic!("{piece:?} not found in order in:\n{text}"));
        from += at + piece.len();
    }
    assert!(!text.contains("```"), "fences are not shown:\n{text}");
    // Prose wraps at 80 columns; only code blocks and inline code that is longer by itself
    // stay whole, so that commands can be copied.
    let long: Vec<&str> = text
        .lines()
        .filter(|l| l.chars().count() > 80 && !l.starts_with("    ") && !l.contains('`'))
        .collect();
    assert!(long.is_empty(), "lines over 80 columns: {long:#?}");
}

#[test]
fn show_of_an_unknown_id_names_the_known_ones() {
    let out = run(&["runbooks", "show", "webhook-panic"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).is_empty());
    assert_eq!(
        stderr(&out),
        "kube-rescue: no runbook \"webhook-panic\"; known: aggregated-api, apiserver-down, \
         apiserver-not-ready, apiserver-slow, node-repair-loop, webhook-hardening, webhook-outage\n"
    );
}

#[test]
fn a_team_runbook_overrides_the_shipped_one_with_the_same_id() {
    let out = run(&["runbooks", "show", "webhook-outage", "--runbooks", TEAM]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("Webhook outage (platform team edition)\n"),
        "{text}"
    );
    assert!(text.contains("1. Fail open the policy webhook\n"), "{text}");
    assert!(!text.contains("Delete the webhook configuration"), "{text}");
    // The flag may come before the command too; the other runbooks stay.
    let out = run(&["--runbooks", TEAM, "runbooks", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list = stdout(&out);
    assert!(
        list.contains(&format!(
            "webhook-outage       Webhook outage (platform team edition)\n\
             \x20                    findings: webhook-blocking-writes, webhook-backend-unavailable\n\
             \x20                    source: {TEAM}/webhook-outage.md (overrides shipped)\n"
        )),
        "{list}"
    );
    assert!(
        list.contains("node-repair-loop     Nodes are NotReady"),
        "{list}"
    );
    assert_eq!(list.matches("webhook-outage ").count(), 1, "{list}");
}

#[test]
fn list_shows_broken_runbooks_with_their_errors_and_goes_on_without_a_missing_folder() {
    let out = run(&[
        "runbooks",
        "list",
        "--runbooks",
        BROKEN,
        "--runbooks",
        "tests/fixtures/runbooks/no-such-folder",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list = stdout(&out);
    assert!(
        list.contains(&format!(
            "error: {BROKEN}/unknown-action.md:12: unknown action \"reboot-cluster\""
        )),
        "{list}"
    );
    assert!(list.contains("no-front-matter"), "{list}");
    assert!(list.contains("(broken)"), "{list}");
    assert!(list.contains("webhook-outage"), "{list}");
    assert!(
        stderr(&out).contains("tests/fixtures/runbooks/no-such-folder"),
        "{}",
        stderr(&out)
    );
    // A broken runbook shown: its errors on stderr, what could be read on stdout, exit 1.
    let out = run(&["runbooks", "show", "unknown-action", "--runbooks", BROKEN]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown-action.md:12: unknown action"));
    assert!(
        stdout(&out).contains("1. Reboot everything"),
        "{}",
        stdout(&out)
    );
}

/// The runbook ids the diagnosis links, read from its source: `runbook: "ID"` and
/// `const ..._RUNBOOK: &str = "ID"`.
fn linked_runbook_ids() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/diagnose");
    let mut ids = Vec::new();
    for file in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
        // Tests build findings of their own; only the rules' links count.
        let rules = text.split("#[cfg(test)]").next().unwrap_or("");
        for line in rules.lines() {
            let line = line.trim();
            let links = line.starts_with("runbook: \"")
                || (line.starts_with("const ") && line.contains("_RUNBOOK: &str = \""));
            let quoted = line.split('"').nth(1).filter(|_| links);
            if let Some(id) = quoted {
                ids.push(id.to_string());
            }
        }
    }
    ids.sort();
    ids.dedup();
    ids
}

#[test]
fn every_runbook_the_diagnosis_links_exists() {
    let linked = linked_runbook_ids();
    for id in [
        "aggregated-api",
        "apiserver-down",
        "apiserver-not-ready",
        "apiserver-slow",
        "node-repair-loop",
        "webhook-hardening",
        "webhook-outage",
    ] {
        assert!(
            linked.contains(&id.to_string()),
            "{id} not found in {linked:?}"
        );
    }
    let catalog = Catalog::shipped();
    for id in &linked {
        let entry = catalog
            .get(id)
            .unwrap_or_else(|| panic!("the diagnosis links runbook {id}, which is not shipped"));
        assert!(!entry.is_broken(), "{id}: {:?}", entry.problems);
    }
}

#[test]
fn offline_findings_link_shipped_runbooks_that_answer_them() {
    let manifests =
        kube_rescue::manifests::load(&[Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/manifests/opa-tutorial-v1.yaml")])
        .unwrap();
    let inventory = kube_rescue::diagnose::Inventory::from_manifests(manifests.objects).unwrap();
    let findings = kube_rescue::diagnose::diagnose(&kube_rescue::diagnose::Context {
        inventory: &inventory,
        live: None,
        now: jiff::Timestamp::now(),
    });
    assert!(!findings.is_empty());
    let catalog = Catalog::shipped();
    for finding in &findings {
        let runbooks = catalog.for_finding(finding);
        assert_eq!(runbooks[0].id, finding.runbook, "{}", finding.id);
        let first = runbooks[0].runbook.as_ref().unwrap();
        assert!(
            first.findings.contains(&finding.id),
            "runbook {} does not list {}",
            first.id,
            finding.id
        );
    }
}

#[test]
fn the_readme_example_runbook_lints_clean_and_shows_as_the_readme_says() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let example = readme
        .split_once("````markdown\n")
        .and_then(|(_, rest)| rest.split_once("\n````\n"))
        .map(|(example, _)| format!("{example}\n"))
        .expect("the README has a ````markdown example runbook");
    let shown = readme
        .split_once("--runbooks DIR` then shows:\n\n```\n")
        .and_then(|(_, rest)| rest.split_once("```\n"))
        .map(|(shown, _)| shown.to_string())
        .expect("the README shows the example rendered");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("webhook-outage.md"), example).unwrap();
    let folder = dir.path().to_string_lossy().into_owned();
    let out = run(&["runbooks", "lint", &folder]);
    assert_eq!(stdout(&out), "1 runbook, no errors\n", "{}", stderr(&out));
    let out = run(&["runbooks", "show", "webhook-outage", "--runbooks", &folder]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), shown);
}
