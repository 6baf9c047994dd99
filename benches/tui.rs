//! The triage screen's targets, measured on the real binary in a real pseudo-terminal (the
//! screen is read back through a terminal emulator) and in-process for CPU time:
//!
//! - time to first frame, on a hung apiserver and with `demo` (target 100 ms);
//! - a key press answered while every apiserver call hangs (target 50 ms), and the header
//!   naming the hung apiserver (target: the deadline + 0.5 s);
//! - time to the first finding on opa-webhook-outage with `demo` (target 2 s);
//! - CPU time to diagnose and draw one refresh of `large` (target 50 ms);
//! - peak memory of the screen on `large`, the simulator in its own process (target 200 MB);
//! - with a team runbook of 9 MB, and one with 10,000 levels of lists, for the outage's first
//!   finding (`--runbooks DIR`): first frame, the runbook opened beside the finding, and key
//!   presses answered meanwhile (target 50 ms).
//!
//! Prints figures; asserts nothing. Run: `cargo bench --bench tui`; name sections to run only
//! those: `cargo bench --bench tui -- runbooks` (hung, demo, large, runbooks).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use kube_rescue::sim::Simulator;
use kube_rescue::sim::scenario::Scenario;
use kube_rescue::tui::{Action, Connection, Model, Update, View, update};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const BINARY: &str = env!("CARGO_BIN_EXE_kube-rescue");
const COLUMNS: u16 = 120;
const ROWS: u16 = 40;

mod common;

/// The binary on the slave side of a pseudo-terminal; what it draws is fed to a terminal
/// emulator as it arrives.
struct Screen {
    child: Child,
    keys: File,
    output: mpsc::Receiver<Vec<u8>>,
    parser: vt100::Parser,
    started: Instant,
}

impl Screen {
    fn spawn(args: &[&str]) -> Screen {
        let (master, slave) = open_pty(COLUMNS, ROWS);
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup the pty"));
        let mut command = Command::new(BINARY);
        command
            .args(args)
            .env("TERM", "xterm-256color")
            .stdin(stdio(&slave))
            .stdout(stdio(&slave))
            .stderr(stdio(&slave));
        // SAFETY: setsid and ioctl are async-signal-safe; the child gets its own session with
        // the pty as its controlling terminal, as a shell would give it.
        unsafe {
            command.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let started = Instant::now();
        let child = command.spawn().expect("kube-rescue starts");
        drop(slave);
        let mut reader = File::from(master.try_clone().expect("dup the pty"));
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            // Reading fails (EIO) once the child has gone.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Screen {
            child,
            keys: File::from(master),
            output,
            parser: vt100::Parser::new(
                std::num::NonZeroU16::new(ROWS).unwrap(),
                std::num::NonZeroU16::new(COLUMNS).unwrap(),
                0,
            ),
            started,
        }
    }

    /// The screen on the cluster of `kubeconfig`, each request under `timeout`.
    fn on_cluster(kubeconfig: &Path, state: &Path, timeout: &str) -> Screen {
        let kubeconfig = kubeconfig.to_string_lossy();
        let state = state.to_string_lossy();
        Screen::spawn(&[
            "--kubeconfig",
            &kubeconfig,
            "--state-dir",
            &state,
            "--timeout",
            timeout,
        ])
    }

    fn text(&self) -> String {
        self.parser.screen().contents()
    }

    /// Feeds output to the emulator until `done` holds for the screen; returns when it first
    /// did, or None after `limit`.
    fn wait(&mut self, limit: Duration, done: impl Fn(&str) -> bool) -> Option<Instant> {
        let until = Instant::now() + limit;
        loop {
            if done(&self.text()) {
                return Some(Instant::now());
            }
            let left = until.checked_duration_since(Instant::now())?;
            match self.output.recv_timeout(left) {
                Ok(bytes) => {
                    self.parser.process(&bytes);
                    // Take everything already there before looking again.
                    while let Ok(more) = self.output.try_recv() {
                        self.parser.process(&more);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    fn press(&mut self, keys: &str) {
        self.keys
            .write_all(keys.as_bytes())
            .expect("type into the pty");
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn quit(mut self) {
        self.press("q");
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn open_pty(columns: u16, rows: u16) -> (OwnedFd, OwnedFd) {
    let mut master = -1;
    let mut slave = -1;
    let size = libc::winsize {
        ws_row: rows,
        ws_col: columns,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two new descriptors into the out-parameters; they are owned from
    // here on.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and nothing else owns them.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// One figure: how long after the start `at` came, against a target in milliseconds.
fn since_start(what: &str, started: Instant, at: Option<Instant>, target_ms: u64, note: &str) {
    match at {
        Some(at) => println!(
            "  {what:<26} {:>8.1} ms   target < {target_ms} ms: {}{note}",
            ms(at - started),
            verdict(at - started < Duration::from_millis(target_ms))
        ),
        None => println!("  {what:<26} never"),
    }
}

/// The header's second line is drawn in the first frame, whatever the cluster does.
fn first_frame(text: &str) -> bool {
    text.lines()
        .any(|l| l.trim_start().starts_with("apiserver "))
}

/// This thread's CPU time.
fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// `VmHWM` (peak resident memory) and `VmRSS` of a process, in MiB.
fn memory_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

async fn start(scenario: Scenario, dir: &Path) -> (Simulator, PathBuf) {
    let sim = Simulator::start(scenario, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("the simulator starts");
    let kubeconfig = dir.join(format!("{}.kubeconfig", sim.address().port()));
    sim.write_kubeconfig(&kubeconfig).unwrap();
    (sim, kubeconfig)
}

/// A hung apiserver: first frame, the header naming it, and key presses answered meanwhile.
async fn hung(dir: &Path) {
    let scenario = Scenario::from_yaml(common::HUNG, "hung-apiserver").expect("valid scenario");
    let (sim, kubeconfig) = start(scenario, dir).await;
    let mut screen = Screen::on_cluster(&kubeconfig, &dir.join("state-hung"), "3s");
    let started = screen.started;
    let frame = screen.wait(Duration::from_secs(10), first_frame);
    let unreachable = screen.wait(Duration::from_secs(20), |t| t.contains("UNREACHABLE"));
    println!("hung apiserver (accepts connections, never answers), --timeout 3s:");
    since_start("first frame", started, frame, 100, "");
    since_start("header says UNREACHABLE", started, unreachable, 3500, "");
    // Help on and off: each press must change the screen while every call hangs.
    let answers = key_presses(&mut screen, 40);
    if let (Some(min), Some(max)) = (answers.first(), answers.last()) {
        let median = answers[answers.len() / 2];
        println!(
            "  key press to new screen    {:>8.1} ms median, {:.1} min, {:.1} max over {} presses   target < 50 ms: {}",
            ms(median),
            ms(*min),
            ms(*max),
            answers.len(),
            verdict(*max < Duration::from_millis(50))
        );
    }
    screen.quit();
    sim.stop().await;
}

/// `demo`: the simulator in-process, then the screen; first frame and first finding.
fn demo(dir: &Path) {
    let state = dir.join("state-demo");
    let state = state.to_string_lossy();
    let mut screen = Screen::spawn(&["--state-dir", &state, "demo"]);
    let started = screen.started;
    let frame = screen.wait(Duration::from_secs(10), first_frame);
    let finding = screen.wait(Duration::from_secs(30), |t| {
        t.contains("Writes fail because of webhook validating-webhook.openpolicyagent.org")
    });
    println!("demo (opa-webhook-outage, simulator in the same process):");
    since_start("first frame", started, frame, 100, "");
    since_start(
        "first finding",
        started,
        finding,
        2000,
        "   (webhook-blocking-writes)",
    );
    screen.quit();
}

/// CPU time of taking in one refresh of `large` (diagnosis and rows) and drawing it.
async fn large_cpu() {
    let (first, snapshot) = common::large_snapshots().await;
    println!("large ({}):", common::describe(&snapshot));
    let mut terminal = Terminal::new(TestBackend::new(COLUMNS, ROWS)).unwrap();
    let mut model = Model::new(Connection::default(), jiff::Timestamp::now());
    // One refresh already taken in, as on a running screen (deltas, identities).
    update(
        &mut model,
        Action::Update(Update::Snapshot(Arc::new(first.clone()))),
    );
    let runs = 30;
    let mut take_in = Vec::with_capacity(runs);
    let mut draws = Vec::with_capacity(runs);
    for i in 0..runs {
        // As on a running screen, the refresher holds the snapshot it sent (and frees the one
        // before, on its own thread): keep both out of the measurement.
        let next = Arc::new(snapshot.clone());
        let held = (model.snapshot.clone(), next.clone());
        let view = View::ALL[i % View::ALL.len()];
        update(&mut model, Action::GoTo(view));
        let before = thread_cpu();
        update(&mut model, Action::Update(Update::Snapshot(next)));
        let taken = thread_cpu();
        terminal
            .draw(|frame| frame.render_widget(&model, frame.area()))
            .unwrap();
        let drawn = thread_cpu();
        take_in.push(taken - before);
        drop(held);
        draws.push((view, drawn - taken));
    }
    let mut totals: Vec<Duration> = take_in
        .iter()
        .zip(&draws)
        .map(|(a, (_, b))| *a + *b)
        .collect();
    totals.sort();
    take_in.sort();
    let median = totals[runs / 2];
    println!(
        "  diagnose + rows            {:>8.2} ms median CPU",
        ms(take_in[runs / 2])
    );
    for view in View::ALL {
        let mut times: Vec<Duration> = draws
            .iter()
            .filter(|(v, _)| *v == view)
            .map(|(_, d)| *d)
            .collect();
        times.sort();
        if let Some(t) = times.get(times.len() / 2) {
            println!(
                "  draw {:<22}{:>8.2} ms median CPU ({COLUMNS}x{ROWS})",
                view.title(),
                ms(*t)
            );
        }
    }
    println!(
        "  one refresh, taken in and drawn {:>3.2} ms median CPU, max {:.2} ms over {runs}   target < 50 ms: {}",
        ms(median),
        ms(totals[runs - 1]),
        verdict(median < Duration::from_millis(50))
    );
}

/// Peak memory of the screen process on `large`; the simulator runs in its own process so
/// that only the screen is counted.
fn large_memory(dir: &Path) {
    let kubeconfig = dir.join("large-sim.kubeconfig");
    let mut sim = Command::new(BINARY)
        .args(["sim", "--scenario", "large", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .arg("--log-file")
        .arg(dir.join("sim.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the simulator starts");
    let until = Instant::now() + Duration::from_secs(60);
    while !kubeconfig.exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    if !kubeconfig.exists() {
        println!("  peak memory: the large simulator did not start within 60 s");
        let _ = sim.kill();
        let _ = sim.wait();
        return;
    }
    let mut screen = Screen::on_cluster(&kubeconfig, &dir.join("state-large"), "10s");
    // Three refreshes taken in, with every view drawn once after the first.
    let third = screen.wait(Duration::from_secs(90), |t| t.contains("#3 ·"));
    for key in ["2", "3", "4", "5", "1"] {
        screen.press(key);
        screen.wait(Duration::from_millis(300), |_| false);
    }
    let memory = memory_mib(screen.pid());
    match (third, memory) {
        (Some(at), Some((peak, now))) => println!(
            "  screen process peak memory {:>8.0} MiB (now {now:.0} MiB) after 3 refreshes in {:.1} s   target < 200 MB: {}",
            peak,
            (at - screen.started).as_secs_f64(),
            verdict(peak * 1.048_576 < 200.0)
        ),
        (None, _) => println!(
            "  peak memory: fewer than 3 refreshes in 90 s; screen:\n{}",
            screen.text()
        ),
        (_, None) => println!("  peak memory: /proc/{}/status unreadable", screen.pid()),
    }
    screen.quit();
    // SAFETY: kill only sends a signal to the simulator child started above.
    unsafe { libc::kill(sim.id() as i32, libc::SIGTERM) };
    let _ = sim.wait();
}

/// Presses `?` `n` times, each time waiting for the help to show or go; the times from press
/// to screen, sorted.
fn key_presses(screen: &mut Screen, n: usize) -> Vec<Duration> {
    let mut answers = Vec::new();
    for i in 0..n {
        let showing = i % 2 == 0;
        let pressed = Instant::now();
        screen.press("?");
        let seen = screen.wait(Duration::from_secs(5), |t| {
            t.contains("Reading the screen") == showing
        });
        match seen {
            Some(at) => answers.push(at - pressed),
            None => {
                println!("  key press                  NOT ANSWERED within 5 s");
                break;
            }
        }
    }
    answers.sort();
    answers
}

/// The outage's first finding answered by a team runbook past the limits: 9 MB, or 10,000
/// levels of lists.
fn team_runbooks(dir: &Path) {
    let head = "---\nid: webhook-outage\ntitle: Team outage\nfindings: [webhook-blocking-writes]\nseverity: critical\n---\n## Fail open\n\n";
    let mut huge = head.to_string();
    while huge.len() < 9_000_000 {
        huge.push_str("Page the platform team on #platform-oncall before you change anything.\n");
    }
    let nested = format!("{head}{}deep\n", "- ".repeat(10_000));
    for (name, text) in [
        ("a 9 MB team runbook", huge),
        ("a team runbook 10,000 lists deep", nested),
    ] {
        let team = dir.join(format!("team-{}", text.len()));
        std::fs::create_dir_all(&team).unwrap();
        std::fs::write(team.join("webhook-outage.md"), &text).unwrap();
        let state = dir.join(format!("state-team-{}", text.len()));
        let (state, team) = (state.to_string_lossy(), team.to_string_lossy());
        let mut screen = Screen::spawn(&["--state-dir", &state, "--runbooks", &team, "demo"]);
        let started = screen.started;
        let frame = screen.wait(Duration::from_secs(60), first_frame);
        let finding = screen.wait(Duration::from_secs(60), |t| {
            t.contains("Writes fail because of webhook validating-webhook.openpolicyagent.org")
        });
        println!(
            "demo --runbooks DIR with {name} ({} bytes) for webhook-blocking-writes:",
            text.len()
        );
        since_start("first frame", started, frame, 100, "");
        since_start("first finding", started, finding, 2000, "");
        let pressed = Instant::now();
        screen.press("g");
        screen.press("\r");
        let opened = screen.wait(Duration::from_secs(60), |t| {
            t.contains("Runbook webhook-outage is broken")
        });
        match opened {
            Some(at) => println!(
                "  Enter to its runbook shown {:>8.1} ms   target < 50 ms: {}",
                ms(at - pressed),
                verdict(at - pressed < Duration::from_millis(50))
            ),
            None => println!("  Enter: the runbook was not shown within 60 s"),
        }
        let answers = key_presses(&mut screen, 40);
        if let (Some(min), Some(max)) = (answers.first(), answers.last()) {
            println!(
                "  key press to new screen    {:>8.1} ms median, {:.1} min, {:.1} max over {} presses   target < 50 ms: {}",
                ms(answers[answers.len() / 2]),
                ms(*min),
                ms(*max),
                answers.len(),
                verdict(*max < Duration::from_millis(50))
            );
        }
        let quit = Instant::now();
        screen.press("q");
        let mut ended = None;
        while quit.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = screen.child.try_wait() {
                ended = Some(quit.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        match ended {
            Some(d) => println!("  q to the process gone      {:>8.1} ms", ms(d)),
            None => {
                println!("  q: still running after 30 s");
                let _ = screen.child.kill();
                let _ = screen.child.wait();
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let dir = std::env::temp_dir().join(format!("kube-rescue-bench-tui-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sections = ["hung", "demo", "large", "runbooks"];
    let asked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| sections.contains(&a.as_str()))
        .collect();
    let run = |section: &str| asked.is_empty() || asked.iter().any(|a| a == section);
    if run("hung") {
        hung(&dir).await;
    }
    if run("demo") {
        demo(&dir);
    }
    if run("large") {
        large_cpu().await;
        large_memory(&dir);
    }
    if run("runbooks") {
        team_runbooks(&dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
