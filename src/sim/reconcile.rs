//! Controllers that keep an object as the scenario describes it, as Gatekeeper keeps its own
//! ValidatingWebhookConfiguration: deleted, the object comes back (a new uid); changed, it is
//! put back. Each writes its name into the object's managedFields, so that a tool can say who
//! undid a change.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::kinds::{self, Kind};
use super::scenario::Reconciled;
use super::server::Apiserver;

/// How often a controller looks at its object.
const PERIOD: Duration = Duration::from_millis(100);

/// Everything but metadata and status: what the controller insists on.
fn content(object: &Value) -> Value {
    let mut content = object.clone();
    if let Some(map) = content.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    content
}

fn managed_fields(manager: &str, api_version: &str) -> Value {
    json!([{
        "manager": manager,
        "operation": "Update",
        "apiVersion": api_version,
        "time": super::store::now_rfc3339(),
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {}}, "f:webhooks": {}},
    }])
}

struct Controller {
    api: Arc<Apiserver>,
    spec: Reconciled,
    kind: &'static Kind,
    namespace: String,
    /// The object as described, without what the apiserver sets.
    desired: Value,
}

impl Controller {
    fn new(api: Arc<Apiserver>, spec: Reconciled) -> Option<Controller> {
        let kind = kinds::by_api_version(&spec.api_version, &spec.kind)?;
        let namespace = spec.namespace.clone().unwrap_or_default();
        let mut desired = api.get_object(kind, &namespace, &spec.name).ok()?;
        if let Some(meta) = desired["metadata"].as_object_mut() {
            for field in ["uid", "resourceVersion", "creationTimestamp", "generation"] {
                meta.remove(field);
            }
        }
        desired["metadata"]["managedFields"] = managed_fields(&spec.manager, &spec.api_version);
        // The object as it starts: written by its controller.
        if let Ok(current) = api.get_object(kind, &namespace, &spec.name) {
            let mut owned = current;
            owned["metadata"]["managedFields"] = desired["metadata"]["managedFields"].clone();
            let _ = api.put_unadmitted(owned);
        }
        Some(Controller {
            api,
            spec,
            kind,
            namespace,
            desired,
        })
    }

    /// What is wrong with the object now, if anything.
    fn drift(&self) -> Option<Option<Value>> {
        match self
            .api
            .get_object(self.kind, &self.namespace, &self.spec.name)
        {
            Err(_) => Some(None),
            Ok(current) if content(&current) != content(&self.desired) => Some(Some(current)),
            Ok(_) => None,
        }
    }

    fn put_back(&self, current: Option<Value>) {
        let mut object = match current {
            None => self.desired.clone(),
            Some(mut current) => {
                if let (Some(target), Some(desired)) =
                    (current.as_object_mut(), content(&self.desired).as_object())
                {
                    target.retain(|k, _| k == "metadata" || k == "status");
                    for (k, v) in desired {
                        target.insert(k.clone(), v.clone());
                    }
                }
                current
            }
        };
        object["metadata"]["managedFields"] =
            managed_fields(&self.spec.manager, &self.spec.api_version);
        match self.api.put_unadmitted(object) {
            Ok(_) => tracing::info!(
                manager = %self.spec.manager, kind = %self.spec.kind, name = %self.spec.name,
                "controller put its object back"
            ),
            Err(e) => tracing::warn!(%e, "controller could not put its object back"),
        }
    }

    async fn run(self, shutdown: CancellationToken) {
        let delay = Duration::from_millis(self.spec.delay_ms);
        let mut noticed: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(PERIOD) => {}
            }
            match self.drift() {
                None => noticed = None,
                Some(current) => {
                    let since = *noticed.get_or_insert_with(Instant::now);
                    if since.elapsed() >= delay {
                        self.put_back(current);
                        noticed = None;
                    }
                }
            }
        }
    }
}

/// Starts one controller per reconciled object. An object that is not there at the start is
/// skipped (the scenario check refuses that case).
pub fn start(
    api: &Arc<Apiserver>,
    specs: &[Reconciled],
    shutdown: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    specs
        .iter()
        .filter_map(|spec| Controller::new(api.clone(), spec.clone()))
        .map(|controller| tokio::spawn(controller.run(shutdown.clone())))
        .collect()
}
