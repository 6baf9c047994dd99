//! The whole command line, in one place.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "kube-rescue",
    version,
    about = "Triage and safe repair of a Kubernetes control plane in trouble",
    propagate_version = true
)]
pub struct Cli {
    /// Where the log goes (default: <state dir>/kube-rescue.log).
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,

    /// Folder for logs, backups and the audit trail (default: $XDG_STATE_HOME/kube-rescue,
    /// else ~/.local/state/kube-rescue).
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// A folder of team runbooks, read after the shipped ones: a runbook with the same id
    /// replaces the earlier one. Repeatable; later folders win.
    #[arg(long = "runbooks", global = true, value_name = "DIR")]
    pub runbooks: Vec<PathBuf>,

    /// Without a command: open the triage screen on the cluster these flags name.
    #[command(flatten)]
    pub cluster: ClusterArgs,

    #[command(flatten)]
    pub refresh: RefreshArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the triage screen on a cluster (the same as no command).
    Tui(TuiArgs),
    /// Start the simulator on loopback with a scenario and open the triage screen on it.
    Demo(DemoArgs),
    /// One-shot triage of a live cluster, or with --file an offline lint of manifests.
    /// Exit codes: 0 nothing at warning or above, 1 warnings, 2 a critical finding, 3 could
    /// not run.
    Check(CheckArgs),
    /// Change one object safely. Without --confirm: print the plan (diff, server-side dry run,
    /// RBAC, the kubectl command) and change nothing. With --confirm NAME: back up, apply,
    /// verify. Exit codes: 0 done or plan printed, 1 refused (nothing changed), 2 failed, 3
    /// could not run.
    Fix(FixArgs),
    /// Put an object back as a backup file has it (re-created if gone, replaced if not).
    /// The backup is checked first (checksum, whole object, valid for its kind): a bad one is
    /// refused with exit 3. If the object changed since kube-rescue's change, only the fields
    /// that change set are put back unless --overwrite-later-changes. Without --confirm: the
    /// plan only. Exit codes as for fix.
    Restore(RestoreArgs),
    /// Every change attempted from this state folder, newest first: done, refused, failed, or
    /// "outcome unknown: interrupted" (recorded, then cut short), with its backup.
    Audit(AuditArgs),
    /// One refresh of everything observed on a cluster, printed as JSON (bug reports, replay).
    Snapshot(SnapshotArgs),
    /// The incident timeline of one run of the screen (default: the latest journal under the
    /// state folder), for the postmortem.
    Report(ReportArgs),
    /// Run the Kubernetes API simulator alone, serving a scenario over HTTPS.
    Sim(SimArgs),
    /// The runbooks: list them, show one, or lint a folder of them.
    Runbooks(RunbooksArgs),
    /// Print the ClusterRole a team grants its on-call people for kube-rescue (read-only: what
    /// a refresh and a plan read), with a binding to a group; with --responder, the role of
    /// what kube-rescue's changes write. `kube-rescue rbac | kubectl apply -f -`.
    Rbac(RbacArgs),
}

#[derive(Debug, clap::Args)]
pub struct RbacArgs {
    /// The responder role instead: what each change writes (on top of the read-only role).
    #[arg(long)]
    pub responder: bool,
}

#[derive(Debug, clap::Args)]
pub struct RunbooksArgs {
    #[command(subcommand)]
    pub command: RunbooksCommand,
}

#[derive(Debug, Subcommand)]
pub enum RunbooksCommand {
    /// Every runbook: id, title, the findings it answers, where it comes from, and its errors.
    List,
    /// One runbook as text: introduction, then numbered steps with their action and check.
    Show {
        /// The runbook's id (see `kube-rescue runbooks list`).
        id: String,
    },
    /// Check every .md file of a folder; prints FILE:LINE: reason for each error and exits 1
    /// when there is one (3 when the folder cannot be read).
    Lint {
        dir: PathBuf,
        /// Also require that every finding id is answered by a runbook of the folder.
        #[arg(long)]
        complete: bool,
    },
}

/// A deadline such as `3s`, `500ms` or `2m`.
pub fn parse_deadline(text: &str) -> Result<Duration, String> {
    match crate::duration::parse_duration(text) {
        Some(d) if d >= Duration::from_millis(100) && d <= Duration::from_secs(600) => Ok(d),
        Some(_) => Err(format!("{text}: give a deadline between 100ms and 10m")),
        None => Err(format!("{text}: not a duration (use e.g. 3s, 500ms, 1m)")),
    }
}

/// How to reach a cluster: the flags every cluster command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// The kubeconfig context to use (default: the current context).
    #[arg(long, value_name = "C")]
    pub context: Option<String>,

    /// The kubeconfig file (default: KUBECONFIG, several files merged as kubectl does, else
    /// ~/.kube/config).
    #[arg(long, value_name = "F")]
    pub kubeconfig: Option<PathBuf>,

    /// One request's deadline.
    #[arg(long, default_value = "3s", value_parser = parse_deadline, value_name = "DURATION")]
    pub timeout: Duration,

    /// Send no write at all (no POST, PUT, PATCH or DELETE, not even dry runs).
    #[arg(long)]
    pub read_only: bool,
}

impl ClusterArgs {
    /// Whether any flag differs from its default (cluster flags before a command are a
    /// mistake: they belong after it).
    pub fn any_given(&self) -> bool {
        self.context.is_some()
            || self.kubeconfig.is_some()
            || self.read_only
            || self.timeout != Duration::from_secs(3)
    }

    pub fn connect_options(&self) -> crate::cluster::ConnectOptions {
        crate::cluster::ConnectOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            timeout: self.timeout,
            read_only: self.read_only,
            warn_on_stderr: true,
            ..Default::default()
        }
    }
}

/// How often the triage screen reads the cluster and probes writes.
#[derive(Debug, Clone, clap::Args)]
pub struct RefreshArgs {
    /// The wait between refreshes of the screen while the apiserver copes (it backs off to 60 s
    /// while the apiserver struggles).
    #[arg(long, default_value = "5s", value_parser = parse_interval, value_name = "DURATION")]
    pub refresh: Duration,

    /// How often the screen's dry-run write probe runs again.
    #[arg(long, default_value = "30s", value_parser = parse_interval, value_name = "DURATION")]
    pub probe_every: Duration,
}

/// An interval such as `5s`, `500ms` or `1m`, from 200 ms to 10 min.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    match crate::duration::parse_duration(text) {
        Some(d) if d >= Duration::from_millis(200) && d <= Duration::from_secs(600) => Ok(d),
        Some(_) => Err(format!("{text}: give an interval between 200ms and 10m")),
        None => Err(format!("{text}: not a duration (use e.g. 5s, 500ms, 1m)")),
    }
}

impl RefreshArgs {
    /// Whether any flag differs from its default.
    pub fn any_given(&self) -> bool {
        self.refresh != crate::cluster::collect::DEFAULT_INTERVAL
            || self.probe_every != crate::cluster::collect::DEFAULT_PROBE_INTERVAL
    }

    pub fn policy(&self) -> crate::cluster::collect::RefreshPolicy {
        crate::cluster::collect::RefreshPolicy {
            interval: self.refresh,
            probe_interval: Some(self.probe_every),
            ..Default::default()
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct TuiArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,

    #[command(flatten)]
    pub refresh: RefreshArgs,
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// A shipped scenario (opa-webhook-outage, healthy, apiservice-down, large[:nodes=N,...])
    /// or a scenario file. `NAME:speed=N` runs a shipped scenario's clocks N times faster.
    #[arg(long, default_value = "opa-webhook-outage", value_name = "NAME|FILE")]
    pub scenario: String,

    /// Send no write at all to the simulator, not even the dry-run write probe.
    #[arg(long)]
    pub read_only: bool,

    #[command(flatten)]
    pub refresh: RefreshArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: CheckFormat,

    /// Check manifests instead of a cluster: YAML or JSON files, folders, `-` for standard
    /// input. Repeatable.
    #[arg(long = "file", short = 'f', value_name = "PATH")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SnapshotFormat {
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Markdown,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A journal file (`<state dir>/journal/<start time>.jsonl`); default: the latest.
    #[arg(value_name = "JOURNAL")]
    pub journal: Option<std::path::PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value = "markdown")]
    pub output: ReportFormat,
}

#[derive(Debug, clap::Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    pub output: SnapshotFormat,
}

#[derive(Debug, clap::Args)]
pub struct FixArgs {
    /// delete, fail-open, exclude-system-namespaces, set-timeout, restart-backend, cordon or
    /// uncordon.
    #[arg(value_name = "ACTION")]
    pub action: String,

    /// KIND/NAME: vwc/NAME, mwc/NAME, node/NAME, deployment/NAMESPACE/NAME (kubectl's names
    /// and short names).
    #[arg(value_name = "TARGET")]
    pub target: String,

    /// Change only this webhook of the configuration (default: all of them).
    #[arg(long, value_name = "NAME")]
    pub webhook: Option<String>,

    /// For set-timeout: timeoutSeconds, 1 to 30.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub seconds: Option<i64>,

    /// The name of the object that changes, typed out: applies the plan.
    #[arg(long, value_name = "NAME")]
    pub confirm: Option<String>,

    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// A backup written by `fix` (<state dir>/backups/<context>/...yaml).
    #[arg(value_name = "BACKUP_FILE")]
    pub file: PathBuf,

    /// The name of the object, typed out: applies the plan.
    #[arg(long, value_name = "NAME")]
    pub confirm: Option<String>,

    /// Put back the whole backup even where the object was changed by someone else since
    /// kube-rescue's change (by default only the fields that change set are put back).
    #[arg(long)]
    pub overwrite_later_changes: bool,

    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: AuditFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// A shipped scenario (opa-webhook-outage, healthy, apiservice-down, large[:nodes=N,...])
    /// or a scenario file.
    #[arg(long, default_value = "opa-webhook-outage", value_name = "NAME|FILE")]
    pub scenario: String,

    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Write a kubeconfig for the simulator here (atomically, once it accepts connections).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig_out: Option<PathBuf>,

    /// List the shipped scenarios and exit.
    #[arg(long)]
    pub list_scenarios: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn cluster_flags_parse() {
        let cli = Cli::try_parse_from([
            "kube-rescue",
            "snapshot",
            "--context",
            "prod",
            "--timeout",
            "500ms",
            "--read-only",
        ])
        .unwrap();
        let Some(Command::Snapshot(args)) = cli.command else {
            panic!("snapshot expected");
        };
        assert_eq!(args.cluster.context.as_deref(), Some("prod"));
        assert_eq!(args.cluster.timeout, Duration::from_millis(500));
        assert!(args.cluster.read_only);
        let bad =
            Cli::try_parse_from(["kube-rescue", "snapshot", "--timeout", "soon"]).unwrap_err();
        assert!(bad.to_string().contains("not a duration"), "{bad}");
        let Some(Command::Snapshot(args)) = Cli::try_parse_from(["kube-rescue", "snapshot"])
            .unwrap()
            .command
        else {
            panic!("snapshot expected");
        };
        assert_eq!(args.cluster.timeout, Duration::from_secs(3));
    }

    #[test]
    fn fix_and_restore_parse() {
        let cli = Cli::try_parse_from([
            "kube-rescue",
            "fix",
            "set-timeout",
            "vwc/opa",
            "--webhook",
            "w",
            "--seconds",
            "-3",
            "--confirm",
            "opa",
            "--read-only",
        ])
        .unwrap();
        let Some(Command::Fix(fix)) = cli.command else {
            panic!("fix expected");
        };
        assert_eq!(fix.action, "set-timeout");
        assert_eq!(fix.target, "vwc/opa");
        assert_eq!(fix.webhook.as_deref(), Some("w"));
        assert_eq!(
            fix.seconds,
            Some(-3),
            "range is checked with a clear message later"
        );
        assert_eq!(fix.confirm.as_deref(), Some("opa"));
        assert!(fix.cluster.read_only);
        let Some(Command::Restore(restore)) =
            Cli::try_parse_from(["kube-rescue", "restore", "b.yaml", "--context", "c"])
                .unwrap()
                .command
        else {
            panic!("restore expected");
        };
        assert_eq!(restore.file, PathBuf::from("b.yaml"));
        assert!(restore.confirm.is_none());
        assert!(Cli::try_parse_from(["kube-rescue", "fix", "delete"]).is_err());
    }

    #[test]
    fn no_command_opens_the_screen_with_cluster_flags() {
        let cli = Cli::try_parse_from(["kube-rescue", "--context", "prod", "--read-only"]).unwrap();
        assert!(cli.command.is_none());
        assert!(cli.cluster.any_given());
        assert_eq!(cli.cluster.context.as_deref(), Some("prod"));
        assert!(cli.cluster.read_only);
        let Some(Command::Demo(demo)) = Cli::try_parse_from(["kube-rescue", "demo"])
            .unwrap()
            .command
        else {
            panic!("demo expected");
        };
        assert_eq!(demo.scenario, "opa-webhook-outage");
        assert!(!demo.read_only);
        let Some(Command::Tui(tui)) =
            Cli::try_parse_from(["kube-rescue", "tui", "--timeout", "1s"])
                .unwrap()
                .command
        else {
            panic!("tui expected");
        };
        assert_eq!(tui.cluster.timeout, Duration::from_secs(1));
    }

    #[test]
    fn rbac_parses_with_and_without_responder() {
        let Some(Command::Rbac(args)) = Cli::try_parse_from(["kube-rescue", "rbac"])
            .unwrap()
            .command
        else {
            panic!("rbac expected");
        };
        assert!(!args.responder);
        let Some(Command::Rbac(args)) = Cli::try_parse_from(["kube-rescue", "rbac", "--responder"])
            .unwrap()
            .command
        else {
            panic!("rbac expected");
        };
        assert!(args.responder);
    }

    #[test]
    fn runbook_folders_are_a_repeatable_global_flag() {
        let cli = Cli::try_parse_from([
            "kube-rescue",
            "runbooks",
            "show",
            "webhook-outage",
            "--runbooks",
            "team",
            "--runbooks",
            "more",
        ])
        .unwrap();
        assert_eq!(cli.runbooks, [PathBuf::from("team"), PathBuf::from("more")]);
        // Before the command works too (clap keeps the flags of one place: give them together).
        let before =
            Cli::try_parse_from(["kube-rescue", "--runbooks", "team", "runbooks", "list"]).unwrap();
        assert_eq!(before.runbooks, [PathBuf::from("team")]);
        let Some(Command::Runbooks(RunbooksArgs {
            command: RunbooksCommand::Show { id },
        })) = cli.command
        else {
            panic!("runbooks show expected");
        };
        assert_eq!(id, "webhook-outage");
        let cli =
            Cli::try_parse_from(["kube-rescue", "runbooks", "lint", "dir", "--complete"]).unwrap();
        assert!(cli.runbooks.is_empty());
        assert!(matches!(
            cli.command,
            Some(Command::Runbooks(RunbooksArgs {
                command: RunbooksCommand::Lint { complete: true, .. }
            }))
        ));
    }
}
