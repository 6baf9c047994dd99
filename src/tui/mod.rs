//! The triage screen, in the Elm architecture: one [`Model`], one [`Action`] enum,
//! [`update`] to change the model, and views that draw from the model alone. Background work
//! (connecting, refreshing) reports [`Update`]s over a channel; nothing in this module holds a
//! `kube::Client`, awaits the network, or prints while the screen is up.

pub mod dialog;
pub mod journal;
pub mod keys;
pub mod model;
pub mod rows;
pub mod run;
pub mod runbook;
pub mod views;

pub use model::{Action, Connection, Model, Request, Update, View, update};
pub use run::{Channels, run};
