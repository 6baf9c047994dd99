//! The whole command line, in one place.

use std::net::SocketAddr;
use std::path::PathBuf;

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

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Kubernetes API simulator alone, serving a scenario over HTTPS.
    Sim(SimArgs),
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
