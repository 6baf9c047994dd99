//! The triage screen in a real terminal: `kube-rescue demo` inside tmux, read from the screen,
//! driven with key presses, quit with `q`; the process must exit 0 and give the terminal back
//! (alternate screen left). Skipped, loudly, when tmux is not installed.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::tmux::Tmux;

/// The code the shell printed after `EXIT=` (the typed command line shows `EXIT=$?`).
fn exit_code(screen: &str) -> Option<i32> {
    screen.split("EXIT=").skip(1).find_map(|rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

/// `kube-rescue demo` in a tmux window of `width` x `height`, its state under `state`.
fn open_demo(name: &str, state: &Path, width: u16, height: u16) -> Tmux {
    open_demo_with(name, state, width, height, "")
}

/// The demo's outage at five times its speed (the webhook's timeout 2 s, nodes recreated
/// within about 10 s), refreshed every second and probed every five (a probe that waits out
/// the webhook takes two): for the tests that play the outage to its end.
/// `demo_in_a_terminal` keeps one run at the shipped speed.
const FAST_DEMO: &str = "demo --scenario opa-webhook-outage:speed=5 --refresh 1s --probe-every 5s";

/// [`open_demo`] on [`FAST_DEMO`].
fn open_fast_demo(name: &str, state: &Path, width: u16, height: u16) -> Tmux {
    open_kube_rescue(name, state, width, height, FAST_DEMO)
}

/// [`open_demo`] with more global flags (`--runbooks DIR`).
fn open_demo_with(name: &str, state: &Path, width: u16, height: u16, flags: &str) -> Tmux {
    open_kube_rescue(name, state, width, height, &format!("{flags} demo"))
}

/// `kube-rescue --state-dir STATE ARGS` in a tmux window, then `echo EXIT=$?`.
fn open_kube_rescue(name: &str, state: &Path, width: u16, height: u16, args: &str) -> Tmux {
    open_kube_rescue_env(name, state, width, height, "", args)
}

/// [`open_kube_rescue`] with environment assignments before the command (`TMPDIR=...`).
fn open_kube_rescue_env(
    name: &str,
    state: &Path,
    width: u16,
    height: u16,
    env: &str,
    args: &str,
) -> Tmux {
    let tmux = Tmux {
        socket: format!("kube-rescue-{name}-{}", std::process::id()),
    };
    let (width, height) = (width.to_string(), height.to_string());
    assert!(
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "demo",
            "-x",
            &width,
            "-y",
            &height,
            "env",
            "PS1=$ ",
            "sh",
        ])
        .status
        .success()
    );
    let command = format!(
        "{env} '{}' --state-dir '{}' {args}; echo EXIT=$?",
        env!("CARGO_BIN_EXE_kube-rescue"),
        state.display()
    );
    tmux.keys(&[&command, "Enter"]);
    tmux
}

const FINDING: &str = "Writes fail because of webhook validating-webhook.openpolicyagent.org";

/// Waits for the outage's finding, then for it to take hold: node heartbeats stop and nodes go
/// Unknown, or have already been recreated by auto-repair (a refresh can fall between the two:
/// a node is Unknown for the few seconds before auto-repair). The Nodes view is left open.
fn outage_takes_hold(tmux: &Tmux) {
    tmux.wait_for("the finding", common::bound(Duration::from_secs(5)), |s| {
        s.contains(FINDING)
    });
    tmux.keys(&["3"]);
    tmux.wait_for(
        "nodes going Unknown or recreated",
        Duration::from_secs(90),
        |s| {
            s.lines()
                .any(|l| l.starts_with("gke-") && (l.contains("Unknown") || l.contains("× ")))
        },
    );
}

/// Opens the Nodes view and waits until every node is Ready.
fn nodes_ready_again(tmux: &Tmux) {
    tmux.keys(&["3"]);
    tmux.wait_for("every node Ready again", Duration::from_secs(120), |s| {
        let nodes: Vec<&str> = s.lines().filter(|l| l.starts_with("gke-")).collect();
        !nodes.is_empty() && nodes.iter().all(|l| l.contains(" True "))
    });
}

/// Waits for the header's write probe to pass in every namespace (after a fail-open it takes
/// the webhook's whole timeout, so it passes a probe or two after the nodes are back).
fn writes_pass_again(tmux: &Tmux) {
    tmux.wait_for("the write probe passing", Duration::from_secs(90), |s| {
        s.lines()
            .any(|l| l.starts_with(" writes ") && l.contains("passed in"))
    });
}

/// Quits the screen, then prints the run's incident timeline with `kube-rescue report`.
fn quit_and_report(tmux: &Tmux, state: &Path) -> String {
    tmux.keys(&["q"]);
    tmux.wait_for("the shell after quitting", Duration::from_secs(10), |s| {
        exit_code(s).is_some()
    });
    let report = Command::new(env!("CARGO_BIN_EXE_kube-rescue"))
        .args(["report", "--state-dir"])
        .arg(state)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&report.stdout).into_owned();
    assert!(
        report.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&report.stderr)
    );
    text
}

#[test]
fn demo_in_a_terminal() {
    if !common::tmux::available("demo_in_a_terminal") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = open_demo("demo", dir.path(), 100, 30);

    // The promise (README): within seconds the apiserver's state and, first, the webhook.
    let screen = tmux.wait_for(
        "apiserver status and webhook-blocking-writes finding",
        common::bound(Duration::from_secs(5)),
        |s| {
            let status = s.lines().any(|l| {
                l.trim_start().starts_with("apiserver ")
                    && ["ready", "NOT READY", "UNREACHABLE"]
                        .iter()
                        .any(|w| l.contains(w))
            });
            status && s.contains(FINDING)
        },
    );
    assert_eq!(tmux.alternate_on(), "1", "{screen}");

    // Within a minute of the start the repair loop has recreated nodes: the Nodes view counts
    // them (RECREATED `N× ... ago`) and charts the registrations.
    tmux.keys(&["3"]);
    tmux.wait_for("nodes recreated", Duration::from_secs(60), |s| {
        s.contains("NODE")
            && s.contains("node registrations per minute")
            && s.lines().any(|l| l.starts_with("gke-") && l.contains("× "))
    });
    // The apiserver flaps on its ca-registration post-start hook.
    tmux.keys(&["4"]);
    tmux.wait_for(
        "failing ca-registration check",
        Duration::from_secs(60),
        |s| {
            s.lines()
                .any(|l| l.contains("[-] poststarthook/ca-registration"))
        },
    );
    // `:` jumps by name; the Events view lists the webhook's failures.
    tmux.keys(&[":ev", "Enter"]);
    tmux.wait_for("Events view", Duration::from_secs(5), |s| {
        s.contains("REASON") && s.contains("FailedCreate")
    });
    tmux.keys(&["2"]);
    tmux.wait_for("Webhooks view", Duration::from_secs(5), |s| {
        s.contains("KUBE-SYSTEM") && s.contains("intercepted")
    });
    tmux.keys(&["r"]);
    tmux.keys(&["?"]);
    tmux.wait_for("help", Duration::from_secs(5), |s| {
        s.contains("Reading the screen")
    });
    tmux.keys(&["1", "Enter"]);
    tmux.wait_for("finding detail", Duration::from_secs(5), |s| {
        s.contains("evidence") && s.contains("Runbook: ")
    });
    tmux.keys(&["Escape", "j", "k", "Tab", "q"]);

    let after = tmux.wait_for("the shell after quitting", Duration::from_secs(10), |s| {
        exit_code(s).is_some()
    });
    assert_eq!(
        exit_code(&after),
        Some(0),
        "kube-rescue did not exit 0:\n{after}"
    );
    assert_eq!(
        tmux.alternate_on(),
        "0",
        "alternate screen not left:\n{after}"
    );
    assert!(
        !after.contains("FINDING"),
        "the triage screen is still visible after quitting:\n{after}"
    );
}

/// The founding incident fixed from the screen: select the finding, choose delete, read the
/// plan, type the name, watch it applied and verified, and the outage end. The apiserver of
/// the demo restarts on purpose; a change cut by a restart is tried again.
#[test]
fn the_outage_is_ended_from_the_screen() {
    if !common::tmux::available("the_outage_is_ended_from_the_screen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = open_fast_demo("fix", dir.path(), 120, 40);
    outage_takes_hold(&tmux);
    let mut done = None;
    for attempt in 1..=3 {
        // The top finding is the cause; its menu lists delete last.
        tmux.keys(&["1", "g", "a"]);
        tmux.wait_for("the action menu", Duration::from_secs(5), |s| {
            s.contains("Actions")
                && s.contains("delete validatingwebhookconfiguration/opa-validating-webhook")
        });
        tmux.keys(&["G", "Enter"]);
        let planned = tmux.wait_for("the plan", Duration::from_secs(30), |s| {
            s.contains("Type opa-validating-webhook to apply") || s.contains("No plan")
        });
        if planned.contains("No plan") {
            eprintln!("attempt {attempt}: no plan (the apiserver restarting?):\n{planned}");
            tmux.keys(&["Escape"]);
            std::thread::sleep(Duration::from_secs(3));
            continue;
        }
        assert!(planned.contains("kubectl"), "{planned}");
        tmux.keys(&["-l", "opa-validating-webhook"]);
        tmux.keys(&["Enter"]);
        let finished = tmux.wait_for("the change to end", Duration::from_secs(60), |s| {
            s.contains("audited in")
        });
        if finished.contains("backup written") && finished.contains("deleted") {
            done = Some(finished);
            break;
        }
        eprintln!("attempt {attempt} did not go through:\n{finished}");
        tmux.keys(&["Escape"]);
        std::thread::sleep(Duration::from_secs(3));
    }
    let finished = done.expect("the delete went through within 3 attempts");
    // The backup is on disk, private, before the change; the attempt is audited.
    let backups: Vec<_> = walk(&dir.path().join("backups"));
    assert_eq!(backups.len(), 1, "{backups:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&backups[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", backups[0].display());
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"action\":\"delete\"") && l.contains("\"result\":\"done\"")),
        "{audit}\n{finished}"
    );
    // Back on the findings: the outage ends (the webhook's finding goes, the apiserver is
    // ready again), and the Audit view offers the undo.
    // (Escape followed at once by a key reads as Alt+key: close with Enter.)
    tmux.keys(&["Enter"]);
    tmux.wait_for("the dialog closed", Duration::from_secs(5), |s| {
        !s.contains("audited in")
    });
    nodes_ready_again(&tmux);
    writes_pass_again(&tmux);
    tmux.keys(&["1"]);
    tmux.wait_for("the outage to end", Duration::from_secs(60), |s| {
        let findings_shown = s.contains("FINDING (cause first)") || s.contains("No findings");
        findings_shown && !s.contains(FINDING) && s.contains("apiserver ready")
    });
    tmux.keys(&["6"]);
    tmux.wait_for(
        "the change in the Audit view",
        Duration::from_secs(5),
        |s| s.contains("u: undo") && s.contains("done"),
    );
    // The run's journal, as the postmortem timeline.
    let text = quit_and_report(&tmux, dir.path());
    for needle in [
        "# Incident timeline: kube-rescue-sim-opa-webhook-outage",
        "- **Outage first seen** ",
        "- **Change** ",
        "delete validatingwebhookconfiguration/opa-validating-webhook: done",
        "- **Recovered: writes pass** ",
        "- **Recovered: nodes all Ready** ",
        "after the change",
        "kube-rescue closed",
    ] {
        assert!(
            text.contains(needle),
            "missing {needle:?} in the report:\n{text}"
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The runbook opens with the finding; its fail-open step, run through the confirm flow, ends
/// the outage and the steps whose checks pass show as done; the report tells the story.
#[test]
fn the_runbook_walks_the_outage_to_its_end() {
    if !common::tmux::available("the_runbook_walks_the_outage_to_its_end") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = open_fast_demo("runbook", dir.path(), 120, 40);
    outage_takes_hold(&tmux);
    let mut done = false;
    for attempt in 1..=3 {
        tmux.keys(&["1", "g", "Enter"]);
        tmux.wait_for(
            "the runbook beside the finding",
            Duration::from_secs(5),
            |s| {
                s.contains("Runbook: An admission webhook is blocking writes")
                    && s.contains("[ ] 3. Fail open")
            },
        );
        // Step 3 is "Fail open"; Enter plans its action.
        tmux.keys(&["j", "j"]);
        tmux.wait_for("step 3 selected", Duration::from_secs(5), |s| {
            s.contains("Enter: fail-open (plan first)")
        });
        tmux.keys(&["Enter"]);
        let planned = tmux.wait_for("the plan", Duration::from_secs(30), |s| {
            s.contains("Type opa-validating-webhook to apply") || s.contains("No plan")
        });
        if planned.contains("No plan") {
            eprintln!("attempt {attempt}: no plan:\n{planned}");
            tmux.keys(&["Enter"]);
            std::thread::sleep(Duration::from_secs(3));
            continue;
        }
        assert!(planned.contains("Plan: fail-open"), "{planned}");
        tmux.keys(&["-l", "opa-validating-webhook"]);
        tmux.keys(&["Enter"]);
        let finished = tmux.wait_for("the change to end", Duration::from_secs(90), |s| {
            s.contains("audited in")
        });
        tmux.keys(&["Enter"]);
        // The dialog's title is the verdict: `done…`, or `refused: …` / `failed: …`.
        if finished.contains("┌ done") {
            done = true;
            break;
        }
        eprintln!("attempt {attempt} did not go through:\n{finished}");
        std::thread::sleep(Duration::from_secs(3));
    }
    assert!(done, "fail-open went through within 3 attempts");
    // The runbook is still open beside its finding, now cleared; the fail-open step is done by
    // its check.
    let after = tmux.wait_for(
        "the fail-open step done by its check",
        Duration::from_secs(120),
        |s| s.contains("no longer raised") && s.contains("[✓] 3. Fail open"),
    );
    assert!(
        after.contains("Runbook: An admission webhook is blocking writes"),
        "{after}"
    );
    tmux.keys(&["Escape"]);
    std::thread::sleep(Duration::from_millis(300));
    nodes_ready_again(&tmux);
    writes_pass_again(&tmux);
    let text = quit_and_report(&tmux, dir.path());
    for needle in [
        "- **Outage first seen** ",
        "fail-open validatingwebhookconfiguration/opa-validating-webhook: done",
        "- **Recovered: writes pass** ",
        "- **Recovered: nodes all Ready** ",
        "runbook webhook-outage: step \"Fail open\" done",
    ] {
        assert!(
            text.contains(needle),
            "missing {needle:?} in the report:\n{text}"
        );
    }
}

/// A team's runbook given with --runbooks replaces the shipped one of the same id on screen.
#[test]
fn a_team_runbook_shows_on_the_screen() {
    if !common::tmux::available("a_team_runbook_shows_on_the_screen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let team = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runbooks/team");
    let tmux = open_demo_with(
        "team",
        dir.path(),
        120,
        40,
        &format!("--runbooks '{}'", team.display()),
    );
    tmux.wait_for("the finding", common::bound(Duration::from_secs(5)), |s| {
        s.contains(FINDING)
    });
    tmux.keys(&["g", "Enter"]);
    tmux.wait_for("the team's runbook", Duration::from_secs(5), |s| {
        s.contains("Runbook: Webhook outage (platform team edition)")
            && s.contains("from webhook-outage.md (overrides the shipped one) in")
    });
    tmux.keys(&["q"]);
    tmux.wait_for("the shell after quitting", Duration::from_secs(10), |s| {
        exit_code(s).is_some()
    });
}

/// A team folder for the outage's first finding: a 9 MB runbook, or one with 10,000 levels of
/// lists; either way the screen opens at once, shows the runbook's error beside the finding,
/// and answers keys.
#[test]
fn a_huge_or_deeply_nested_team_runbook_never_holds_up_the_screen() {
    if !common::tmux::available("a_huge_or_deeply_nested_team_runbook_never_holds_up_the_screen") {
        return;
    }
    let head = "---\nid: webhook-outage\ntitle: Team outage\nfindings: [webhook-blocking-writes]\nseverity: critical\n---\n## Fail open\n\n";
    let huge = format!("{head}{}", "Page the platform team now.\n".repeat(330_000));
    let nested = format!("{head}{}deep\n", "- ".repeat(10_000));
    for (name, text, error) in [
        ("huge", huge, "larger than"),
        ("nested", nested, "nested more than"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let team = dir.path().join("team");
        std::fs::create_dir(&team).unwrap();
        std::fs::write(team.join("webhook-outage.md"), text).unwrap();
        let tmux = open_demo_with(
            name,
            &dir.path().join("state"),
            120,
            40,
            &format!("--runbooks '{}'", team.display()),
        );
        tmux.wait_for("the finding", Duration::from_secs(20), |s| {
            s.contains(FINDING)
        });
        tmux.keys(&["g", "Enter"]);
        tmux.wait_for("the runbook's error", Duration::from_secs(20), |s| {
            s.contains("Runbook webhook-outage is broken") && s.contains(error)
        });
        tmux.keys(&["?"]);
        tmux.wait_for("the help", Duration::from_secs(20), |s| {
            s.contains("Reading the screen")
        });
        tmux.keys(&["q"]);
        tmux.wait_for("the shell after quitting", Duration::from_secs(20), |s| {
            exit_code(s).is_some()
        });
    }
}

const GATEKEEPER: &str = "gatekeeper-validating-webhook-configuration";

/// The Webhooks view's row of the gatekeeper validating webhook, once it shows `policy`.
fn gatekeeper_policy_is(tmux: &Tmux, policy: &str) {
    tmux.keys(&["2"]);
    tmux.wait_for(
        &format!("validation.gatekeeper.sh with failurePolicy {policy}"),
        Duration::from_secs(20),
        |s| {
            s.lines()
                .any(|l| l.starts_with("V validation.gatekeeper.sh") && l.contains(policy))
        },
    );
}

/// Types the configuration's name into a plan and applies it; returns the finished dialog.
fn confirm_gatekeeper(tmux: &Tmux) -> String {
    tmux.wait_for("the plan", Duration::from_secs(30), |s| {
        s.contains(&format!("Type {GATEKEEPER} to apply"))
    });
    tmux.keys(&["-l", GATEKEEPER]);
    tmux.keys(&["Enter"]);
    let finished = tmux.wait_for("the change to end", Duration::from_secs(60), |s| {
        s.contains("audited in")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the dialog closed", Duration::from_secs(5), |s| {
        !s.contains("audited in")
    });
    finished
}

#[test]
fn a_change_is_undone_from_the_audit_view() {
    if !common::tmux::available("a_change_is_undone_from_the_audit_view") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = open_kube_rescue("undo", dir.path(), 120, 40, "demo --scenario healthy");
    gatekeeper_policy_is(&tmux, "Fail");
    tmux.keys(&["a"]);
    tmux.wait_for("the action menu", Duration::from_secs(5), |s| {
        s.contains("fail-open: failurePolicy Ignore on webhook validation.gatekeeper.sh")
    });
    tmux.keys(&["Enter"]);
    let finished = confirm_gatekeeper(&tmux);
    assert!(finished.contains("replaced"), "{finished}");
    gatekeeper_policy_is(&tmux, "Ignore");
    // Undo: the Audit view restores the backup, through a plan that proves the backup.
    tmux.keys(&["6"]);
    tmux.wait_for(
        "the change in the Audit view",
        Duration::from_secs(5),
        |s| s.contains("u: undo") && s.contains("fail-open"),
    );
    tmux.keys(&["u"]);
    let plan = tmux.wait_for("the restore's plan", Duration::from_secs(30), |s| {
        s.contains("Plan: restore")
    });
    assert!(plan.contains("sha256 matches the audit log"), "{plan}");
    let finished = confirm_gatekeeper(&tmux);
    assert!(finished.contains("replaced"), "{finished}");
    gatekeeper_policy_is(&tmux, "Fail");
    let log = kube_rescue::remediate::audit::read(dir.path());
    let done: Vec<(&str, &str)> = log
        .attempts
        .iter()
        .map(|a| (a.action.as_str(), a.result.as_str()))
        .collect();
    assert_eq!(done, [("fail-open", "done"), ("restore", "done")]);
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("the exit code", Duration::from_secs(10), |s| {
        exit_code(s).is_some()
    });
    assert_eq!(exit_code(&screen), Some(0), "{screen}");
}

/// The pid of the kube-rescue the window's shell runs.
fn screen_pid(tmux: &Tmux) -> String {
    let out = tmux.run(&["display", "-p", "-t", "demo", "#{pane_pid}"]);
    let shell = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let children = Command::new("pgrep")
        .args(["-P", &shell, "kube-rescue"])
        .output()
        .expect("pgrep runs");
    let pid = String::from_utf8_lossy(&children.stdout).trim().to_string();
    assert!(
        !pid.is_empty() && !pid.contains('\n'),
        "one kube-rescue under the shell: {pid:?}"
    );
    pid
}

#[test]
fn a_signal_or_ctrl_c_gives_the_terminal_back() {
    if !common::tmux::available("a_signal_or_ctrl_c_gives_the_terminal_back") {
        return;
    }
    for how in ["TERM", "HUP", "INT", "Ctrl-C"] {
        let dir = tempfile::tempdir().unwrap();
        let tmux = open_kube_rescue(
            &format!("signal-{how}"),
            dir.path(),
            100,
            30,
            "demo --scenario healthy",
        );
        tmux.wait_for("the screen", Duration::from_secs(20), |s| {
            s.contains("apiserver ready")
        });
        assert_eq!(tmux.alternate_on(), "1", "{how}: the screen is on");
        if how == "Ctrl-C" {
            tmux.keys(&["C-c"]);
        } else {
            let pid = screen_pid(&tmux);
            let sent = Command::new("kill")
                .args([&format!("-{how}"), &pid])
                .status();
            assert!(sent.is_ok_and(|s| s.success()), "{how}");
        }
        let screen = tmux.wait_for("the exit code", Duration::from_secs(10), |s| {
            exit_code(s).is_some()
        });
        assert_eq!(exit_code(&screen), Some(0), "{how}: {screen}");
        assert_eq!(
            tmux.alternate_on(),
            "0",
            "{how}: the alternate screen is left"
        );
        // The terminal is back in its normal mode: lines are read whole, keys echo.
        let modes = terminal_modes(&tmux, how);
        assert!(
            modes.iter().any(|l| l == "icanon") && modes.iter().any(|l| l == "echo"),
            "{how}: raw mode left on: {modes:?}"
        );
    }
}

#[test]
fn demo_read_only_plans_but_sends_no_write() {
    if !common::tmux::available("demo_read_only_plans_but_sends_no_write") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let tmux = open_kube_rescue_env(
        "read-only",
        &dir.path().join("state"),
        120,
        40,
        &format!("TMPDIR='{}'", tmp.display()),
        "demo --read-only --scenario healthy",
    );
    tmux.wait_for("the read-only screen", Duration::from_secs(20), |s| {
        s.contains("READ-ONLY") && s.contains("apiserver ready")
    });
    // The action menu and a plan work; applying it does not.
    tmux.keys(&["2"]);
    tmux.wait_for("the webhooks", Duration::from_secs(10), |s| {
        s.contains("validation.gatekeeper.sh")
    });
    tmux.keys(&["a"]);
    tmux.wait_for("the action menu", Duration::from_secs(5), |s| {
        s.contains("fail-open: failurePolicy Ignore")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the read-only plan", Duration::from_secs(30), |s| {
        s.contains("READ-ONLY: nothing can be applied from here")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the refusal", Duration::from_secs(5), |s| {
        s.contains("read-only: this screen cannot apply")
    });
    tmux.keys(&["Escape"]);
    tmux.keys(&["r"]);
    // The demo's simulator, read through the kubeconfig it wrote: only reads ever reached it,
    // once the screen has read (at least) the nodes, the webhooks and the health endpoints.
    let kubeconfig = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".kubeconfig"))
        .expect("the demo's kubeconfig");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let requests = || -> Vec<String> {
        let (log, _) = runtime.block_on(common::request_log_at(&kubeconfig, 0));
        log.iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r["method"].as_str().unwrap_or_default(),
                    r["path"].as_str().unwrap_or_default()
                )
            })
            .collect()
    };
    let read = [
        "GET /api/v1/nodes",
        "GET /apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        "GET /readyz",
    ];
    let deadline = Instant::now() + common::bound(Duration::from_secs(10));
    let methods = loop {
        let seen = requests();
        if read.iter().all(|r| seen.iter().any(|s| s.starts_with(r))) {
            break seen;
        }
        assert!(
            Instant::now() < deadline,
            "the screen never read {read:?}: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let writes: Vec<&String> = methods.iter().filter(|m| !m.starts_with("GET ")).collect();
    assert!(writes.is_empty(), "writes in read-only mode: {writes:?}");
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("the exit code", Duration::from_secs(10), |s| {
        exit_code(s).is_some()
    });
    assert_eq!(exit_code(&screen), Some(0), "{screen}");
}

/// Asks the shell in the window whether the terminal is back in its normal mode (lines read
/// whole, keys echoed), and returns the modes it printed.
fn terminal_modes(tmux: &Tmux, what: &str) -> Vec<String> {
    tmux.keys(&["stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo; echo STTY=done", "Enter"]);
    let modes = tmux.wait_for(
        &format!("stty's answer ({what})"),
        Duration::from_secs(5),
        |s| s.lines().any(|l| l == "STTY=done"),
    );
    modes.lines().map(str::to_string).collect()
}

/// A panic in the screen's loop gives the terminal back (alternate screen left, raw mode off)
/// and leaves the panic's message readable, with a non-zero exit.
#[test]
fn a_panic_gives_the_terminal_back_and_says_why() {
    if !common::tmux::available("a_panic_gives_the_terminal_back_and_says_why") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = open_kube_rescue_env(
        "panic",
        dir.path(),
        100,
        30,
        "KUBE_RESCUE_TEST_PANIC_ON_KEY=%",
        "demo --scenario healthy",
    );
    tmux.wait_for("the screen", Duration::from_secs(20), |s| {
        s.contains("apiserver ready")
    });
    assert_eq!(tmux.alternate_on(), "1");
    tmux.keys(&["%"]);
    let screen = tmux.wait_for("the exit code", Duration::from_secs(10), |s| {
        exit_code(s).is_some()
    });
    assert_eq!(exit_code(&screen), Some(101), "{screen}");
    // The message is above the backtrace (RUST_BACKTRACE may be set), in the scrollback.
    let history = tmux.history();
    assert!(history.contains("test panic on key '%'"), "{history}");
    assert_eq!(tmux.alternate_on(), "0", "the alternate screen is left");
    let modes = terminal_modes(&tmux, "after the panic");
    assert!(
        modes.iter().any(|l| l == "icanon") && modes.iter().any(|l| l == "echo"),
        "raw mode left on: {modes:?}"
    );
}

/// The screen follows the terminal's size: smaller, larger, too small (it says so), and back.
#[test]
fn a_resize_redraws_the_screen_at_the_new_size() {
    if !common::tmux::available("a_resize_redraws_the_screen_at_the_new_size") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = open_kube_rescue("resize", dir.path(), 120, 40, "demo --scenario healthy");
    let resize = |width: u16, height: u16| {
        let (w, h) = (width.to_string(), height.to_string());
        assert!(
            tmux.run(&["resize-window", "-t", "demo", "-x", &w, "-y", &h])
                .status
                .success()
        );
    };
    // The header's first line is padded to the width; the key bar is the last row.
    let drawn_at = |s: &str, width: usize, height: usize| {
        let lines: Vec<&str> = s.lines().collect();
        lines.len() == height
            && lines[0].trim_end().chars().count() <= width
            && lines[0].contains("apiserver") | lines[1].contains("apiserver")
            && !lines[height - 1].trim().is_empty()
    };
    tmux.wait_for("the screen at 120x40", Duration::from_secs(20), |s| {
        s.contains("apiserver ready") && drawn_at(s, 120, 40)
    });
    for (width, height) in [(80u16, 24u16), (160, 45)] {
        resize(width, height);
        tmux.wait_for(
            &format!("the screen redrawn at {width}x{height}"),
            Duration::from_secs(5),
            |s| s.contains("apiserver ready") && drawn_at(s, width.into(), height.into()),
        );
    }
    resize(50, 15);
    tmux.wait_for("the too-small notice", Duration::from_secs(5), |s| {
        s.contains("too small")
    });
    resize(100, 30);
    tmux.wait_for("the screen back at 100x30", Duration::from_secs(5), |s| {
        s.contains("apiserver ready") && drawn_at(s, 100, 30)
    });
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("the exit code", Duration::from_secs(10), |s| {
        exit_code(s).is_some()
    });
    assert_eq!(exit_code(&screen), Some(0), "{screen}");
}

/// Nothing but the screen is drawn on the terminal while it runs: the log (at its most
/// verbose) goes to its file, and an exec credential plugin's chatter on stderr is taken, not
/// passed through.
#[test]
fn logs_and_plugin_chatter_never_reach_the_screen() {
    if !common::tmux::available("logs_and_plugin_chatter_never_reach_the_screen") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let running = runtime.block_on(common::start(
        kube_rescue::sim::scenario::Scenario::load("healthy").unwrap(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("chatty-plugin");
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\necho 'PLUGIN-CHATTER on stderr' >&2\ncat <<EOF\n{{\"apiVersion\": \"client.authentication.k8s.io/v1beta1\", \"kind\": \"ExecCredential\", \"status\": {{\"token\": \"{}\"}}}}\nEOF\n",
            running.sim.token()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, running.sim.ca_pem()).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: chatty\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {}\n      interactiveMode: Never\ncontexts:\n- name: sim\n  context: {{cluster: sim, user: chatty}}\ncurrent-context: sim\n",
            running.sim.url(),
            ca.display(),
            plugin.display()
        ),
    )
    .unwrap();
    let log = dir.path().join("kube-rescue.log");
    let tmux = open_kube_rescue_env(
        "logs",
        &dir.path().join("state"),
        120,
        40,
        "KUBE_RESCUE_LOG=trace",
        &format!(
            "--log-file '{}' --kubeconfig '{}' --refresh 1s",
            log.display(),
            kubeconfig.display()
        ),
    );
    tmux.wait_for("the screen", Duration::from_secs(20), |s| {
        s.contains("apiserver ready")
    });
    // A few refreshes, each logged at trace level; the screen never shows a log line or the
    // plugin's words.
    let noise = ["PLUGIN-CHATTER", " TRACE ", " DEBUG ", " INFO ", " WARN "];
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        let screen = tmux.screen();
        for n in noise {
            assert!(!screen.contains(n), "{n:?} on the screen:\n{screen}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("the exit code", Duration::from_secs(10), |s| {
        exit_code(s).is_some()
    });
    assert_eq!(exit_code(&screen), Some(0), "{screen}");
    for n in noise {
        assert!(!screen.contains(n), "{n:?} left on the terminal:\n{screen}");
    }
    // The log did get them: trace lines went to the file, not the terminal.
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("TRACE") && logged.contains("DEBUG"),
        "{logged}"
    );
    runtime.block_on(running.sim.stop());
}
