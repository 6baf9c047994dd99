//! The integration tests, one binary: it links once, and its tests run side by side.

mod common;

mod admission;
mod apiserver_wording;
mod build_profile;
mod change_path;
mod check_cli;
mod check_file;
mod cluster_collect;
mod cluster_connect;
mod cluster_probe;
mod diagnose_live;
mod diagnose_webhooks;
mod hostile;
mod rbac;
mod remediate;
mod remediate_cli;
mod runbooks_cli;
mod scenario_fixtures;
mod sim_api;
mod sim_binary;
mod sim_cluster;
mod sim_faults;
mod sim_kubectl;
mod snapshot_cli;
mod tui_cluster;
mod tui_pty;
mod tui_views;
