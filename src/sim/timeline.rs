//! Plays a scenario's timeline: each entry fires at `at` seconds from the start, and again
//! every `every` seconds until `until` (or `count` times), acting on the apiserver and the
//! living cluster. When each entry fires is `TimelineEntry::firings`; this is what it does.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::cluster::ControlPlane;
use super::kinds;
use super::scenario::{TimelineAction, TimelineEntry};

/// How often the timeline looks at the clock.
const RESOLUTION: Duration = Duration::from_millis(100);

/// Carries out one action.
pub async fn apply(plane: &ControlPlane, action: &TimelineAction) {
    let api = plane.api();
    match action {
        TimelineAction::ReadyzFailing(checks) => {
            api.health().set_readyz_failing(checks);
        }
        TimelineAction::LivezFailing(checks) => {
            api.health().set_livez_failing(checks);
        }
        TimelineAction::ApiserverDown(duration) => api.go_down(*duration),
        TimelineAction::RestartApiserver => {
            let plane = plane.clone();
            tokio::spawn(async move { plane.restart_apiserver().await });
        }
        TimelineAction::RecreateNodes(names) => {
            let plane = plane.clone();
            let names = names.clone();
            tokio::spawn(async move { plane.recreate_nodes(&names).await });
        }
        TimelineAction::SetBackend(spec) => {
            if let Err(e) = api.backends.set(spec.clone()).await {
                tracing::warn!(%e, "could not switch a webhook backend");
            }
        }
        TimelineAction::AddFault(fault) => api.faults().push(fault.clone()),
        TimelineAction::ClearFaults => api.faults().clear(),
        TimelineAction::Apply(objects) => {
            for object in objects {
                if let Err(e) = api.put_unadmitted(object.clone()) {
                    tracing::warn!(%e, "timeline could not apply an object");
                }
            }
        }
        TimelineAction::Delete(refs) => {
            for r in refs {
                let Some(kind) = kinds::by_api_version(&r.api_version, &r.kind) else {
                    tracing::warn!(kind = %r.kind, "timeline: unknown kind to delete");
                    continue;
                };
                let ns = r.namespace.clone().unwrap_or_default();
                if let Err(e) = api.delete_unadmitted(kind, &ns, &r.name) {
                    tracing::warn!(%e, "timeline could not delete an object");
                }
            }
        }
    }
}

/// Runs the timeline until the simulator stops.
pub fn start(plane: ControlPlane, timeline: Vec<TimelineEntry>) -> JoinHandle<()> {
    let shutdown = plane.shutdown_token().clone();
    tokio::spawn(async move {
        if timeline.is_empty() {
            return;
        }
        let started = Instant::now();
        let mut last = Duration::ZERO;
        loop {
            let now = started.elapsed();
            let mut due: Vec<(Duration, usize)> = Vec::new();
            for (i, entry) in timeline.iter().enumerate() {
                due.extend(entry.firings(last, now).into_iter().map(|t| (t, i)));
            }
            due.sort();
            for (t, i) in due {
                tracing::info!(at = ?t, action = ?timeline[i].action, "timeline");
                apply(&plane, &timeline[i].action).await;
            }
            last = now;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(RESOLUTION) => {}
            }
        }
    })
}
