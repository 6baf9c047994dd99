//! A tmux server of the test's own, to run the triage screen in a real terminal.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Whether tmux is installed; says loudly that `test` is skipped when it is not. With
/// KUBE_RESCUE_REQUIRE_TMUX set (as `.ci/run` sets it), a missing tmux fails the test instead.
pub fn available(test: &str) -> bool {
    let found = Command::new("tmux").arg("-V").output().is_ok();
    if !found {
        if std::env::var_os("KUBE_RESCUE_REQUIRE_TMUX").is_some() {
            panic!("{test}: tmux is required (KUBE_RESCUE_REQUIRE_TMUX is set) but not installed");
        }
        eprintln!("\n*** SKIPPED {test}: tmux is not installed ***\n");
    }
    found
}

/// A tmux server of our own (its own socket), killed when the test ends.
pub struct Tmux {
    pub socket: String,
}

impl Tmux {
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux runs")
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "demo"]).stdout).into()
    }

    /// The screen with the window's whole scrollback above it.
    pub fn history(&self) -> String {
        let out = self.run(&["capture-pane", "-p", "-S", "-", "-t", "demo"]);
        String::from_utf8_lossy(&out.stdout).into()
    }

    pub fn alternate_on(&self) -> String {
        let out = self.run(&["display", "-p", "-t", "demo", "#{alternate_on}"]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "demo"];
        args.extend_from_slice(keys);
        assert!(self.run(&args).status.success());
    }

    /// Waits until `ready` accepts the screen; panics with the last screen after `limit`.
    pub fn wait_for(&self, what: &str, limit: Duration, ready: impl Fn(&str) -> bool) -> String {
        self.wait_until(limit, ready).unwrap_or_else(|screen| {
            panic!("no {what} within {limit:?}; the screen shows:\n{screen}")
        })
    }

    /// Waits until `ready` accepts the screen; the last screen as the error after `limit`.
    pub fn wait_until(
        &self,
        limit: Duration,
        ready: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return Ok(screen);
            }
            if start.elapsed() > limit {
                return Err(screen);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}
