//! What the user asked for: an action name with its flags, and a `KIND/NAME` target in
//! kubectl's names and short names. Every mistake is one line naming what is valid.

use crate::cluster::ResourceType;

use super::{Error, Result};

pub const VALIDATING: ResourceType = ResourceType {
    group: "admissionregistration.k8s.io",
    version: "v1",
    kind: "ValidatingWebhookConfiguration",
    plural: "validatingwebhookconfigurations",
    namespaced: false,
};
pub const MUTATING: ResourceType = ResourceType {
    group: "admissionregistration.k8s.io",
    version: "v1",
    kind: "MutatingWebhookConfiguration",
    plural: "mutatingwebhookconfigurations",
    namespaced: false,
};
pub const NODE: ResourceType = ResourceType {
    group: "",
    version: "v1",
    kind: "Node",
    plural: "nodes",
    namespaced: false,
};
pub const DEPLOYMENT: ResourceType = ResourceType {
    group: "apps",
    version: "v1",
    kind: "Deployment",
    plural: "deployments",
    namespaced: true,
};
pub const SERVICE: ResourceType = ResourceType {
    group: "",
    version: "v1",
    kind: "Service",
    plural: "services",
    namespaced: true,
};

/// The kinds of object kube-rescue changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    ValidatingWebhookConfiguration,
    MutatingWebhookConfiguration,
    Node,
    Deployment,
}

const KINDS_HELP: &str = "validatingwebhookconfiguration/NAME (vwc), mutatingwebhookconfiguration/NAME (mwc), node/NAME (no), deployment/NAMESPACE/NAME (deploy)";

impl TargetKind {
    /// kubectl's singular name, as in `kubectl delete validatingwebhookconfiguration x`.
    pub fn kubectl_name(self) -> &'static str {
        match self {
            TargetKind::ValidatingWebhookConfiguration => "validatingwebhookconfiguration",
            TargetKind::MutatingWebhookConfiguration => "mutatingwebhookconfiguration",
            TargetKind::Node => "node",
            TargetKind::Deployment => "deployment",
        }
    }

    pub fn resource(self) -> ResourceType {
        match self {
            TargetKind::ValidatingWebhookConfiguration => VALIDATING,
            TargetKind::MutatingWebhookConfiguration => MUTATING,
            TargetKind::Node => NODE,
            TargetKind::Deployment => DEPLOYMENT,
        }
    }

    /// The kind of an object by its apiVersion and kind (a backup file's), if kube-rescue
    /// handles it.
    pub fn of_object(api_version: &str, kind: &str) -> Option<TargetKind> {
        [
            TargetKind::ValidatingWebhookConfiguration,
            TargetKind::MutatingWebhookConfiguration,
            TargetKind::Node,
            TargetKind::Deployment,
        ]
        .into_iter()
        .find(|k| {
            let r = k.resource();
            r.kind == kind && r.api_version() == api_version
        })
    }

    fn parse(word: &str) -> Option<TargetKind> {
        let word = word.to_ascii_lowercase();
        Some(match word.as_str() {
            "validatingwebhookconfiguration"
            | "validatingwebhookconfigurations"
            | "vwc"
            | "validatingwebhookconfiguration.admissionregistration.k8s.io"
            | "validatingwebhookconfigurations.admissionregistration.k8s.io" => {
                TargetKind::ValidatingWebhookConfiguration
            }
            "mutatingwebhookconfiguration"
            | "mutatingwebhookconfigurations"
            | "mwc"
            | "mutatingwebhookconfiguration.admissionregistration.k8s.io"
            | "mutatingwebhookconfigurations.admissionregistration.k8s.io" => {
                TargetKind::MutatingWebhookConfiguration
            }
            "node" | "nodes" | "no" => TargetKind::Node,
            "deployment" | "deployments" | "deploy" | "deployment.apps" | "deployments.apps" => {
                TargetKind::Deployment
            }
            _ => return None,
        })
    }

    fn is_webhook_configuration(self) -> bool {
        matches!(
            self,
            TargetKind::ValidatingWebhookConfiguration | TargetKind::MutatingWebhookConfiguration
        )
    }
}

/// One object: `vwc/opa-validating-webhook`, `node/n1`, `deployment/opa/opa`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub kind: TargetKind,
    pub namespace: Option<String>,
    pub name: String,
}

impl Target {
    pub fn new(kind: TargetKind, namespace: Option<&str>, name: &str) -> Target {
        Target {
            kind,
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }

    /// Parses `KIND/NAME`, or `deployment/NAMESPACE/NAME`.
    pub fn parse(text: &str) -> Result<Target> {
        let parts: Vec<&str> = text.split('/').collect();
        let Some(kind) = TargetKind::parse(parts[0]) else {
            return Err(Error::Input(if parts.len() == 1 {
                format!("target {text:?} has no kind: use {KINDS_HELP}")
            } else {
                format!("unknown kind {:?} in {text:?}: use {KINDS_HELP}", parts[0])
            }));
        };
        let valid_name = |s: &str| {
            !s.is_empty()
                && s.len() <= 253
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        };
        let shape = if kind == TargetKind::Deployment {
            "deployment/NAMESPACE/NAME"
        } else {
            "KIND/NAME"
        };
        let (namespace, name) = match (kind, parts.as_slice()) {
            (TargetKind::Deployment, [_, ns, name]) => (Some(*ns), *name),
            (k, [_, name]) if k != TargetKind::Deployment => (None, *name),
            _ => {
                return Err(Error::Input(format!(
                    "target {text:?} is not {shape} (e.g. {})",
                    if kind == TargetKind::Deployment {
                        "deployment/opa/opa"
                    } else {
                        "vwc/opa-validating-webhook"
                    }
                )));
            }
        };
        for part in namespace.iter().chain(std::iter::once(&name)) {
            if !valid_name(part) {
                return Err(Error::Input(format!(
                    "target {text:?}: {part:?} is not a valid Kubernetes name (lower-case letters, digits, '-' and '.')"
                )));
            }
        }
        Ok(Target::new(kind, namespace, name))
    }

    /// `validatingwebhookconfiguration/x`, `deployment/ns/x`.
    pub fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{ns}/{}", self.kind.kubectl_name(), self.name),
            None => format!("{}/{}", self.kind.kubectl_name(), self.name),
        }
    }
}

/// An action with its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Delete,
    FailOpen {
        webhook: Option<String>,
    },
    ExcludeSystemNamespaces {
        webhook: Option<String>,
    },
    SetTimeout {
        webhook: Option<String>,
        seconds: i32,
    },
    RestartBackend {
        webhook: Option<String>,
    },
    Cordon,
    Uncordon,
}

pub const ACTION_NAMES: [&str; 7] = [
    "delete",
    "fail-open",
    "exclude-system-namespaces",
    "set-timeout",
    "restart-backend",
    "cordon",
    "uncordon",
];

impl Action {
    /// The action named on the command line, with `--webhook` and `--seconds`.
    pub fn parse(name: &str, webhook: Option<&str>, seconds: Option<i64>) -> Result<Action> {
        let webhook_given = webhook.is_some();
        let webhook = webhook.map(str::to_string);
        let action = match name {
            "delete" => Action::Delete,
            "fail-open" => Action::FailOpen { webhook },
            "exclude-system-namespaces" => Action::ExcludeSystemNamespaces { webhook },
            "set-timeout" => {
                let Some(seconds) = seconds else {
                    return Err(Error::Input(
                        "set-timeout needs --seconds N (timeoutSeconds, 1 to 30)".into(),
                    ));
                };
                if !(1..=30).contains(&seconds) {
                    return Err(Error::Input(format!(
                        "--seconds {seconds}: timeoutSeconds must be between 1 and 30"
                    )));
                }
                Action::SetTimeout {
                    webhook,
                    seconds: seconds as i32,
                }
            }
            "restart-backend" => Action::RestartBackend { webhook },
            "cordon" => Action::Cordon,
            "uncordon" => Action::Uncordon,
            other => {
                return Err(Error::Input(format!(
                    "unknown action {other:?}: use one of {} (or `kube-rescue restore FILE`)",
                    ACTION_NAMES.join(", ")
                )));
            }
        };
        if seconds.is_some() && !matches!(action, Action::SetTimeout { .. }) {
            return Err(Error::Input(format!(
                "--seconds is only for set-timeout, not {name}"
            )));
        }
        if webhook_given && matches!(action, Action::Delete | Action::Cordon | Action::Uncordon) {
            return Err(Error::Input(format!(
                "--webhook does not apply to {name}: it acts on the whole object"
            )));
        }
        Ok(action)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Action::Delete => "delete",
            Action::FailOpen { .. } => "fail-open",
            Action::ExcludeSystemNamespaces { .. } => "exclude-system-namespaces",
            Action::SetTimeout { .. } => "set-timeout",
            Action::RestartBackend { .. } => "restart-backend",
            Action::Cordon => "cordon",
            Action::Uncordon => "uncordon",
        }
    }

    /// The one webhook `--webhook` chose (None: all of them).
    pub fn webhook(&self) -> Option<&str> {
        match self {
            Action::FailOpen { webhook }
            | Action::ExcludeSystemNamespaces { webhook }
            | Action::SetTimeout { webhook, .. }
            | Action::RestartBackend { webhook } => webhook.as_deref(),
            _ => None,
        }
    }

    /// Refuses a target this action does not apply to, naming the ones it does.
    pub fn check_target(&self, target: &Target) -> Result<()> {
        let applies = match self {
            Action::Delete
            | Action::FailOpen { .. }
            | Action::ExcludeSystemNamespaces { .. }
            | Action::SetTimeout { .. } => target.kind.is_webhook_configuration(),
            Action::RestartBackend { webhook } => {
                target.kind.is_webhook_configuration()
                    || (target.kind == TargetKind::Deployment && webhook.is_none())
            }
            Action::Cordon | Action::Uncordon => target.kind == TargetKind::Node,
        };
        if applies {
            return Ok(());
        }
        let valid = match self {
            Action::Cordon | Action::Uncordon => "node/NAME",
            Action::RestartBackend { webhook: None } => {
                "vwc/NAME, mwc/NAME [--webhook W] or deployment/NAMESPACE/NAME"
            }
            Action::RestartBackend { .. } => "vwc/NAME or mwc/NAME",
            _ => "vwc/NAME or mwc/NAME",
        };
        Err(Error::Input(format!(
            "{} does not apply to {}: it takes {valid}",
            self.name(),
            target.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_kubectl_names() {
        for text in [
            "vwc/opa",
            "validatingwebhookconfiguration/opa",
            "validatingwebhookconfigurations/opa",
            "ValidatingWebhookConfiguration/opa",
        ] {
            let t = Target::parse(text).unwrap();
            assert_eq!(t.kind, TargetKind::ValidatingWebhookConfiguration, "{text}");
            assert_eq!(t.name, "opa");
        }
        assert_eq!(
            Target::parse("mwc/x").unwrap().kind,
            TargetKind::MutatingWebhookConfiguration
        );
        for text in ["no/n1", "node/n1", "nodes/n1"] {
            assert_eq!(
                Target::parse(text).unwrap(),
                Target::new(TargetKind::Node, None, "n1")
            );
        }
        let d = Target::parse("deploy/opa/opa-server").unwrap();
        assert_eq!(
            d,
            Target::new(TargetKind::Deployment, Some("opa"), "opa-server")
        );
        assert_eq!(d.display(), "deployment/opa/opa-server");
    }

    #[test]
    fn bad_targets_say_what_is_valid() {
        let e = Target::parse("pod/x").unwrap_err().to_string();
        assert!(
            e.contains("unknown kind \"pod\"") && e.contains("vwc"),
            "{e}"
        );
        let e = Target::parse("opa").unwrap_err().to_string();
        assert!(e.contains("has no kind"), "{e}");
        let e = Target::parse("deployment/x").unwrap_err().to_string();
        assert!(e.contains("deployment/NAMESPACE/NAME"), "{e}");
        let e = Target::parse("vwc/a/b").unwrap_err().to_string();
        assert!(e.contains("KIND/NAME"), "{e}");
        let e = Target::parse("vwc/Bad_Name").unwrap_err().to_string();
        assert!(e.contains("not a valid Kubernetes name"), "{e}");
        assert!(Target::parse("vwc/").is_err());
    }

    #[test]
    fn actions_parse_and_check_their_flags_and_targets() {
        assert_eq!(Action::parse("delete", None, None).unwrap(), Action::Delete);
        assert_eq!(
            Action::parse("set-timeout", Some("w"), Some(5)).unwrap(),
            Action::SetTimeout {
                webhook: Some("w".into()),
                seconds: 5
            }
        );
        let e = Action::parse("set-timeout", None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--seconds"), "{e}");
        for bad in [0, 31, -1] {
            let e = Action::parse("set-timeout", None, Some(bad))
                .unwrap_err()
                .to_string();
            assert!(e.contains("between 1 and 30"), "{e}");
        }
        let e = Action::parse("nuke", None, None).unwrap_err().to_string();
        assert!(
            e.contains("unknown action \"nuke\"") && e.contains("fail-open"),
            "{e}"
        );
        let e = Action::parse("delete", Some("w"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--webhook does not apply to delete"), "{e}");
        let e = Action::parse("delete", None, Some(3))
            .unwrap_err()
            .to_string();
        assert!(e.contains("only for set-timeout"), "{e}");

        let node = Target::parse("node/n1").unwrap();
        let vwc = Target::parse("vwc/x").unwrap();
        let e = Action::Delete.check_target(&node).unwrap_err().to_string();
        assert_eq!(
            e,
            "delete does not apply to node/n1: it takes vwc/NAME or mwc/NAME"
        );
        let e = Action::Cordon.check_target(&vwc).unwrap_err().to_string();
        assert!(e.contains("takes node/NAME"), "{e}");
        assert!(Action::Cordon.check_target(&node).is_ok());
        let deploy = Target::parse("deploy/a/b").unwrap();
        assert!(
            Action::RestartBackend { webhook: None }
                .check_target(&deploy)
                .is_ok()
        );
        assert!(
            Action::FailOpen { webhook: None }
                .check_target(&deploy)
                .is_err()
        );
    }
}
