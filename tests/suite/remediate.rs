//! The remediation library driven as the screen will drive it (plan, then apply with a
//! confirmation and a progress callback) against the simulator: a change made between the
//! plan and the apply is refused, never overwritten; a controller that puts its object back
//! is noticed and named; the simulator's RBAC answers as an apiserver's.

use crate::common;

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube_rescue::remediate::{self, Action, ApplyOptions, Request, Step, Target, Verdict, audit};
use kube_rescue::sim::scenario::Reconciled;
use serde_json::json;

const NAME: &str = "opa-validating-webhook";

fn request(action: Action) -> Request {
    Request::Fix {
        action,
        target: Target::parse("vwc/opa-validating-webhook").unwrap(),
    }
}

async fn configs(running: &common::Running) -> Api<ValidatingWebhookConfiguration> {
    Api::all(common::client(&running.kubeconfig).await)
}

/// Someone else changes the object: a label, as kubectl label would.
async fn touch(running: &common::Running) {
    configs(running)
        .await
        .patch(
            NAME,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_change_since_the_plan_is_refused_not_overwritten() {
    let running = common::start(common::outage_held_still()).await;
    let state = running.dir.path().join("state");
    let cluster = common::connect(&running, Duration::from_secs(3), false).await;
    let options = ApplyOptions::new(&state);

    // An update: PUT with the planned resourceVersion gets 409.
    let plan = remediate::plan(&cluster, &request(Action::FailOpen { webhook: None }))
        .await
        .unwrap();
    touch(&running).await;
    let mut steps = Vec::new();
    let outcome = remediate::apply(&cluster, &plan, NAME, &options, |s| steps.push(s)).await;
    let Verdict::Refused(why) = &outcome.verdict else {
        panic!("refused expected: {outcome:?}");
    };
    let current = configs(&running).await.get(NAME).await.unwrap();
    let now_rv = current.metadata.resource_version.clone().unwrap();
    assert_eq!(
        why,
        &format!(
            "opa-validating-webhook changed since the plan (resourceVersion {} -> {now_rv}); nothing was changed; run the plan again",
            plan.resource_version
        )
    );
    assert_eq!(
        current.webhooks.unwrap()[0].failure_policy.as_deref(),
        Some("Fail"),
        "not overwritten"
    );
    assert!(
        matches!(steps.as_slice(), [Step::BackupWritten(_)]),
        "{steps:?}"
    );

    // A delete: the preconditions fail.
    let plan = remediate::plan(&cluster, &request(Action::Delete))
        .await
        .unwrap();
    touch(&running).await;
    let outcome = remediate::apply(&cluster, &plan, NAME, &options, |_| {}).await;
    let Verdict::Refused(why) = &outcome.verdict else {
        panic!("refused expected: {outcome:?}");
    };
    assert!(
        why.contains("changed since the plan (resourceVersion"),
        "{why}"
    );
    assert!(
        configs(&running)
            .await
            .get_opt(NAME)
            .await
            .unwrap()
            .is_some(),
        "not deleted"
    );

    let records = audit::read(&state).attempts;
    assert_eq!(records.len(), 2);
    assert!(
        records.iter().all(|r| r
            .result
            .starts_with("refused: opa-validating-webhook changed since the plan")),
        "{records:?}"
    );
}

#[tokio::test]
async fn a_controller_putting_the_object_back_is_named() {
    let mut scenario = common::outage_held_still();
    scenario.reconcile.push(Reconciled {
        api_version: "admissionregistration.k8s.io/v1".into(),
        kind: "ValidatingWebhookConfiguration".into(),
        namespace: None,
        name: NAME.into(),
        manager: "gatekeeper-controller-manager".into(),
        delay_ms: 300,
    });
    let running = common::start(scenario).await;
    let state = running.dir.path().join("state");
    let cluster = common::connect(&running, Duration::from_secs(3), false).await;
    let plan = remediate::plan(&cluster, &request(Action::Delete))
        .await
        .unwrap();
    // As the screen will run it: in a task of its own, the steps coming back on a channel.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task = {
        let (cluster, plan, options) = (cluster.clone(), plan.clone(), ApplyOptions::new(&state));
        tokio::spawn(async move {
            remediate::apply(&cluster, &plan, NAME, &options, move |step| {
                let _ = tx.send(step);
            })
            .await
        })
    };
    let outcome = task.await.unwrap();
    let mut steps = Vec::new();
    while let Some(step) = rx.recv().await {
        steps.push(step);
    }
    assert!(
        matches!(
            steps.as_slice(),
            [
                Step::BackupWritten(_),
                Step::Changed(_),
                Step::ReadBack(_),
                Step::Verifying(_),
                Step::WriteProbe(_),
                Step::Watched(_)
            ]
        ),
        "{steps:?}"
    );
    assert_eq!(outcome.verdict, Verdict::Done);
    let verification = outcome.verification.unwrap();
    let put_back = verification.put_back.expect("the controller was noticed");
    assert!(put_back.starts_with("re-created (new uid "), "{put_back}");
    assert!(
        put_back.contains("likely by gatekeeper-controller-manager (managedFields)"),
        "{put_back}"
    );
    let again = configs(&running).await.get(NAME).await.unwrap();
    assert_ne!(again.metadata.uid.as_deref(), Some(plan.uid.as_str()));

    // A changed field is put back too.
    let plan = remediate::plan(&cluster, &request(Action::FailOpen { webhook: None }))
        .await
        .unwrap();
    let outcome = remediate::apply(&cluster, &plan, NAME, &ApplyOptions::new(&state), |_| {}).await;
    let put_back = outcome.verification.unwrap().put_back.expect("reverted");
    assert!(put_back.contains("/webhooks/0/failurePolicy"), "{put_back}");
    assert!(
        put_back.contains("gatekeeper-controller-manager"),
        "{put_back}"
    );
}

#[tokio::test]
async fn the_simulator_refuses_what_rbac_denies_in_the_apiservers_words() {
    let mut scenario = common::outage_held_still();
    common::deny_deleting_webhook_configurations(&mut scenario);
    let running = common::start(scenario).await;
    let error = configs(&running)
        .await
        .delete(NAME, &DeleteParams::default())
        .await
        .unwrap_err();
    let kube::Error::Api(status) = error else {
        panic!("an API error expected: {error}");
    };
    assert_eq!(status.code, 403);
    assert_eq!(
        status.message,
        "validatingwebhookconfigurations.admissionregistration.k8s.io \"opa-validating-webhook\" is forbidden: User \"kube-rescue-admin\" cannot delete resource \"validatingwebhookconfigurations\" in API group \"admissionregistration.k8s.io\" at the cluster scope"
    );
    let cluster = common::connect(&running, Duration::from_secs(3), false).await;
    let vwc = remediate::action::VALIDATING;
    let denied = cluster
        .access_review("delete", &vwc, None, NAME)
        .await
        .unwrap();
    assert!(!denied.allowed);
    let allowed = cluster
        .access_review("update", &vwc, None, NAME)
        .await
        .unwrap();
    assert!(allowed.allowed);
}
