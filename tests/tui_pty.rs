//! The triage screen in a real terminal: `kube-rescue demo` inside tmux, read from the screen,
//! driven with key presses, quit with `q`; the process must exit 0 and give the terminal back
//! (alternate screen left). Skipped, loudly, when tmux is not installed.

mod common;

use std::process::Command;
use std::time::Duration;

use common::tmux::Tmux;

/// The code the shell printed after `EXIT=` (the typed command line shows `EXIT=$?`).
fn exit_code(screen: &str) -> Option<i32> {
    screen.split("EXIT=").skip(1).find_map(|rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

#[test]
fn demo_in_a_terminal() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("\n*** SKIPPED demo_in_a_terminal: tmux is not installed ***\n");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux {
        socket: format!("kube-rescue-test-{}", std::process::id()),
    };
    assert!(
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "demo",
            "-x",
            "100",
            "-y",
            "30",
            "env",
            "PS1=$ ",
            "sh",
        ])
        .status
        .success()
    );
    let command = format!(
        "'{}' --state-dir '{}' demo; echo EXIT=$?",
        env!("CARGO_BIN_EXE_kube-rescue"),
        dir.path().display()
    );
    tmux.keys(&[&command, "Enter"]);

    let screen = tmux.wait_for(
        "apiserver status and webhook-blocking-writes finding",
        Duration::from_secs(15),
        |s| {
            let status = s.lines().any(|l| {
                l.trim_start().starts_with("apiserver ")
                    && ["ready", "NOT READY", "UNREACHABLE"]
                        .iter()
                        .any(|w| l.contains(w))
            });
            status
                && s.contains(
                    "Writes fail because of webhook validating-webhook.openpolicyagent.org",
                )
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
        s.contains("evidence") && s.contains("runbook")
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
