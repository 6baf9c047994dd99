//! kube-rescue: triage and safe repair of a Kubernetes control plane in trouble.

pub mod admission_rules;
pub mod background;
pub mod cli;
pub mod cluster;
pub mod diagnose;
pub mod duration;
pub mod failure;
pub mod journal;
pub mod jsonl;
pub mod managed_fields;
pub mod manifests;
pub mod remediate;
pub mod report;
pub mod runbook;
pub mod selector;
pub mod sim;
pub mod tui;
pub mod validate;
