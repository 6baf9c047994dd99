//! Single objects of the kinds a remediation touches, read and changed under the request
//! deadline: reads, replace and delete with optimistic concurrency, create, server-side dry
//! runs, and SelfSubjectAccessReviews. Objects travel as JSON values so that a change keeps
//! every field the server sent, known to k8s-openapi or not.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams,
    Preconditions,
};
use kube::core::Resource as _;
use serde_json::Value;

use super::connect::Cluster;
use super::error::{AccessError, ErrorKind, Result};

/// The field manager kube-rescue's writes carry (visible in managedFields).
pub const FIELD_MANAGER: &str = "kube-rescue";

/// How long a write may take: admission webhooks get up to 30 s (timeoutSeconds' maximum)
/// before the apiserver answers, plus the probe's margin. Giving up earlier would leave the
/// change half-known: the apiserver may still apply it after the client has left.
pub const WRITE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(32);

/// A kind of object, as the apiserver serves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceType {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

impl ResourceType {
    /// `v1` or `admissionregistration.k8s.io/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }
}

/// What a SelfSubjectAccessReview answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessReview {
    pub allowed: bool,
    /// The authorizer's reason, when it gave one.
    pub reason: Option<String>,
}

fn to_dynamic(object: &Value) -> Result<DynamicObject> {
    serde_json::from_value(object.clone()).map_err(|e| {
        AccessError::new(
            ErrorKind::BadResponse,
            format!("the object cannot be sent: {e}"),
        )
    })
}

fn to_value(object: &DynamicObject) -> Result<Value> {
    serde_json::to_value(object).map_err(|e| {
        AccessError::new(
            ErrorKind::BadResponse,
            format!("the answer could not be read: {e}"),
        )
    })
}

fn post_params(dry_run: bool) -> PostParams {
    PostParams {
        dry_run,
        field_manager: Some(FIELD_MANAGER.into()),
    }
}

impl Cluster {
    fn dynamic(&self, resource: &ResourceType, namespace: Option<&str>) -> Api<DynamicObject> {
        let ar = resource.api_resource();
        match namespace.filter(|_| resource.namespaced) {
            Some(ns) => Api::namespaced_with(self.client(), ns, &ar),
            None => Api::all_with(self.client(), &ar),
        }
    }

    /// Reads one object; a missing one is an error of kind NotFound.
    pub async fn read_object(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value> {
        let api = self.dynamic(resource, namespace);
        let what = format!("get {} {name}", resource.plural);
        to_value(&self.call(&what, api.get(name)).await?)
    }

    /// Lists the objects of a kind in a namespace (or everywhere).
    pub async fn list_objects(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>> {
        let api = self.dynamic(resource, namespace);
        let what = format!("list {}", resource.plural);
        let list = self.call(&what, api.list(&ListParams::default())).await?;
        list.items.iter().map(to_value).collect()
    }

    /// Replaces an object (PUT). The object's resourceVersion is the precondition: if the
    /// stored object changed since, the apiserver answers 409 Conflict and nothing changes.
    pub async fn replace_object(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        object: &Value,
        dry_run: bool,
    ) -> Result<Value> {
        self.write_object(resource, namespace, object, dry_run, false)
            .await
    }

    /// Creates an object.
    pub async fn create_object(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        object: &Value,
        dry_run: bool,
    ) -> Result<Value> {
        self.write_object(resource, namespace, object, dry_run, true)
            .await
    }

    /// POST (`create`) or PUT of a whole object, as kube-rescue's field manager.
    async fn write_object(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        object: &Value,
        dry_run: bool,
        create: bool,
    ) -> Result<Value> {
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let api = self.dynamic(resource, namespace);
        let what = format!(
            "{}{} {} {name}",
            if dry_run { "dry-run " } else { "" },
            if create { "create" } else { "replace" },
            resource.plural
        );
        let sent = to_dynamic(object)?;
        let params = post_params(dry_run);
        let deadline = self.timeout().max(WRITE_DEADLINE);
        let answer = if create {
            self.call_within(&what, deadline, api.create(&params, &sent))
                .await?
        } else {
            self.call_within(&what, deadline, api.replace(name, &params, &sent))
                .await?
        };
        to_value(&answer)
    }

    /// Deletes an object only if it still has this uid and resourceVersion (409 otherwise).
    pub async fn delete_object(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        uid: &str,
        resource_version: &str,
        dry_run: bool,
    ) -> Result<()> {
        let api = self.dynamic(resource, namespace);
        let params = DeleteParams {
            dry_run,
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: Some(resource_version.to_string()),
            }),
            ..DeleteParams::default()
        };
        let what = format!(
            "{}delete {} {name}",
            if dry_run { "dry-run " } else { "" },
            resource.plural
        );
        let deadline = self.timeout().max(WRITE_DEADLINE);
        if !dry_run {
            self.call_within(&what, deadline, api.delete(name, &params))
                .await?;
            return Ok(());
        }
        // kube sends dryRun in the DeleteOptions body only; the query parameter as well makes
        // a dry run visible in the apiserver's request log and metrics, as for other verbs.
        let url = DynamicObject::url_path(
            &resource.api_resource(),
            namespace.filter(|_| resource.namespaced),
        );
        let mut request = kube::core::Request::new(url)
            .delete(name, &params)
            .map_err(|e| AccessError::new(ErrorKind::BadResponse, format!("{what}: {e}")))?;
        let uri = request.uri().to_string();
        let separator = if uri.contains('?') { '&' } else { '?' };
        *request.uri_mut() = format!("{uri}{separator}dryRun=All")
            .parse()
            .map_err(|e| AccessError::new(ErrorKind::BadResponse, format!("{what}: {e}")))?;
        let client = self.client();
        self.call_within(&what, deadline, client.request::<Value>(request))
            .await?;
        Ok(())
    }

    /// Asks the apiserver whether this user may `verb` the object (a SelfSubjectAccessReview,
    /// which is a POST: read-only mode refuses it like any write).
    pub async fn access_review(
        &self,
        verb: &str,
        resource: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<AccessReview> {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.to_string()),
                    group: Some(resource.group.to_string()),
                    version: Some(resource.version.to_string()),
                    resource: Some(resource.plural.to_string()),
                    namespace: namespace
                        .filter(|_| resource.namespaced)
                        .map(str::to_string),
                    name: Some(name.to_string()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let api: Api<SelfSubjectAccessReview> = Api::all(self.client());
        let what = format!("access review: {verb} {} {name}", resource.plural);
        let answer = self
            .call(&what, api.create(&PostParams::default(), &review))
            .await?;
        let status = answer.status.unwrap_or_default();
        Ok(AccessReview {
            allowed: status.allowed,
            reason: status.reason.filter(|r| !r.is_empty()),
        })
    }
}
