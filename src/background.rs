//! The work behind the triage screen: connecting, refreshing, planning and applying changes,
//! reading the audit log. It holds the cluster client; the screen holds none and hears of
//! everything through [`tui::Update`]s, and asks for work with [`tui::Request`]s.

use std::path::PathBuf;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cluster::{Cluster, ConnectOptions, collect};
use crate::journal::Writer as Journal;
use crate::remediate::{self, ApplyOptions};
use crate::tui;

/// Starts the background work for one screen; it ends when `cancel` fires or the screen's
/// channel closes.
pub fn spawn(
    options: ConnectOptions,
    policy: collect::RefreshPolicy,
    state_dir: PathBuf,
    updates: mpsc::Sender<tui::Update>,
    mut requests: mpsc::UnboundedReceiver<tui::Request>,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let connected = tokio::select! {
            _ = cancel.cancelled() => return,
            c = Cluster::connect(&options) => c,
        };
        let cluster = match connected {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("could not connect: {e:#}");
                let _ = updates
                    .send(tui::Update::ConnectFailed(format!("{e:#}")))
                    .await;
                return;
            }
        };
        // The incident journal of this run; the screen goes on without one if it cannot be
        // written (and says why in the log).
        let mut journal = match Journal::create(&state_dir, jiff::Timestamp::now()) {
            Ok(w) => {
                tracing::info!(path = %w.path().display(), "incident journal");
                Some(w)
            }
            Err(e) => {
                tracing::warn!("no incident journal: {e}");
                None
            }
        };
        let connection = tui::Connection {
            context: cluster.context().to_string(),
            server: cluster.server().to_string(),
            read_only: cluster.is_read_only(),
        };
        if updates
            .send(tui::Update::Connected(connection))
            .await
            .is_err()
        {
            return;
        }
        read_audit(&state_dir, &updates).await;
        let (tx, mut rx) = mpsc::channel(4);
        let refresher = collect::Refresher::new(cluster.clone(), policy).spawn(tx);
        // Plans and changes run as tasks of their own: the refreshes go on meanwhile.
        let mut work = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                snapshot = rx.recv() => match snapshot {
                    Some(s) => {
                        if updates.send(tui::Update::Snapshot(s)).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                Some(request) = requests.recv() => match request {
                    tui::Request::RefreshNow => refresher.refresh_now(),
                    tui::Request::ReadAudit => read_audit(&state_dir, &updates).await,
                    tui::Request::Journal(entry) => record(&mut journal, &entry),
                    tui::Request::Plan(request) => {
                        let (cluster, updates) = (cluster.clone(), updates.clone());
                        work.spawn(async move {
                            let planned = remediate::plan(&cluster, &request)
                                .await
                                .map(Box::new)
                                .map_err(|e| e.to_string());
                            let _ = updates.send(tui::Update::Planned(planned)).await;
                        });
                    }
                    tui::Request::Apply { plan, confirmation } => {
                        let (cluster, updates) = (cluster.clone(), updates.clone());
                        let options = ApplyOptions::new(state_dir.clone());
                        work.spawn(async move {
                            // Steps go out as they happen; the callback cannot await, and the
                            // screen's queue has room for the handful of steps a change has.
                            let steps = updates.clone();
                            let outcome = remediate::apply(
                                &cluster,
                                &plan,
                                &confirmation,
                                &options,
                                |step| {
                                    if let Err(e) =
                                        steps.try_send(tui::Update::ApplyStep(step.to_string()))
                                    {
                                        tracing::warn!("a step of the change was not shown: {e}");
                                    }
                                },
                            )
                            .await;
                            tracing::info!(verdict = %outcome.verdict.describe(), "change applied");
                            let _ = updates.send(tui::Update::Applied(Box::new(outcome))).await;
                        });
                    }
                },
                Some(ended) = work.join_next(), if !work.is_empty() => {
                    if let Err(e) = ended {
                        tracing::error!("a plan or change task failed: {e}");
                    }
                }
            }
        }
        // What the screen said last (its closing entry) still goes to the journal.
        while let Ok(request) = requests.try_recv() {
            if let tui::Request::Journal(entry) = request {
                record(&mut journal, &entry);
            }
        }
        // A change in flight is let finish (it writes its audit line); plans are dropped.
        while let Some(ended) = work.join_next().await {
            if let Err(e) = ended {
                tracing::error!("a plan or change task failed: {e}");
            }
        }
        refresher.stop().await;
    })
}

/// Reads the `--runbooks` folders off the screen's loop (a thread of their own: files are read
/// and parsed there) and hands the catalog to the screen. A broken runbook or an unreadable
/// folder never stops anything: it goes to the log here, and to the screen with the catalog.
/// Once `cancel` fires no more files are read, so that quitting never waits on them.
pub fn load_runbooks(
    dirs: Vec<PathBuf>,
    updates: mpsc::Sender<tui::Update>,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let loaded = tokio::task::spawn_blocking(move || {
            crate::runbook::Catalog::load_while(&dirs, &|| !cancel.is_cancelled())
        })
        .await;
        let catalog = match loaded {
            Ok(catalog) => catalog,
            Err(e) => {
                tracing::error!("reading the runbook folders failed: {e}");
                return;
            }
        };
        for problem in catalog
            .problems
            .iter()
            .chain(catalog.entries().iter().flat_map(|e| e.problems.iter()))
        {
            tracing::warn!("runbook: {problem}");
        }
        let _ = updates
            .send(tui::Update::Runbooks(std::sync::Arc::new(catalog)))
            .await;
    })
}

fn record(journal: &mut Option<Journal>, entry: &crate::journal::Entry) {
    if let Some(w) = journal
        && let Err(e) = w.append(entry)
    {
        tracing::warn!(path = %w.path().display(), "the incident journal could not be written: {e}");
    }
}

async fn read_audit(state_dir: &std::path::Path, updates: &mpsc::Sender<tui::Update>) {
    let dir = state_dir.to_path_buf();
    let records = tokio::task::spawn_blocking(move || remediate::audit::read(&dir))
        .await
        .unwrap_or_default();
    let _ = updates.send(tui::Update::Audit(records)).await;
}
