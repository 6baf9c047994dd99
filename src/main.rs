//! kube-rescue: parse the command line, send the log to a file, dispatch.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser as _;

use std::io::IsTerminal;

use kube_rescue::cli::{
    AuditArgs, AuditFormat, CheckArgs, CheckFormat, Cli, ClusterArgs, Command, DemoArgs, FixArgs,
    RbacArgs, RefreshArgs, ReportArgs, ReportFormat, RestoreArgs, RunbooksArgs, RunbooksCommand,
    SimArgs, SnapshotArgs, SnapshotFormat,
};
use kube_rescue::cluster::collect::RefreshPolicy;
use kube_rescue::cluster::{Cluster, ConnectOptions, Snapshot, collect, probe};
use kube_rescue::diagnose::{self, Inventory};
use kube_rescue::remediate::{self, Action, Target, Verdict};
use kube_rescue::report::{self, Origin};
use kube_rescue::runbook;
use kube_rescue::sim::{Simulator, scenario::Scenario};
use kube_rescue::{background, journal, tui};

/// Writes to standard output. A closed output (`kube-rescue check | head -1`) is not an
/// error: the rest is dropped quietly and the exit code stays the one the work gives.
macro_rules! out {
    ($($t:tt)*) => { emit(format_args!($($t)*)) };
}

/// [`out!`] with a newline.
macro_rules! outln {
    () => { emit(format_args!("\n")) };
    ($($t:tt)*) => { emit(format_args!("{}\n", format_args!($($t)*))) };
}

/// Writes a line to standard error; a closed one is not a crash either.
macro_rules! errln {
    ($($t:tt)*) => { emit_err(format_args!("{}\n", format_args!($($t)*))) };
}

fn emit_err(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_fmt(text);
}

fn emit(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_fmt(text);
}

fn state_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(dir) = flag {
        return dir.to_path_buf();
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("kube-rescue");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/state/kube-rescue"),
        None => std::env::temp_dir().join("kube-rescue"),
    }
}

/// Sends tracing to a file; the terminal stays clean. Returns the guard that flushes it.
fn init_tracing(file: &Path) -> anyhow::Result<tracing_appender::non_blocking::WorkerGuard> {
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("could not create the log folder {}", dir.display()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .with_context(|| format!("could not open the log file {}", file.display()))?;
    let (writer, guard) = tracing_appender::non_blocking(log);
    let filter = tracing_subscriber::EnvFilter::try_from_env("KUBE_RESCUE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,hyper=warn,rustls=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .init();
    Ok(guard)
}

/// Ctrl-C and SIGTERM, registered when this is made: a signal that arrives after the simulator
/// says it is ready (but before it waits) still stops it cleanly.
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignals {
                interrupt: signal(SignalKind::interrupt())
                    .context("could not listen for Ctrl-C")?,
                terminate: signal(SignalKind::terminate())
                    .context("could not listen for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn run_sim(args: SimArgs) -> anyhow::Result<()> {
    if args.list_scenarios {
        for (name, description) in Scenario::shipped() {
            outln!("{name:<22} {description}");
        }
        return Ok(());
    }
    let scenario = Scenario::load(&args.scenario)?;
    let name = scenario.name.clone();
    let stop = StopSignals::install()?;
    let simulator = Simulator::start(scenario, args.listen)
        .await
        .context("could not start the simulator")?;
    outln!(
        "kube-rescue simulator: scenario {name}, listening on https://{}",
        simulator.address()
    );
    if let Some(path) = &args.kubeconfig_out {
        simulator
            .write_kubeconfig(path)
            .with_context(|| format!("could not write the kubeconfig to {}", path.display()))?;
        outln!("kubeconfig written to {}", path.display());
        outln!("try: kubectl --kubeconfig {} get nodes", path.display());
    } else {
        outln!("no --kubeconfig-out given; the kubeconfig follows:\n");
        outln!("{}", simulator.kubeconfig());
    }
    outln!(
        "request log: GET https://{}/sim/requests (with the kubeconfig's token)",
        simulator.address()
    );
    outln!("stop with Ctrl-C");
    stop.wait().await;
    outln!("stopping");
    simulator.stop().await;
    Ok(())
}

/// One refresh, printed as JSON. Sources that failed are in the output with their errors;
/// only a kubeconfig that cannot be used stops it.
async fn run_snapshot(args: SnapshotArgs) -> anyhow::Result<()> {
    let cluster = Cluster::connect(&args.cluster.connect_options()).await?;
    let snapshot = collect::refresh_complete(&cluster).await;
    match args.output {
        SnapshotFormat::Json => {
            let text = serde_json::to_string_pretty(&snapshot)
                .context("could not render the snapshot as JSON")?;
            outln!("{text}");
        }
    }
    Ok(())
}

/// Whether nothing answered at all, or only to reject the credentials: then the write probe
/// would only wait, or be rejected too.
fn unreachable(snapshot: &Snapshot) -> bool {
    [
        &snapshot.apiserver_version.error,
        &snapshot.readyz.error,
        &snapshot.livez.error,
    ]
    .iter()
    .all(|e| {
        e.as_ref()
            .is_some_and(|e| e.kind.is_unreachable() || e.kind.rejects_credentials())
    })
}

/// `check`: diagnose a live cluster (one refresh and the write probe) or manifests, print the
/// findings, and return the exit code they call for.
async fn run_check(args: CheckArgs) -> anyhow::Result<u8> {
    let now = jiff::Timestamp::now();
    let (origin, findings) = if !args.files.is_empty() {
        let manifests = kube_rescue::manifests::load(&args.files)?;
        let inventory = Inventory::from_manifests(manifests.objects)?;
        // Notes on the input, not findings: stderr, so that stdout stays one report.
        for duplicate in &inventory.duplicates {
            errln!("kube-rescue: warning: {duplicate}");
        }
        let context = diagnose::Context {
            inventory: &inventory,
            live: None,
            now,
        };
        (
            Origin::Files {
                paths: manifests.paths,
            },
            diagnose::diagnose(&context),
        )
    } else {
        let cluster = Cluster::connect(&args.cluster.connect_options()).await?;
        let mut snapshot = collect::refresh_complete(&cluster).await;
        // Nothing answered as Kubernetes: a write probe would add nothing to that verdict.
        let observed = !diagnose::observation::Observation::of(&snapshot, false).nothing_observed;
        if !cluster.is_read_only() && !unreachable(&snapshot) && observed {
            // A probe cut by an apiserver restart is tried again (for up to 20 s), as the
            // verification of a change does: a restart is not a verdict on writes.
            let report = probe::through_restarts(|| async {
                Ok(probe::write_probe(&cluster, &snapshot).await)
            })
            .await;
            snapshot.write_probe = report.ok();
        }
        let inventory = Inventory::from_snapshot(&snapshot);
        let context = diagnose::Context {
            inventory: &inventory,
            live: Some(&snapshot),
            now: jiff::Timestamp::now(),
        };
        (
            Origin::Cluster {
                context: cluster.context().to_string(),
                server: cluster.server().to_string(),
            },
            diagnose::diagnose(&context),
        )
    };
    let out = match args.output {
        CheckFormat::Json => report::json(&origin, &findings),
        CheckFormat::Markdown => report::markdown(&origin, &findings),
        CheckFormat::Text => {
            let colour = report::use_colour(
                std::io::stdout().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            );
            report::text(&origin, &findings, colour)
        }
    };
    out!("{out}");
    if !out.ends_with('\n') {
        outln!();
    }
    Ok(report::exit_code(&findings))
}

/// Exit codes of `fix` and `restore`.
mod fix_exit {
    /// Done, or the plan printed (or nothing to change).
    pub const DONE: u8 = 0;
    /// Refused: nothing was changed (confirmation, read-only, RBAC, changed since the plan).
    pub const REFUSED: u8 = 1;
    /// The backup or the change failed.
    pub const FAILED: u8 = 2;
    /// Could not run: bad input, kubeconfig, target not found, apiserver unreachable.
    pub const COULD_NOT_RUN: u8 = 3;
}

/// `fix`: checks the input before connecting, then plans and (with --confirm) applies.
async fn run_fix(args: FixArgs, state: &Path) -> anyhow::Result<u8> {
    let action = Action::parse(&args.action, args.webhook.as_deref(), args.seconds)?;
    let target = Target::parse(&args.target)?;
    action.check_target(&target)?;
    let retry = format!(
        "kube-rescue fix {} {}{}{}",
        args.action,
        args.target,
        args.webhook
            .as_deref()
            .map(|w| format!(" --webhook {w}"))
            .unwrap_or_default(),
        args.seconds
            .map(|s| format!(" --seconds {s}"))
            .unwrap_or_default()
    );
    let label = (action.name().to_string(), target.display());
    let request = remediate::Request::Fix { action, target };
    run_change(request, label, retry, args.confirm, &args.cluster, state).await
}

/// `restore`: the same flow, from a backup file.
async fn run_restore(args: RestoreArgs, state: &Path) -> anyhow::Result<u8> {
    let retry = format!(
        "kube-rescue restore {}{}",
        args.file.display(),
        if args.overwrite_later_changes {
            " --overwrite-later-changes"
        } else {
            ""
        }
    );
    let label = ("restore".to_string(), args.file.display().to_string());
    let request = remediate::Request::restore(args.file, state, args.overwrite_later_changes);
    run_change(request, label, retry, args.confirm, &args.cluster, state).await
}

/// Plan, print, and with a confirmation apply, printing each step as it happens.
async fn run_change(
    request: remediate::Request,
    (action, target): (String, String),
    retry: String,
    confirm: Option<String>,
    cluster_args: &ClusterArgs,
    state: &Path,
) -> anyhow::Result<u8> {
    use std::io::Write as _;
    let cluster = Cluster::connect(&cluster_args.connect_options()).await?;
    let plan = match remediate::plan(&cluster, &request).await {
        Ok(plan) => plan,
        Err(remediate::Error::NoChange(why)) => {
            outln!("nothing to change: {why}");
            return Ok(fix_exit::DONE);
        }
        Err(e) => {
            if confirm.is_some() {
                let verdict = Verdict::Failed(e.to_string());
                if let Err(audit) =
                    remediate::apply::audit_unplanned(&cluster, state, &action, &target, &verdict)
                {
                    errln!("kube-rescue: warning: could not write the audit log: {audit}");
                }
            }
            errln!("kube-rescue: {e}");
            return Ok(fix_exit::COULD_NOT_RUN);
        }
    };
    out!("{}", report::plan::plan_text(&plan));
    let Some(confirmation) = confirm else {
        outln!();
        if plan.read_only {
            outln!("read-only: nothing was sent and nothing can be applied in this mode.");
        } else {
            outln!(
                "Nothing was changed. To apply: {retry} --confirm {}",
                plan.confirm_name()
            );
        }
        return Ok(fix_exit::DONE);
    };
    outln!();
    let options = remediate::ApplyOptions::new(state);
    let outcome = remediate::apply(&cluster, &plan, &confirmation, &options, |step| {
        outln!("- {step}");
        let _ = std::io::stdout().flush();
    })
    .await;
    let unwritten = match &outcome.audit {
        Ok(path) => {
            outln!("- audit: {}", path.display());
            None
        }
        Err(e) => Some(e.clone()),
    };
    let code = report_verdict(&plan, &outcome);
    match unwritten {
        None => Ok(code),
        Some(e) => {
            let what = match outcome.verdict {
                Verdict::Done => "the change was made, but ",
                _ => "",
            };
            if !outcome.verdict.describe().contains(&e) {
                errln!("kube-rescue: {what}{e}");
            }
            if let (Verdict::Done, Some(backup)) = (&outcome.verdict, &outcome.backup) {
                errln!(
                    "kube-rescue: its backup is {}; `kube-rescue audit` shows the change as interrupted if its outcome is missing",
                    backup.display()
                );
            }
            Ok(code.max(fix_exit::FAILED))
        }
    }
}

/// Prints how a change ended and returns its exit code.
fn report_verdict(plan: &remediate::Plan, outcome: &remediate::Outcome) -> u8 {
    match &outcome.verdict {
        Verdict::Done => {
            let verification = outcome.verification.as_ref();
            let how = if verification.is_some_and(|v| v.put_back.is_some()) {
                "but a controller undid it: change the controller's own configuration, or it will keep coming back"
            } else if verification.is_some_and(|v| v.writes_pass()) {
                "writes pass now"
            } else if verification
                .is_some_and(|v| v.write_probe.is_some() && v.writes_verdict().is_none())
            {
                "but the apiserver kept restarting during the write probe: run `kube-rescue check` in a minute"
            } else {
                "but writes do not all pass yet: see the write probe above"
            };
            // Never "done" while the record of it is missing.
            let head = if outcome.audit.is_ok() {
                "done"
            } else {
                "changed, NOT AUDITED (see below)"
            };
            let joint = if how.starts_with("but") { ", " } else { ": " };
            outln!("{head}{joint}{how}");
            if let Some(backup) = &outcome.backup {
                outln!(
                    "to undo: kube-rescue restore {} --confirm {}",
                    backup.display(),
                    plan.confirm_name()
                );
            }
            fix_exit::DONE
        }
        Verdict::Refused(_) => {
            errln!("kube-rescue: {}", outcome.verdict.describe());
            fix_exit::REFUSED
        }
        Verdict::Failed(_) => {
            errln!("kube-rescue: {}", outcome.verdict.describe());
            fix_exit::FAILED
        }
    }
}

/// glibc gives each thread that allocates its own malloc arena, and freed memory stays in the
/// arena it came from: with a large cluster's snapshots built on one worker thread and dropped
/// on another, that holds tens of MB more than is in use. Two arenas are plenty for a program
/// whose threads mostly wait on the network.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called first thing in main, before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// `audit`: the attempted changes of the state folder, newest first.
fn run_audit(args: &AuditArgs, state: &Path) -> u8 {
    let log = remediate::audit::read(state);
    let text = match args.output {
        AuditFormat::Text => report::audit::text(&log),
        AuditFormat::Json => report::audit::json(&log),
    };
    out!("{text}");
    if !text.ends_with('\n') {
        outln!();
    }
    if log.error.is_some() { 3 } else { 0 }
}

/// `report`: a journal as the postmortem timeline.
fn run_report(args: ReportArgs, state: &Path) -> anyhow::Result<u8> {
    let path = match args.journal {
        Some(p) => p,
        None => journal::latest(state).with_context(|| {
            format!(
                "no journal under {}: the screen writes one each time it runs (or name a file)",
                state.join(journal::JOURNAL_DIR).display()
            )
        })?,
    };
    let mut read =
        journal::read(&path).with_context(|| format!("could not read {}", path.display()))?;
    report::timeline::add_audit(&mut read, &remediate::audit::read(state));
    if read.entries.is_empty() {
        anyhow::bail!("{} holds no journal entry", path.display());
    }
    let text = match args.output {
        ReportFormat::Markdown => report::timeline::markdown(&read),
        ReportFormat::Json => report::timeline::json(&read),
    };
    out!("{text}");
    Ok(0)
}

/// The triage screen on the cluster `options` name, until the user quits.
async fn run_screen(
    options: ConnectOptions,
    policy: RefreshPolicy,
    state: &Path,
    runbooks: &[PathBuf],
) -> anyhow::Result<u8> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!("the triage screen needs a terminal; for a report use `kube-rescue check`");
    }
    // The screen says what is wrong with the connection; stderr is hidden behind it.
    let options = ConnectOptions {
        warn_on_stderr: false,
        ..options
    };
    let mut model = tui::Model::new(
        tui::Connection {
            context: options.context.clone().unwrap_or_default(),
            server: String::new(),
            read_only: options.read_only,
        },
        jiff::Timestamp::now(),
    );
    let cancel = tokio_util::sync::CancellationToken::new();
    let (updates_tx, updates) = tokio::sync::mpsc::channel(64);
    // The team's runbooks are read in the background: the screen opens with the shipped ones
    // and takes the others when they are read. A broken runbook or an unreadable folder never
    // stops the screen: the runbook pane and `runbooks list` show what is wrong.
    if !runbooks.is_empty() {
        model.runbooks_pending = true;
        background::load_runbooks(runbooks.to_vec(), updates_tx.clone(), cancel.clone());
    }
    let (requests, requests_rx) = tokio::sync::mpsc::unbounded_channel();
    let background = background::spawn(
        options,
        policy,
        state.to_path_buf(),
        updates_tx,
        requests_rx,
        cancel.clone(),
    );
    let channels = tui::Channels { updates, requests };
    let result = tui::run(model, channels, cancel.clone()).await;
    cancel.cancel();
    let _ = background.await;
    result.context("the terminal failed")?;
    Ok(0)
}

async fn run_tui(
    args: ClusterArgs,
    refresh: RefreshArgs,
    state: &Path,
    runbooks: &[PathBuf],
) -> anyhow::Result<u8> {
    run_screen(args.connect_options(), refresh.policy(), state, runbooks).await
}

/// `demo`: the simulator in-process on loopback, and the screen on it.
async fn run_demo(args: DemoArgs, state: &Path, runbooks: &[PathBuf]) -> anyhow::Result<u8> {
    let scenario = Scenario::load(&args.scenario)?;
    let simulator = Simulator::start(scenario, "127.0.0.1:0".parse()?)
        .await
        .context("could not start the simulator")?;
    let kubeconfig = std::env::temp_dir().join(format!(
        "kube-rescue-demo-{}.kubeconfig",
        std::process::id()
    ));
    simulator
        .write_kubeconfig(&kubeconfig)
        .with_context(|| format!("could not write {}", kubeconfig.display()))?;
    let options = ConnectOptions {
        kubeconfig: Some(kubeconfig.clone()),
        read_only: args.read_only,
        ..Default::default()
    };
    let result = run_screen(options, args.refresh.policy(), state, runbooks).await;
    simulator.stop().await;
    let _ = std::fs::remove_file(&kubeconfig);
    result
}

/// `rbac [--responder]`: the shipped ClusterRole(s) and binding(s), as YAML.
fn run_rbac(args: &RbacArgs) -> u8 {
    use std::io::Write;
    let yaml = if args.responder {
        kube_rescue::cluster::rbac::RESPONDER_YAML
    } else {
        kube_rescue::cluster::rbac::READ_ONLY_YAML
    };
    // A closed stdout (`| head`) is not a failure.
    let _ = std::io::stdout().write_all(yaml.as_bytes());
    0
}

/// `runbooks list | show ID | lint DIR`. Returns the exit code.
fn run_runbooks(args: RunbooksArgs, dirs: &[PathBuf]) -> u8 {
    match args.command {
        RunbooksCommand::Lint { dir, complete } => lint_runbooks(&dir, complete),
        RunbooksCommand::List => {
            out!("{}", runbook::list_text(&runbook_catalog(dirs)));
            0
        }
        RunbooksCommand::Show { id } => show_runbook(&runbook_catalog(dirs), &id),
    }
}

/// The shipped runbooks and the `--runbooks` folders; a folder that cannot be read is said
/// once on stderr and left out.
fn runbook_catalog(dirs: &[PathBuf]) -> runbook::Catalog {
    let catalog = runbook::Catalog::load(dirs);
    for problem in &catalog.problems {
        errln!("kube-rescue: warning: {problem}; going on without it");
    }
    catalog
}

/// Prints the runbook as text; a broken one's errors go to stderr first (exit 1).
fn show_runbook(catalog: &runbook::Catalog, id: &str) -> u8 {
    let Some(entry) = catalog.get(id) else {
        errln!(
            "kube-rescue: no runbook {id:?}; known: {}",
            catalog.ids().join(", ")
        );
        return 3;
    };
    for problem in &entry.problems {
        errln!("{problem}");
    }
    if let Some(runbook) = &entry.runbook {
        let width = if std::io::stdout().is_terminal() {
            crossterm::terminal::size().map_or(80, |(w, _)| usize::from(w).min(100))
        } else {
            80
        };
        out!("{}", runbook::render_text(runbook, width));
    }
    if entry.is_broken() { 1 } else { 0 }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `FILE:LINE: reason` per error and exit 1; a one-line summary and 0 when there is none; 3
/// when the folder cannot be read.
fn lint_runbooks(dir: &Path, complete: bool) -> u8 {
    match runbook::lint_dir(dir, complete) {
        Ok(report) if report.problems.is_empty() => {
            outln!("{}, no errors", plural(report.runbooks, "runbook"));
            0
        }
        Ok(report) => {
            for problem in &report.problems {
                outln!("{problem}");
            }
            errln!(
                "{}, {}",
                plural(report.runbooks, "runbook"),
                plural(report.problems.len(), "error")
            );
            1
        }
        Err(e) => {
            errln!("kube-rescue: {e}");
            3
        }
    }
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    // A bad flag is "could not run" (3), not clap's 2, which `check` uses for critical.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 3,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if cli.command.is_some() && (cli.cluster.any_given() || cli.refresh.any_given()) {
        errln!(
            "kube-rescue: cluster flags go after the command, e.g. `kube-rescue check --context C`"
        );
        return ExitCode::from(3);
    }
    let state = state_dir(cli.state_dir.as_deref());
    let log_file = cli
        .log_file
        .clone()
        .unwrap_or_else(|| state.join("kube-rescue.log"));
    let _guard = match init_tracing(&log_file) {
        Ok(g) => Some(g),
        Err(e) => {
            errln!("kube-rescue: warning: {e:#}; logging is off");
            None
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            errln!("kube-rescue: could not start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let runbook_dirs = cli.runbooks.clone();
    let result = runtime.block_on(async {
        match cli.command {
            None => run_tui(cli.cluster, cli.refresh, &state, &runbook_dirs).await,
            Some(Command::Tui(args)) => {
                run_tui(args.cluster, args.refresh, &state, &runbook_dirs).await
            }
            Some(Command::Demo(args)) => run_demo(args, &state, &runbook_dirs).await,
            Some(Command::Check(args)) => run_check(args).await,
            Some(Command::Sim(args)) => run_sim(args).await.map(|()| 0),
            Some(Command::Snapshot(args)) => run_snapshot(args).await.map(|()| 0),
            Some(Command::Fix(args)) => run_fix(args, &state).await,
            Some(Command::Restore(args)) => run_restore(args, &state).await,
            Some(Command::Report(args)) => run_report(args, &state),
            Some(Command::Audit(args)) => Ok(run_audit(&args, &state)),
            Some(Command::Runbooks(args)) => Ok(run_runbooks(args, &runbook_dirs)),
            Some(Command::Rbac(args)) => Ok(run_rbac(&args)),
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            errln!("kube-rescue: {e:#}");
            ExitCode::from(3)
        }
    }
}
