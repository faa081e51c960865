//! Sample workloads for the demo: one service per mirroring mode, a headless service with
//! per-pod hostnames, a federated service present in every cluster, and in the first cluster a
//! Service exported by a Multi-Cluster Services `ServiceExport` (the other clusters get a
//! `ServiceImport` and EndpointSlices for it next to the Linkerd mirror; docs/mcs.md).
//!
//! Applied with server-side apply under field manager `linkplane-dev`, so re-running `linkplane
//! dev` on a resumed state directory converges instead of failing on existing objects. kubesim has
//! no endpoints controller, so the Endpoints a real cluster would derive from pods are applied too.

use std::collections::BTreeMap;

use anyhow::Context;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Service};
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde_json::json;

/// Namespace every sample lives in.
pub const DEMO_NAMESPACE: &str = "demo";

/// What one cluster exports in the demo.
pub struct Sample {
    /// Service name.
    pub name: &'static str,
    /// Labels that export it (Linkerd's default selector labels).
    pub labels: &'static [(&'static str, &'static str)],
    /// Headless with hostnames.
    pub headless: bool,
    /// Exported by a `ServiceExport` (KEP-1645) instead of a label.
    pub service_export: bool,
}

/// The services seeded into the cluster at position `index` of the cluster list (the first
/// cluster exports in gateway mode, the second in remote-discovery mode, the third a headless
/// StatefulSet-like service; every cluster holds a member of the federated `checkout`).
pub fn samples_for(index: usize) -> Vec<Sample> {
    let mut out = vec![Sample {
        name: "checkout",
        labels: &[
            ("app", "checkout"),
            ("mirror.linkerd.io/federated", "member"),
        ],
        headless: false,
        service_export: false,
    }];
    match index % 3 {
        0 => {
            out.push(Sample {
                name: "web",
                labels: &[("app", "web"), ("mirror.linkerd.io/exported", "true")],
                headless: false,
                service_export: false,
            });
            out.push(Sample {
                name: "cart",
                labels: &[("app", "cart")],
                headless: false,
                service_export: true,
            });
        }
        1 => out.push(Sample {
            name: "api",
            labels: &[
                ("app", "api"),
                ("mirror.linkerd.io/exported", "remote-discovery"),
            ],
            headless: false,
            service_export: false,
        }),
        _ => out.push(Sample {
            name: "db",
            labels: &[("app", "db"), ("mirror.linkerd.io/exported", "true")],
            headless: true,
            service_export: false,
        }),
    }
    out
}

/// Applies the samples for `index` into the cluster behind `client`.
pub async fn seed(client: &Client, index: usize) -> anyhow::Result<Vec<String>> {
    let params = PatchParams::apply("linkplane-dev").force();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(DEMO_NAMESPACE, &params, &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEMO_NAMESPACE}})))
        .await
        .context("applying the demo namespace")?;
    let services: Api<Service> = Api::namespaced(client.clone(), DEMO_NAMESPACE);
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), DEMO_NAMESPACE);
    let mut names = Vec::new();
    for (n, sample) in samples_for(index).into_iter().enumerate() {
        let labels: BTreeMap<&str, &str> = sample.labels.iter().copied().collect();
        let mut spec = json!({"ports": [{"name": "http", "port": 8080, "targetPort": 8080, "protocol": "TCP"}]});
        if sample.headless {
            spec["clusterIP"] = json!("None");
        }
        let svc = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": sample.name, "namespace": DEMO_NAMESPACE, "labels": labels},
            "spec": spec,
        });
        services
            .patch(sample.name, &params, &Patch::Apply(svc))
            .await
            .with_context(|| format!("applying Service {}", sample.name))?;
        // Pod IPs from a documentation range, distinct per cluster and service.
        let ip = |pod: usize| format!("10.{}.{}.{}", 100 + index, n + 1, pod + 10);
        let addresses: Vec<serde_json::Value> = if sample.headless {
            (0..2)
                .map(|pod| json!({"ip": ip(pod), "hostname": format!("{}-{pod}", sample.name)}))
                .collect()
        } else {
            vec![json!({"ip": ip(0)})]
        };
        let mut ep_labels = labels.clone();
        if sample.headless {
            ep_labels.insert("service.kubernetes.io/headless", "");
        }
        let ep = json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": sample.name, "namespace": DEMO_NAMESPACE, "labels": ep_labels},
            "subsets": [{"addresses": addresses, "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}],
        });
        endpoints
            .patch(sample.name, &params, &Patch::Apply(ep))
            .await
            .with_context(|| format!("applying Endpoints {}", sample.name))?;
        if sample.service_export {
            export_with_mcs(client, &params, sample.name).await?;
        }
        names.push(format!("{DEMO_NAMESPACE}/{}", sample.name));
    }
    Ok(names)
}

/// Creates the `ServiceExport` of `demo/<name>`, installing the MCS CRDs first (linkplane
/// installs them too once the links with `mcs` are synced; the same content, so both converge).
async fn export_with_mcs(client: &Client, params: &PatchParams, name: &str) -> anyhow::Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for yaml in [
        linkplane_mirror::mcs::SERVICE_EXPORT_CRD,
        linkplane_mirror::mcs::SERVICE_IMPORT_CRD,
    ] {
        let crd: serde_json::Value =
            serde_saphyr::from_str(yaml).context("parsing an embedded MCS CRD")?;
        let crd_name = crd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        crds.patch(&crd_name, params, &Patch::Apply(crd))
            .await
            .with_context(|| format!("installing CRD {crd_name}"))?;
    }
    let exports: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        DEMO_NAMESPACE,
        &linkplane_mirror::mcs::service_export(),
    );
    let export = json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
        "metadata": {"name": name, "namespace": DEMO_NAMESPACE},
    });
    // A real API server serves a new CRD a moment after creating it.
    let mut last = None;
    for _ in 0..50 {
        match exports.patch(name, params, &Patch::Apply(&export)).await {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(anyhow::anyhow!(
        "applying ServiceExport {name}: {}",
        last.map(|e| e.to_string()).unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cluster_holds_a_federated_member_and_one_export() {
        for i in 0..3 {
            let s = samples_for(i);
            assert_eq!(s.len(), if i == 0 { 3 } else { 2 });
            assert!(
                s[0].labels
                    .contains(&("mirror.linkerd.io/federated", "member"))
            );
        }
        assert!(samples_for(2)[1].headless);
        let cart = &samples_for(0)[2];
        assert!(
            cart.service_export,
            "the first cluster exports one service with MCS"
        );
        assert!(
            !cart
                .labels
                .iter()
                .any(|(k, _)| k.starts_with("mirror.linkerd.io/"))
        );
        assert!(
            samples_for(1)[1]
                .labels
                .contains(&("mirror.linkerd.io/exported", "remote-discovery"))
        );
    }
}
