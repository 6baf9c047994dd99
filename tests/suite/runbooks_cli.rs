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
    assert_eq!(stdout(&out), "11 runbooks, no errors\n");
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
        "kube-rescue: no runbook \"webhook-panic\"; known: aggregated-api, apiserver-credentials, \
         apiserver-down, apiserver-not-ready, apiserver-overloaded, apiserver-slow, node-repair-loop, \
         observation-incomplete, policy-denial, webhook-hardening, webhook-outage\n"
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
            "webhook-outage          Webhook outage (platform team edition)\n\
             \x20                       findings: webhook-blocking-writes, webhook-backend-unavailable\n\
             \x20                       source: {TEAM}/webhook-outage.md (overrides shipped)\n"
        )),
        "{list}"
    );
    assert!(
        list.contains("node-repair-loop        Nodes are NotReady"),
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

/// The most of one runbook file that is read, and the deepest lists and quotes may nest, as the
/// README states them.
const SIZE_CAP: usize = 1024 * 1024;
const NESTING_CAP: usize = 16;
const STEPS_CAP: usize = 100;

/// Front matter and a first step: lines 1 to 8 (the step's heading is line 7).
fn head(id: &str) -> String {
    format!(
        "---\nid: {id}\ntitle: Team {id}\nfindings: [webhook-blocking-writes]\nseverity: critical\n---\n## Fail open\n\n"
    )
}

/// A 9 MB runbook: prose, a long code block and a long single line after its first step.
fn huge_runbook(id: &str) -> String {
    let mut text = head(id);
    let line = "Page the platform team on #platform-oncall before you change anything at all.\n";
    while text.len() < 3_000_000 {
        text.push_str(line);
    }
    text.push_str("\n```sh\n");
    while text.len() < 6_000_000 {
        text.push_str("kubectl get validatingwebhookconfigurations -o yaml\n");
    }
    text.push_str("```\n\n");
    while text.len() < 9_000_000 {
        text.push_str("word ");
    }
    text.push('\n');
    text
}

/// The 1-based line of the first byte past the size cap.
fn line_at_size_cap(text: &str) -> usize {
    text.as_bytes()[..SIZE_CAP]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Runs the binary like [`run`], failing the test if it has not ended within `limit` (a
/// generous bound that catches a hang, not a timing). Keeps the first 4 MiB of each output and
/// the total length of stdout.
fn run_within(args: &[&str], limit: std::time::Duration) -> (Output, usize) {
    use std::io::Read;
    let logs = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-rescue"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .arg("--log-file")
        .arg(logs.path().join("kube-rescue.log"))
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kube-rescue runs");
    let keep = |mut from: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let (mut kept, mut total, mut buf) = (Vec::new(), 0, vec![0u8; 64 * 1024]);
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 {
                    break;
                }
                total += n;
                let room = (4usize << 20).saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            (kept, total)
        })
    };
    let out = keep(Box::new(child.stdout.take().unwrap()));
    let err = keep(Box::new(child.stderr.take().unwrap()));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kube-rescue {args:?} did not end within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let (stdout, total) = out.join().unwrap();
    let (stderr, _) = err.join().unwrap();
    (
        Output {
            status,
            stdout,
            stderr,
        },
        total,
    )
}

const HANG: std::time::Duration = std::time::Duration::from_secs(20);

fn size_reason() -> String {
    "larger than 1 MiB: only its first 1 MiB is read, up to this line; keep a runbook short and link to longer material".into()
}

fn nesting_reason() -> String {
    format!(
        "lists and block quotes nested more than {NESTING_CAP} deep: the deeper levels are shown flattened; nest at most {NESTING_CAP}"
    )
}

#[test]
fn lint_names_a_huge_runbook_and_a_deeply_nested_one_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let huge = huge_runbook("team-huge");
    std::fs::write(dir.path().join("huge.md"), &huge).unwrap();
    // 10,000 nested lists on line 9, and 10,000 nested block quotes on line 11.
    let nested = format!(
        "{}{}deep\n\n{}deeper\n",
        head("team-nested"),
        "- ".repeat(10_000),
        "> ".repeat(10_000)
    );
    std::fs::write(dir.path().join("nested.md"), &nested).unwrap();
    let folder = dir.path().to_string_lossy().into_owned();
    let (out, _) = run_within(&["runbooks", "lint", &folder], HANG);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        [
            format!(
                "{folder}/huge.md:{}: {}",
                line_at_size_cap(&huge),
                size_reason()
            ),
            format!("{folder}/nested.md:9: {}", nesting_reason()),
            format!("{folder}/nested.md:11: {}", nesting_reason()),
        ],
        "{}",
        stdout(&out)
    );
    assert_eq!(stderr(&out), "2 runbooks, 3 errors\n");
}

#[test]
fn nesting_by_indentation_is_named_at_the_line_that_passes_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    // One list level per line from line 9: level 17 is on line 25.
    let mut text = head("team-indented");
    for level in 0..40 {
        text.push_str(&format!("{}- level {}\n", "  ".repeat(level), level + 1));
    }
    std::fs::write(dir.path().join("indented.md"), &text).unwrap();
    let folder = dir.path().to_string_lossy().into_owned();
    let (out, _) = run_within(&["runbooks", "lint", &folder], HANG);
    assert_eq!(
        stdout(&out),
        format!(
            "{folder}/indented.md:{}: {}\n",
            9 + NESTING_CAP,
            nesting_reason()
        )
    );
}

#[test]
fn a_runbook_over_a_cap_is_listed_broken_and_shows_what_could_be_read_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let huge = huge_runbook("webhook-outage");
    std::fs::write(dir.path().join("huge.md"), &huge).unwrap();
    let nested = dir.path().join("nested");
    std::fs::create_dir(&nested).unwrap();
    std::fs::write(
        nested.join("nested.md"),
        format!("{}{}deep\n", head("webhook-outage"), "- ".repeat(10_000)),
    )
    .unwrap();
    let folder = dir.path().to_string_lossy().into_owned();
    let (out, _) = run_within(&["runbooks", "list", "--runbooks", &folder], HANG);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list = stdout(&out);
    assert!(
        list.contains("webhook-outage          Team webhook-outage  (broken)\n"),
        "{list}"
    );
    assert!(
        list.contains(&format!(
            "error: {folder}/huge.md:{}: {}\n",
            line_at_size_cap(&huge),
            size_reason()
        )),
        "{list}"
    );
    // Show: the errors on stderr, what could be read on stdout, bounded, exit 1.
    for runbooks in [folder.clone(), nested.to_string_lossy().into_owned()] {
        let (out, printed) = run_within(
            &[
                "runbooks",
                "show",
                "webhook-outage",
                "--runbooks",
                &runbooks,
            ],
            HANG,
        );
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains(":9: lists") || stderr(&out).contains("larger than 1 MiB"));
        let text = stdout(&out);
        assert!(text.starts_with("Team webhook-outage\n"), "{text:.400}");
        assert!(text.contains("\n1. Fail open\n"), "{text:.400}");
        assert!(printed < 2 * SIZE_CAP, "{printed} bytes printed");
    }
}

#[test]
fn many_steps_are_cut_at_the_cap_and_badly_shaped_runbooks_within_the_caps_are_read_quickly() {
    let dir = tempfile::tempdir().unwrap();
    // 50,000 steps: the one past the cap is named.
    let mut steps = head("team-steps");
    for i in 2..=50_000 {
        steps.push_str(&format!("## Step {i}\n"));
    }
    std::fs::write(dir.path().join("steps.md"), &steps).unwrap();
    // Within the caps: one 900 kB line, and a 900 kB code block.
    let long_line = format!("{}{}\n", head("team-long-line"), "x".repeat(900_000));
    std::fs::write(dir.path().join("long-line.md"), long_line).unwrap();
    let code = format!(
        "{}```sh\n{}```\n",
        head("team-code"),
        "kubectl get nodes\n".repeat(50_000)
    );
    std::fs::write(dir.path().join("code.md"), code).unwrap();
    let folder = dir.path().to_string_lossy().into_owned();
    let (out, _) = run_within(&["runbooks", "lint", &folder], HANG);
    // The heading of step N (from 2 on) is line 7 + N.
    assert_eq!(
        stdout(&out),
        format!(
            "{folder}/steps.md:{}: more than {STEPS_CAP} steps: this one and those after it are left out; split the runbook\n",
            8 + STEPS_CAP
        ),
        "{}",
        stderr(&out)
    );
    let (out, _) = run_within(
        &["runbooks", "show", "team-steps", "--runbooks", &folder],
        HANG,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("\n100. Step 100\n"));
    assert!(!stdout(&out).contains("Step 101"));
    for id in ["team-long-line", "team-code"] {
        let (out, printed) = run_within(&["runbooks", "show", id, "--runbooks", &folder], HANG);
        assert_eq!(out.status.code(), Some(0), "{id}: {}", stderr(&out));
        assert!(printed < 2 * SIZE_CAP, "{id}: {printed} bytes printed");
    }
}
