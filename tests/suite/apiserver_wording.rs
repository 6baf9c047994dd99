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
