//! Plays a scenario's timeline: each entry fires at `at` seconds from the start, and again
//! every `every` seconds until `until`, acting on the apiserver and the living cluster.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::cluster::ControlPlane;
use super::kinds;
use super::scenario::{TimelineAction, TimelineEntry};

/// How often the timeline looks at the clock.
const RESOLUTION: Duration = Duration::from_millis(100);

/// The times in `(from, to]` at which an entry fires.
pub fn firings(entry: &TimelineEntry, from: Duration, to: Duration) -> Vec<Duration> {
    let mut out = Vec::new();
    let mut t = entry.at;
    loop {
        if t > to || entry.until.is_some_and(|u| t > u) {
            break;
        }
        if t > from || (from.is_zero() && t.is_zero()) {
            out.push(t);
        }
        match entry.every {
            Some(every) if !every.is_zero() => {
                if t <= from {
                    // Jump close to `from` without stepping one period at a time.
                    let behind = (from - t).as_secs_f64() / every.as_secs_f64();
                    t += every.mul_f64(behind.floor().max(0.0));
                    if t <= from {
                        t += every;
                    }
                } else {
                    t += every;
                }
            }
            _ => break,
        }
    }
    out
}

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
            if let Err(e) = api.backends.set(spec.clone().into()).await {
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
                due.extend(firings(entry, last, now).into_iter().map(|t| (t, i)));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at: u64, every: Option<u64>, until: Option<u64>) -> TimelineEntry {
        TimelineEntry {
            at: Duration::from_secs(at),
            every: every.map(Duration::from_secs),
            until: until.map(Duration::from_secs),
            action: TimelineAction::ClearFaults,
        }
    }

    fn secs(v: &[Duration]) -> Vec<u64> {
        v.iter().map(Duration::as_secs).collect()
    }

    #[test]
    fn one_shot_fires_once_in_its_window() {
        let e = entry(5, None, None);
        assert_eq!(secs(&firings(&e, Duration::ZERO, Duration::from_secs(4))), Vec::<u64>::new());
        assert_eq!(secs(&firings(&e, Duration::from_secs(4), Duration::from_secs(5))), [5]);
        assert!(firings(&e, Duration::from_secs(5), Duration::from_secs(100)).is_empty());
    }

    #[test]
    fn repeating_entries_fire_every_period_until_the_end() {
        let e = entry(20, Some(45), Some(120));
        assert_eq!(secs(&firings(&e, Duration::ZERO, Duration::from_secs(200))), [20, 65, 110]);
        assert_eq!(secs(&firings(&e, Duration::from_secs(65), Duration::from_secs(110))), [110]);
        assert_eq!(secs(&firings(&e, Duration::from_secs(64), Duration::from_secs(66))), [65]);
        let forever = entry(0, Some(10), None);
        assert_eq!(secs(&firings(&forever, Duration::from_secs(1000), Duration::from_secs(1010))), [1010]);
    }
}
