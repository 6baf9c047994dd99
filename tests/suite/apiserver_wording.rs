//! The catalogue of real apiserver texts (tests/fixtures/apiserver-wording/): every case is
//! whole, names its versions and what a reader must conclude, and no id is used twice.

use std::collections::BTreeSet;

use serde_json::Value;

fn cases() -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/apiserver-wording/cases.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_case_is_whole_and_named_once() {
    let cases = cases();
    assert!(cases.len() >= 100, "{}", cases.len());
    let mut ids = BTreeSet::new();
    let mut families = BTreeSet::new();
    for case in &cases {
        let id = case["id"].as_str().expect("an id");
        assert!(ids.insert(id.to_string()), "{id} twice");
        families.insert(case["family"].as_str().expect("a family").to_string());
        for field in ["kubernetes", "source", "where"] {
            assert!(case[field].is_string(), "{id}: no {field}");
        }
        let text = ["message", "body", "text"]
            .iter()
            .find_map(|f| case[f].as_str());
        assert!(text.is_some_and(|t| !t.trim().is_empty()), "{id}: no text");
        assert!(case["expect"].is_object(), "{id}: no expect");
    }
    for family in [
        "webhook-call-failure",
        "webhook-denial",
        "policy-denial",
        "rbac-denial",
        "iam-denial",
        "etcd-no-space",
        "request-timeout",
        "health-bodies",
        "metrics",
    ] {
        assert!(
            families.contains(family),
            "no case of {family}: {families:?}"
        );
    }
}

/// Every message of the catalogue (a write's answer, an event) read as the catalogue says a
/// reader must: the kind of cause, and the webhook, URL, failure, policy and denial message it
/// names.
#[test]
fn every_message_is_read_as_its_case_says() {
    use kube_rescue::failure::{Cause, parse};
    let mut wrong = Vec::new();
    let mut read = 0;
    for case in cases() {
        let id = case["id"].as_str().unwrap();
        let expect = &case["expect"];
        let (Some(message), Some(kind)) = (case["message"].as_str(), expect["kind"].as_str())
        else {
            continue;
        };
        read += 1;
        let code = case["status"]["code"].as_u64().map(|c| c as u16);
        let cause = parse(message, code);
        let mut check = |what: &str, got: Option<String>, want: Option<&str>| {
            if got.as_deref() != want {
                wrong.push(format!(
                    "{id}: {what} {got:?}, expected {want:?}\n  {message}"
                ));
            }
        };
        // The catalogue's `storage-initializing` covers every "cannot serve now".
        let want_kind = if kind == "storage-initializing" {
            "unavailable"
        } else {
            kind
        };
        check("kind", Some(cause.kind().to_string()), Some(want_kind));
        if let Some(webhook) = expect["webhook"].as_str() {
            check(
                "webhook",
                cause.webhook().map(str::to_string),
                Some(webhook),
            );
        }
        match &cause {
            Cause::WebhookCall { url, failure, .. } => {
                if let Some(want) = expect["url"].as_str() {
                    check("url", url.clone(), Some(want));
                }
                let want = expect["failure"].as_str().unwrap_or("other");
                check("failure", Some(failure.as_str().to_string()), Some(want));
            }
            Cause::WebhookDenied { message: said, .. } => {
                if let Some(want) = expect["denial_message"].as_str() {
                    check("denial", said.clone(), Some(want.trim()));
                }
            }
            Cause::PolicyDenied {
                policy, binding, ..
            } => {
                check("policy", Some(policy.clone()), expect["policy"].as_str());
                check("binding", binding.clone(), expect["binding"].as_str());
            }
            Cause::IamDenied { permissions } => {
                let want: Vec<String> = expect["permissions"]
                    .as_array()
                    .map(|p| {
                        p.iter()
                            .filter_map(|p| p.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                check(
                    "permissions",
                    Some(permissions.join(",")),
                    Some(&want.join(",")),
                );
            }
            _ => {}
        }
    }
    assert!(read >= 100, "{read} messages read");
    assert!(
        wrong.is_empty(),
        "{} of {read} read wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Every Warning event about a webhook call that failed is counted against that webhook,
/// whichever version worded it: the catalogue's events, and its write answers as a controller
/// reports them in an event (`Error creating: MESSAGE`).
#[test]
fn every_failed_call_event_is_counted_against_its_webhook() {
    use k8s_openapi::api::core::v1::Event;
    use kube_rescue::cluster::snapshot::{Snapshot, Source};
    let mut missed = Vec::new();
    let mut read = 0;
    for case in cases() {
        let (Some(message), Some(webhook)) =
            (case["message"].as_str(), case["expect"]["webhook"].as_str())
        else {
            continue;
        };
        if case["expect"]["kind"] != "webhook-failure" {
            continue;
        }
        let message = match case["where"].as_str() {
            Some("probe") => format!("Error creating: {message}"),
            _ => message.to_string(),
        };
        read += 1;
        let event = Event {
            message: Some(message.clone()),
            ..Event::default()
        };
        let snapshot = Snapshot {
            warning_events: Source::fresh(vec![event], jiff::Timestamp::now(), Default::default()),
            ..Snapshot::default()
        };
        let by_webhook = kube_rescue::diagnose::webhooks::events_by_webhook(Some(&snapshot));
        if !by_webhook.contains_key(webhook) {
            missed.push(format!("{}: {message}", case["id"].as_str().unwrap()));
        }
    }
    assert!(read >= 5, "{read}");
    assert!(missed.is_empty(), "not counted:\n{}", missed.join("\n"));
}

/// Hostile or damaged text never trips the reader: every message cut at every character, an
/// empty one, and a huge one full of half-quotes are each read (as something, or unparsed),
/// the huge one at once.
#[test]
fn cut_empty_and_huge_messages_are_read_without_fail() {
    use kube_rescue::failure::{Cause, parse};
    assert_eq!(parse("", None), Cause::Unparsed);
    for case in cases() {
        let Some(message) = case["message"].as_str() else {
            continue;
        };
        for (at, _) in message.char_indices() {
            let _ = parse(&message[..at], Some(500));
        }
    }
    let huge = "failed calling webhook \"x\": Post \"https://a".repeat(100_000)
        + &"admission webhook \"".repeat(100_000)
        + &"ValidatingAdmissionPolicy '".repeat(100_000);
    let started = std::time::Instant::now();
    let cause = parse(&huge, Some(403));
    // A generous bound that catches a quadratic reading of a 9 MB text.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(cause.webhook(), Some("x"));
}
