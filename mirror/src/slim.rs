//! The Kubernetes objects as the reconcilers read them: the full k8s-openapi types, decoded
//! without `metadata.managedFields`.
//!
//! An API server attaches managedFields to every object it returns, in every watch event and
//! every write response. In k8s-openapi they decode into trees of `serde_json::Value`, about half
//! of an object's allocations, and nothing here reads them. Every mirror costs four decodes
//! (two write responses, two watch echoes), so skipping that part saves real time. The wrappers
//! serialize as the full object, so they also serve for writes. Their `kube::Resource` identity
//! is the wrapped type's, so `Api<SlimService>` talks to `/api/v1/services` like `Api<Service>`.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{
        EndpointSubset, Endpoints, Namespace, NamespaceSpec, NamespaceStatus, Service, ServiceSpec,
        ServiceStatus,
    },
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time},
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `ObjectMeta` minus `managedFields` (unknown keys are skipped without building values).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct WireMeta {
    name: Option<String>,
    generate_name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    generation: Option<i64>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
    deletion_grace_period_seconds: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    owner_references: Option<Vec<OwnerReference>>,
    finalizers: Option<Vec<String>>,
}

impl From<WireMeta> for ObjectMeta {
    fn from(w: WireMeta) -> Self {
        ObjectMeta {
            name: w.name,
            generate_name: w.generate_name,
            namespace: w.namespace,
            uid: w.uid,
            resource_version: w.resource_version,
            generation: w.generation,
            creation_timestamp: w.creation_timestamp,
            deletion_timestamp: w.deletion_timestamp,
            deletion_grace_period_seconds: w.deletion_grace_period_seconds,
            labels: w.labels,
            annotations: w.annotations,
            owner_references: w.owner_references,
            finalizers: w.finalizers,
            managed_fields: None,
            self_link: None,
        }
    }
}

/// Defines a wrapper around a k8s-openapi type: decoded with [`WireMeta`], serialized and
/// identified as the wrapped type.
macro_rules! slim {
    ($(#[$doc:meta])* $name:ident($inner:ident) { $($field:ident: $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct $name(pub $inner);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                struct Wire {
                    #[serde(default)]
                    metadata: WireMeta,
                    $(#[serde(default)] $field: $ty,)*
                }
                let w = Wire::deserialize(d)?;
                Ok($name($inner {
                    metadata: w.metadata.into(),
                    $($field: w.$field,)*
                }))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(s)
            }
        }

        impl k8s_openapi::Resource for $name {
            const API_VERSION: &'static str = <$inner as k8s_openapi::Resource>::API_VERSION;
            const GROUP: &'static str = <$inner as k8s_openapi::Resource>::GROUP;
            const KIND: &'static str = <$inner as k8s_openapi::Resource>::KIND;
            const VERSION: &'static str = <$inner as k8s_openapi::Resource>::VERSION;
            const URL_PATH_SEGMENT: &'static str =
                <$inner as k8s_openapi::Resource>::URL_PATH_SEGMENT;
            type Scope = <$inner as k8s_openapi::Resource>::Scope;
        }

        impl k8s_openapi::Metadata for $name {
            type Ty = ObjectMeta;
            fn metadata(&self) -> &ObjectMeta {
                &self.0.metadata
            }
            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.0.metadata
            }
        }
    };
}

slim!(
    /// A Service decoded without managedFields.
    SlimService(Service) { spec: Option<ServiceSpec>, status: Option<ServiceStatus> }
);
slim!(
    /// An Endpoints object decoded without managedFields.
    SlimEndpoints(Endpoints) { subsets: Option<Vec<EndpointSubset>> }
);
slim!(
    /// A Namespace decoded without managedFields.
    SlimNamespace(Namespace) { spec: Option<NamespaceSpec>, status: Option<NamespaceStatus> }
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_everything_but_managed_fields_and_encodes_as_the_full_object() {
        let wire = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {
                "name": "web", "namespace": "shop", "uid": "u1", "resourceVersion": "42",
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"app": "web"}, "annotations": {"a": "b"},
                "managedFields": [{"manager": "kubectl", "operation": "Update",
                                   "fieldsType": "FieldsV1",
                                   "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}}}]
            },
            "spec": {"clusterIP": "10.0.0.7", "ports": [{"name": "http", "port": 80}]}
        });
        let slim: SlimService = serde_json::from_value(wire.clone()).unwrap();
        let full: Service = serde_json::from_value(wire).unwrap();
        let mut expected = full.clone();
        expected.metadata.managed_fields = None;
        assert_eq!(slim.0, expected);
        assert!(full.metadata.managed_fields.is_some());
        assert_eq!(
            serde_json::to_value(&slim).unwrap(),
            serde_json::to_value(&expected).unwrap()
        );
        assert_eq!(
            <SlimService as kube::Resource>::url_path(&(), Some("shop")),
            <Service as kube::Resource>::url_path(&(), Some("shop"))
        );
    }

    #[test]
    fn endpoints_and_namespaces_keep_their_content() {
        let eps: SlimEndpoints = serde_json::from_value(json!({
            "metadata": {"name": "web", "managedFields": []},
            "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]
        }))
        .unwrap();
        assert_eq!(
            eps.0.subsets.unwrap()[0].addresses.as_ref().unwrap()[0].ip,
            "10.0.0.1"
        );
        let ns: SlimNamespace =
            serde_json::from_value(json!({"metadata": {"name": "shop", "labels": {"x": "y"}}}))
                .unwrap();
        assert_eq!(ns.0.metadata.labels.unwrap()["x"], "y");
    }
}
