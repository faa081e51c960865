//! Remote-discovery credentials, provisioned and owned by linkplane (linkerd-compat §1.4, §3.3).
//!
//! Linkerd's destination controller resolves a remote-discovery (flat) or federated mirror
//! through its cluster store: a Secret in the **source** cluster's control-plane namespace, of
//! type `mirror.linkerd.io/remote-kubeconfig`, labelled `multicluster.linkerd.io/cluster-name:
//! <target>`, annotated with the target's trust and cluster domains, whose `kubeconfig` reaches
//! the **target** API server. For each `(source, target)` pair of a link that may receive such
//! mirrors (its `remoteDiscoverySelector` or `federatedServiceSelector` is set), one task here:
//!
//! 1. keeps in the target cluster (once the source has its Linkerd namespace), in namespace
//!    [`TARGET_NAMESPACE`] (linkplane's own; created if missing), a ServiceAccount and a ClusterRole + ClusterRoleBinding named
//!    `linkplane-remote-discovery-<source>`, with exactly the read rights the destination's
//!    remote watchers use ([`rules`]);
//! 2. obtains a token for it by TokenRequest and renews it at two thirds of its lifetime (or
//!    sooner, [`Options::remote_token_refresh`](crate::Options)); the Secret is replaced in
//!    place, so it always holds a valid token, and the previous token stays valid until its
//!    own expiry;
//! 3. writes `cluster-credentials-<target>` in the source's `linkerdNamespace` as soon as that
//!    namespace exists (watched; linkplane never creates it), with the target's `apiServer` and
//!    the CA of linkplane's kubeconfig for the target: never linkplane's own credential.
//!
//! A restart re-uses the token in the Secret while it is not due for renewal, so restarts do not
//! rotate (Linkerd's cluster store reads a Secret on add only). The state of each pair goes to
//! Postgres (`remote_credentials`, shown by the API) and to metrics. Removing the pair (its link
//! deleted with `cleanupOnUnlink`, or both selectors switched off) deletes the Secret and the
//! target-side objects: see [`delete_pair`].

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use k8s_openapi::{
    ByteString,
    api::{
        authentication::v1::{TokenRequest, TokenRequestSpec},
        core::v1::{Namespace, Secret, ServiceAccount},
        rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use linkplane_core::{Cluster, Link};
use linkplane_store::remote_credentials::{self, CredentialUpdate, RemoteCredentialState};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;
use tracing::Instrument;

pub(crate) mod gauges;
pub(crate) mod state;

pub use crate::credentials::ClusterTls;
pub use gauges::RemoteAccessMetrics;

use crate::{
    backoff::Backoff,
    config::Snapshot,
    error::{Error, Result},
    index::Kind,
    routing::{Change, Route},
    shared::Shared,
};
use gauges::labels;
use state::{Pair, PairSpec, PairTask};

/// The Secret type Linkerd's cluster store reads (`pkg/k8s` `MirrorSecretType`).
pub const SECRET_TYPE: &str = "mirror.linkerd.io/remote-kubeconfig";
/// The data key holding the kubeconfig (`pkg/k8s` `ConfigKeyName`).
pub const KUBECONFIG_KEY: &str = "kubeconfig";
/// Label naming the target cluster (destination `cluster_store.go` `clusterNameLabel`).
pub const CLUSTER_NAME_LABEL: &str = "multicluster.linkerd.io/cluster-name";
/// The target's identity trust domain.
pub const TRUST_DOMAIN_ANNOTATION: &str = "multicluster.linkerd.io/trust-domain";
/// The target's cluster domain.
pub const CLUSTER_DOMAIN_ANNOTATION: &str = "multicluster.linkerd.io/cluster-domain";
/// linkplane's mark on what it provisions here.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
const MANAGED_BY: &str = "linkplane";
/// The source cluster a target-side object serves.
pub const SOURCE_CLUSTER_LABEL: &str = "linkplane.io/source-cluster";
const ISSUED_ANNOTATION: &str = "linkplane.io/token-issued-at";
const EXPIRES_ANNOTATION: &str = "linkplane.io/token-expires-at";
/// The namespace in each target cluster holding linkplane's remote-discovery service accounts.
pub const TARGET_NAMESPACE: &str = "linkplane-remote-access";
const FIELD_MANAGER: &str = "linkplane";

/// `cluster-credentials-<target>`, Linkerd's name.
pub fn secret_name(target: &str) -> String {
    format!("cluster-credentials-{target}")
}

/// Name of the target-side ServiceAccount, ClusterRole and ClusterRoleBinding for `source`.
pub fn access_name(source: &str) -> String {
    format!("linkplane-remote-discovery-{source}")
}

/// Whether `link`'s source may receive remote-discovery or federated mirrors.
pub fn needs_credentials(link: &Link) -> bool {
    let set = |s: &Option<linkplane_core::selector::LabelSelector>| {
        s.as_ref().is_some_and(|s| !s.is_empty())
    };
    set(&link.spec.remote_discovery_selector) || set(&link.spec.federated_service_selector)
}

/// The read rights Linkerd's destination controller uses in a remote cluster
/// (`controller/api/destination/watcher/cluster_store.go` `decodeK8sConfigFromSecret`:
/// EndpointSlices or Endpoints, Pods, Services, Servers, and ReplicaSet metadata), each
/// get/list/watch. Nothing else: no Secrets, no writes, no Jobs or ConfigMaps (those are the
/// service mirror's and `linkerd check`'s, not remote discovery's).
pub fn rules() -> Vec<PolicyRule> {
    let read = || vec!["get".to_string(), "list".into(), "watch".into()];
    let rule = |group: &str, resources: &[&str]| PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: read(),
        ..PolicyRule::default()
    };
    vec![
        rule("", &["endpoints", "pods", "services"]),
        rule("discovery.k8s.io", &["endpointslices"]),
        rule("apps", &["replicasets"]),
        rule("policy.linkerd.io", &["servers"]),
    ]
}

fn wanted(snap: &Snapshot) -> BTreeMap<Pair, PairSpec> {
    let mut out: BTreeMap<Pair, PairSpec> = BTreeMap::new();
    for entry in snap.links.values() {
        let link = &entry.link;
        if !needs_credentials(link) {
            continue;
        }
        let (Some(source), Some(target)) = (
            snap.clusters.get(&link.spec.source),
            snap.clusters.get(&link.spec.target),
        ) else {
            continue;
        };
        let pair = (source.name.clone(), target.name.clone());
        let spec = out.entry(pair).or_insert_with(|| PairSpec {
            source: source.clone(),
            target: target.clone(),
            adopt: false,
            cleanup: false,
        });
        spec.adopt |= link.spec.adopt_linkerd_mirrors;
        spec.cleanup |= link.spec.cleanup_on_unlink;
    }
    out
}

/// Starts, updates and stops the per-pair tasks to match `new`. A pair whose links remain but no
/// longer need credentials (selectors switched off) is deleted here when one of those links has
/// `cleanupOnUnlink`; a pair whose links are gone is deleted by the durable link clean-up
/// (`supervisor::run_cleanup` → [`delete_pair`]).
///
/// With replicas, a pair's task runs only on the replica holding its source cluster's lease
/// (this is re-run on every change of ownership); a pair whose lease moved away is stopped here,
/// never deleted.
pub(crate) fn on_reload(shared: &Arc<Shared>, new: &Snapshot) {
    let configured = wanted(new);
    let wanted: BTreeMap<Pair, PairSpec> = configured
        .iter()
        .filter(|(pair, _)| shared.leases.may_write(&pair.0))
        .map(|(p, s)| (p.clone(), s.clone()))
        .collect();
    let mut tasks = shared
        .remote_access
        .tasks
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let gone: Vec<Pair> = tasks
        .keys()
        .filter(|p| !wanted.contains_key(*p))
        .cloned()
        .collect();
    for pair in gone {
        if let Some(t) = tasks.remove(&pair) {
            t.task.abort();
        }
        shared.metrics.remote_access.forget(&pair.0, &pair.1);
        if configured.contains_key(&pair) {
            // Still wanted, by the replica that now holds the source's lease.
            continue;
        }
        let still_linked: Vec<&Link> = new
            .links
            .values()
            .map(|l| &l.link)
            .filter(|l| l.spec.source == pair.0 && l.spec.target == pair.1)
            .collect();
        if !still_linked.is_empty() && still_linked.iter().any(|l| l.spec.cleanup_on_unlink) {
            let shared = shared.clone();
            let span =
                tracing::info_span!("remote_access_cleanup", source = %pair.0, target = %pair.1);
            tokio::spawn(
                async move {
                    let mut backoff = Backoff::default();
                    loop {
                        // Give up if the pair is wanted again (its new task owns the objects).
                        if shared.remote_access_wanted(&pair) {
                            return;
                        }
                        match delete_pair(&shared, &pair.0, &pair.1).await {
                            Ok(()) => return,
                            Err(e) => {
                                tracing::warn!(error = %e.chain(), "deleting remote-discovery credentials; retrying");
                                tokio::time::sleep(backoff.next()).await;
                            }
                        }
                    }
                }
                .instrument(span),
            );
        }
    }
    for (pair, spec) in wanted {
        if let Some(t) = tasks.get(&pair) {
            t.spec.send_if_modified(|cur| {
                if *cur == spec {
                    false
                } else {
                    *cur = spec;
                    true
                }
            });
            continue;
        }
        let (tx, rx) = watch::channel(spec);
        let span = tracing::info_span!("remote_access", source = %pair.0, target = %pair.1);
        let task = tokio::spawn(run_pair(shared.clone(), rx).instrument(span));
        tasks.insert(pair, PairTask { spec: tx, task });
    }
}

/// Remote-discovery credentials follow the configuration only: the route hears of reloads.
pub(crate) struct RemoteAccessRoute;

impl Route<Shared> for RemoteAccessRoute {
    fn on_change(&self, shared: &Shared, change: &Change<'_>) {
        if change.kind == Kind::Namespace {
            shared.remote_access.namespaces_changed();
        }
    }

    fn on_synced(&self, shared: &Shared, _cluster: &str) {
        shared.remote_access.namespaces_changed();
    }

    fn on_reload(&self, shared: &Arc<Shared>, _old: &Snapshot, new: &Snapshot) {
        on_reload(shared, new);
    }
}

impl Shared {
    fn remote_access_wanted(&self, pair: &Pair) -> bool {
        self.remote_access
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(pair)
    }

    /// A client for `cluster` whose writes are fenced by the lease of `source`, the pair's source
    /// cluster: with replicas, a pair's credentials (the Secret in the source, the account in
    /// the target) are written by the replica holding the source's lease alone, so the target's
    /// owner never races it. The source's own reconciler client is reused; for the target, the
    /// fence wraps that cluster's shared client ([`ClientCache`](crate::credentials::ClientCache)),
    /// so every pair reaching a cluster shares its one connection pool.
    async fn client_for(&self, cluster: &Cluster, source: &str) -> Result<Client> {
        if cluster.name == source
            && let Some(c) = self.runtime(&cluster.name).and_then(|r| r.client())
        {
            return Ok(c);
        }
        let client = self.options.credentials.client(cluster).await?;
        Ok(self.wrap_client(client, source))
    }
}

/// A token linkplane holds for a pair (never logged).
struct Token {
    token: SecretString,
    issued: DateTime<Utc>,
    expires: DateTime<Utc>,
}

impl Token {
    /// When to renew: two thirds into its lifetime, or after `refresh` if that is sooner.
    fn renew_at(&self, refresh: Option<Duration>) -> DateTime<Utc> {
        let life = self.expires - self.issued;
        let mut after = life * 2 / 3;
        if let Some(r) = refresh.and_then(|r| chrono::Duration::from_std(r).ok()) {
            after = after.min(r);
        }
        self.issued + after
    }
}

enum Outcome {
    Written,
    NamespaceMissing,
}

async fn run_pair(shared: Arc<Shared>, mut rx: watch::Receiver<PairSpec>) {
    let mut token: Option<Token> = None;
    let mut backoff = Backoff::default();
    loop {
        let spec = rx.borrow_and_update().clone();
        let (source, target) = (spec.source.name.clone(), spec.target.name.clone());
        let name = secret_name(&target);
        let ns = spec.source.spec.linkerd_namespace.clone();
        let m = &shared.metrics.remote_access;
        let outcome = {
            // Closed never (the semaphore lives as long as `shared`): an error would only mean
            // running unbounded.
            let _permit = shared.remote_access.passes.acquire().await.ok();
            // Boxed: inline, the pass's state machine (~16 KB) would stay in every pair's task
            // while it sleeps until its token's renewal, 9,900 of them in a 100-cluster mesh.
            Box::pin(ensure(&shared, &spec, &mut token)).await
        };
        let wait: Wait = match outcome {
            Ok(Outcome::Written) => {
                backoff = Backoff::default();
                let t = token.as_ref();
                Box::pin(record(&shared, &spec, RemoteCredentialState::Issued, t, "")).await;
                match t {
                    Some(t) => {
                        let due = t.renew_at(shared.options.remote_token_refresh);
                        Wait::Until((due - Utc::now()).to_std().unwrap_or_default())
                    }
                    None => Wait::Until(Duration::from_secs(1)),
                }
            }
            Ok(Outcome::NamespaceMissing) => {
                let msg = format!(
                    "namespace {ns} does not exist in cluster {source}: Linkerd's control plane is not installed there (linkplane never creates it); {name} is written as soon as it appears"
                );
                tracing::info!("{msg}");
                Box::pin(record(
                    &shared,
                    &spec,
                    RemoteCredentialState::NamespaceMissing,
                    None,
                    &msg,
                ))
                .await;
                Wait::Namespace
            }
            Err(e) => {
                let msg = e.chain();
                tracing::warn!(error = %msg, "provisioning remote-discovery credentials");
                m.errors.get_or_create(&labels(&source, &target)).inc();
                Box::pin(record(
                    &shared,
                    &spec,
                    RemoteCredentialState::Error,
                    None,
                    &msg,
                ))
                .await;
                Wait::Until(backoff.next())
            }
        };
        let namespace_appeared = async {
            match &wait {
                Wait::Namespace => wait_for_namespace(&shared, &source, &ns).await,
                Wait::Until(d) => tokio::time::sleep(*d).await,
            }
        };
        tokio::select! {
            () = namespace_appeared => {}
            changed = rx.changed() => if changed.is_err() { return },
        }
    }
}

enum Wait {
    Until(Duration),
    Namespace,
}

/// Returns once namespace `ns` is in the index of the source cluster's runtime (fed by that
/// cluster's one namespace watch). Not a watch per pair: a pair per link waiting this way held
/// one watch stream each, N×(N−1) in a fleet without Linkerd, the per-link watching linkplane
/// exists to avoid (BENCHMARKS.md, fleet scale).
async fn wait_for_namespace(shared: &Shared, source: &str, ns: &str) {
    loop {
        // Registered before the check, so a change between the check and the wait still wakes.
        let mut changed = std::pin::pin!(shared.remote_access.namespaces.notified());
        changed.as_mut().enable();
        let present = shared
            .runtime(source)
            .is_some_and(|rt| rt.is_synced() && rt.index().has_namespace(ns));
        if present {
            return;
        }
        changed.await;
    }
}

async fn record(
    shared: &Shared,
    spec: &PairSpec,
    state: RemoteCredentialState,
    token: Option<&Token>,
    message: &str,
) {
    let (source, target) = (&spec.source.name, &spec.target.name);
    shared
        .metrics
        .remote_access
        .set_state(source, target, state);
    if let Some(t) = token {
        shared
            .metrics
            .remote_access
            .expiry
            .get_or_create(&labels(source, target))
            .set(t.expires.timestamp());
    }
    let name = secret_name(target);
    let update = CredentialUpdate {
        state,
        secret_name: &name,
        namespace: &spec.source.spec.linkerd_namespace,
        issued: token.map(|t| (t.issued, t.expires)),
        message,
    };
    // Retried until written: after this the pair sleeps until its token's renewal (hours), so
    // a write lost to a busy pool (5 s acquire timeout at a fleet's cold start) or a database
    // blip would leave the API without the pair's state until then. The bench at 100 clusters
    // saw 85-218 pairs that way.
    let mut backoff = Backoff::default();
    loop {
        let result = async {
            let mut conn = shared.store.acquire().await?;
            remote_credentials::set(&mut conn, source, target, &update).await
        }
        .await;
        match result {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "recording the state of remote-discovery credentials; retrying");
                tokio::time::sleep(backoff.next()).await;
            }
        }
    }
}

/// One pass: target-side objects, a current token, the source-side Secret.
async fn ensure(shared: &Shared, spec: &PairSpec, token: &mut Option<Token>) -> Result<Outcome> {
    let (source, target) = (&spec.source, &spec.target);
    // The source first: without Linkerd there, nothing is created in the target.
    let source_client = shared.client_for(source, &source.name).await?;
    let ns = &source.spec.linkerd_namespace;
    let namespaces: Api<Namespace> = Api::all(source_client.clone());
    let present = namespaces
        .get_opt(ns)
        .await
        .map_err(Error::kube(format!("reading namespace {ns}")))?;
    if present.is_none() {
        return Ok(Outcome::NamespaceMissing);
    }
    let target_client = shared.client_for(target, &source.name).await?;
    ensure_target_objects(&target_client, &source.name).await?;
    let secrets: Api<Secret> = Api::namespaced(source_client, ns);
    let name = secret_name(&target.name);
    let existing = secrets
        .get_opt(&name)
        .await
        .map_err(Error::kube(format!("reading Secret {ns}/{name}")))?;
    if let Some(s) = &existing
        && !is_ours(s)
        && !spec.adopt
    {
        return Err(Error::Credentials {
            cluster: source.name.clone(),
            reason: format!(
                "Secret {ns}/{name} exists and is not linkplane's (adoptLinkerdMirrors is false on every link of this pair): left untouched"
            ),
        });
    }
    let tls = shared.options.credentials.tls_of(target).await?;
    let refresh = shared.options.remote_token_refresh;
    let now = Utc::now();

    // A token we hold, or (after a restart) the one in our Secret, while it is not due.
    if token.is_none()
        && let Some(s) = &existing
        && is_ours(s)
        && let Some(t) = token_in(s)
        && let Ok(desired) = desired_secret(spec, &tls, &t)
        && same_secret(s, &desired)
    {
        *token = Some(t);
    }
    if token.as_ref().is_none_or(|t| t.renew_at(refresh) <= now) {
        *token = Some(
            request_token(
                &target_client,
                &source.name,
                shared.options.remote_token_lifetime,
            )
            .await?,
        );
        shared
            .metrics
            .remote_access
            .issued
            .get_or_create(&labels(&source.name, &target.name))
            .inc();
        tracing::info!("issued a remote-discovery token");
    }
    let Some(t) = token.as_ref() else {
        return Ok(Outcome::Written);
    };
    let desired = desired_secret(spec, &tls, t)?;
    match existing {
        Some(s) if same_secret(&s, &desired) => {}
        Some(s) => {
            // Replaced in place (with its resourceVersion): there is never a moment without it.
            let mut next = desired;
            next.metadata.resource_version = s.metadata.resource_version.clone();
            secrets
                .replace(&name, &PostParams::default(), &next)
                .await
                .map_err(Error::kube(format!("replacing Secret {ns}/{name}")))?;
            tracing::info!(secret = %name, namespace = %ns, "remote-discovery credentials written");
        }
        None => {
            secrets
                .create(&PostParams::default(), &desired)
                .await
                .map_err(Error::kube(format!("creating Secret {ns}/{name}")))?;
            tracing::info!(secret = %name, namespace = %ns, "remote-discovery credentials created");
        }
    }
    Ok(Outcome::Written)
}

fn is_ours(s: &Secret) -> bool {
    s.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .is_some_and(|v| v == MANAGED_BY)
}

fn same_secret(a: &Secret, b: &Secret) -> bool {
    a.type_ == b.type_
        && a.data == b.data
        && a.metadata.labels == b.metadata.labels
        && a.metadata.annotations == b.metadata.annotations
}

/// The token of our Secret and its recorded lifetime.
fn token_in(s: &Secret) -> Option<Token> {
    let ann = s.metadata.annotations.as_ref()?;
    let time = |k: &str| {
        ann.get(k)
            .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let bytes = s.data.as_ref()?.get(KUBECONFIG_KEY)?;
    let text = std::str::from_utf8(&bytes.0).ok()?;
    let config = kube::config::Kubeconfig::from_yaml(text).ok()?;
    let token = config
        .auth_infos
        .first()?
        .auth_info
        .as_ref()?
        .token
        .clone()?;
    Some(Token {
        token,
        issued: time(ISSUED_ANNOTATION)?,
        expires: time(EXPIRES_ANNOTATION)?,
    })
}

fn meta(name: &str, namespace: Option<&str>, source: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(BTreeMap::from([
            (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
            (SOURCE_CLUSTER_LABEL.to_string(), source.to_string()),
        ])),
        ..ObjectMeta::default()
    }
}

/// The namespace (created if missing, never deleted), ServiceAccount, ClusterRole and binding in
/// the target cluster, applied server-side (a no-op when unchanged).
async fn ensure_target_objects(client: &Client, source: &str) -> Result<()> {
    let name = access_name(source);
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(TARGET_NAMESPACE.into()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY_LABEL.to_string(),
                MANAGED_BY.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces
        .get_opt(TARGET_NAMESPACE)
        .await
        .map_err(Error::kube(format!("reading namespace {TARGET_NAMESPACE}")))?
        .is_none()
    {
        match namespaces.create(&PostParams::default(), &ns).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => {
                return Err(Error::kube(format!(
                    "creating namespace {TARGET_NAMESPACE}"
                ))(e));
            }
        }
    }
    // Each object is read first and applied only when it differs: an unchanged fleet writes
    // nothing on restart or renewal.
    let ours = meta(&name, None, source).labels.unwrap_or_default();
    let marked = |m: &ObjectMeta| {
        let have = m.labels.clone().unwrap_or_default();
        ours.iter().all(|(k, v)| have.get(k) == Some(v))
    };
    let sa = ServiceAccount {
        metadata: meta(&name, Some(TARGET_NAMESPACE), source),
        ..ServiceAccount::default()
    };
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), TARGET_NAMESPACE);
    let current = sas.get_opt(&name).await.map_err(Error::kube(format!(
        "reading ServiceAccount {TARGET_NAMESPACE}/{name}"
    )))?;
    if !current.is_some_and(|c| marked(&c.metadata)) {
        sas.patch(
            &name,
            &pp,
            &Patch::Apply(&with_type(sa, "v1", "ServiceAccount")?),
        )
        .await
        .map_err(Error::kube(format!(
            "applying ServiceAccount {TARGET_NAMESPACE}/{name}"
        )))?;
    }
    let role = ClusterRole {
        metadata: meta(&name, None, source),
        rules: Some(rules()),
        ..ClusterRole::default()
    };
    let roles = Api::<ClusterRole>::all(client.clone());
    let current = roles
        .get_opt(&name)
        .await
        .map_err(Error::kube(format!("reading ClusterRole {name}")))?;
    if !current.is_some_and(|c| marked(&c.metadata) && c.rules == role.rules) {
        roles
            .patch(
                &name,
                &pp,
                &Patch::Apply(&with_type(
                    role,
                    "rbac.authorization.k8s.io/v1",
                    "ClusterRole",
                )?),
            )
            .await
            .map_err(Error::kube(format!("applying ClusterRole {name}")))?;
    }
    let binding = ClusterRoleBinding {
        metadata: meta(&name, None, source),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: name.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: name.clone(),
            namespace: Some(TARGET_NAMESPACE.into()),
            ..Subject::default()
        }]),
    };
    let bindings = Api::<ClusterRoleBinding>::all(client.clone());
    let current = bindings
        .get_opt(&name)
        .await
        .map_err(Error::kube(format!("reading ClusterRoleBinding {name}")))?;
    let same_subjects = |have: &Option<Vec<Subject>>| {
        let key = |s: &Subject| (s.kind.clone(), s.name.clone(), s.namespace.clone());
        let a: Vec<_> = have.iter().flatten().map(key).collect();
        let b: Vec<_> = binding.subjects.iter().flatten().map(key).collect();
        a == b
    };
    if !current.is_some_and(|c| {
        marked(&c.metadata) && c.role_ref == binding.role_ref && same_subjects(&c.subjects)
    }) {
        bindings
            .patch(
                &name,
                &pp,
                &Patch::Apply(&with_type(
                    binding,
                    "rbac.authorization.k8s.io/v1",
                    "ClusterRoleBinding",
                )?),
            )
            .await
            .map_err(Error::kube(format!("applying ClusterRoleBinding {name}")))?;
    }
    Ok(())
}

/// An apply patch must name its apiVersion and kind.
fn with_type<T: serde::Serialize>(
    obj: T,
    api_version: &str,
    kind: &str,
) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(obj).map_err(|e| Error::Credentials {
        cluster: String::new(),
        reason: format!("encoding {kind}: {e}"),
    })?;
    v["apiVersion"] = api_version.into();
    v["kind"] = kind.into();
    Ok(v)
}

async fn request_token(client: &Client, source: &str, lifetime: Duration) -> Result<Token> {
    let name = access_name(source);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(lifetime.as_secs().try_into().unwrap_or(i64::MAX)),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let issued = Utc::now();
    let answer = Api::<ServiceAccount>::namespaced(client.clone(), TARGET_NAMESPACE)
        .create_token_request(&name, &PostParams::default(), &request)
        .await
        .map_err(Error::kube(format!(
            "requesting a token for {TARGET_NAMESPACE}/{name}"
        )))?;
    let status = answer.status.ok_or_else(|| Error::Credentials {
        cluster: String::new(),
        reason: "the TokenRequest answer has no status".into(),
    })?;
    // The server may shorten the lifetime (`--service-account-max-token-expiration`): its
    // expirationTimestamp is the truth.
    let expires = DateTime::<Utc>::from_timestamp(status.expiration_timestamp.0.as_second(), 0)
        .unwrap_or(issued);
    Ok(Token {
        token: SecretString::from(status.token),
        issued,
        expires,
    })
}

fn desired_secret(spec: &PairSpec, tls: &ClusterTls, token: &Token) -> Result<Secret> {
    let (source, target) = (&spec.source, &spec.target);
    let user = access_name(&source.name);
    let mut cluster = serde_json::json!({ "server": target.spec.api_server });
    if let Some(ca) = &tls.ca_data {
        cluster["certificate-authority-data"] = ca.clone().into();
    }
    if tls.insecure {
        cluster["insecure-skip-tls-verify"] = true.into();
    }
    if let Some(n) = &tls.server_name {
        cluster["tls-server-name"] = n.clone().into();
    }
    // JSON is YAML: client-go's clientcmd and kube's Kubeconfig both read it.
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": target.name, "cluster": cluster }],
        "users": [{ "name": user, "user": { "token": token.token.expose_secret() } }],
        "contexts": [{ "name": target.name, "context": { "cluster": target.name, "user": user } }],
        "current-context": target.name,
    });
    let text = serde_json::to_string_pretty(&kubeconfig).map_err(|e| Error::Credentials {
        cluster: target.name.clone(),
        reason: format!("encoding the kubeconfig: {e}"),
    })?;
    let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(&target.name)),
            namespace: Some(source.spec.linkerd_namespace.clone()),
            labels: Some(BTreeMap::from([
                (CLUSTER_NAME_LABEL.to_string(), target.name.clone()),
                (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
            ])),
            annotations: Some(BTreeMap::from([
                (
                    TRUST_DOMAIN_ANNOTATION.to_string(),
                    target.spec.trust_domain.clone(),
                ),
                (
                    CLUSTER_DOMAIN_ANNOTATION.to_string(),
                    target.spec.cluster_domain.clone(),
                ),
                (ISSUED_ANNOTATION.to_string(), rfc(token.issued)),
                (EXPIRES_ANNOTATION.to_string(), rfc(token.expires)),
            ])),
            ..ObjectMeta::default()
        },
        type_: Some(SECRET_TYPE.into()),
        data: Some(BTreeMap::from([(
            KUBECONFIG_KEY.to_string(),
            ByteString(text.into_bytes()),
        )])),
        ..Secret::default()
    })
}

/// Deletes `(source, target)`'s credentials: the Secret in the source (only if linkplane's) and
/// the ServiceAccount, ClusterRole and binding in the target (which serve this pair alone: they
/// are named after the source). A cluster no longer configured is skipped. Missing objects are
/// fine; the state row goes last.
pub(crate) async fn delete_pair(shared: &Shared, source: &str, target: &str) -> Result<()> {
    let snap = shared.snapshot();
    let dp = DeleteParams::default();
    let gone = |r: std::result::Result<_, kube::Error>, what: String| match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(Error::kube(what)(e)),
    };
    if let Some(src) = snap.clusters.get(source) {
        let client = shared.client_for(src, source).await?;
        let ns = &src.spec.linkerd_namespace;
        let name = secret_name(target);
        let secrets: Api<Secret> = Api::namespaced(client, ns);
        let existing = secrets
            .get_opt(&name)
            .await
            .map_err(Error::kube(format!("reading Secret {ns}/{name}")))?;
        if existing.as_ref().is_some_and(is_ours) {
            gone(
                secrets.delete(&name, &dp).await.map(|_| ()),
                format!("deleting Secret {ns}/{name}"),
            )?;
            tracing::info!(secret = %name, namespace = %ns, "remote-discovery credentials deleted");
        }
    }
    if let Some(tgt) = snap.clusters.get(target) {
        let client = shared.client_for(tgt, source).await?;
        let name = access_name(source);
        gone(
            Api::<ClusterRoleBinding>::all(client.clone())
                .delete(&name, &dp)
                .await
                .map(|_| ()),
            format!("deleting ClusterRoleBinding {name}"),
        )?;
        gone(
            Api::<ClusterRole>::all(client.clone())
                .delete(&name, &dp)
                .await
                .map(|_| ()),
            format!("deleting ClusterRole {name}"),
        )?;
        gone(
            Api::<ServiceAccount>::namespaced(client, TARGET_NAMESPACE)
                .delete(&name, &dp)
                .await
                .map(|_| ()),
            format!("deleting ServiceAccount {TARGET_NAMESPACE}/{name}"),
        )?;
    }
    let mut conn = shared.store.acquire().await?;
    remote_credentials::delete(&mut conn, source, target).await?;
    shared.metrics.remote_access.forget(source, target);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_at_two_thirds_or_sooner_when_asked() {
        let issued = Utc::now();
        let t = Token {
            token: SecretString::from("x"),
            issued,
            expires: issued + chrono::Duration::seconds(3600),
        };
        assert_eq!(t.renew_at(None), issued + chrono::Duration::seconds(2400));
        assert_eq!(
            t.renew_at(Some(Duration::from_secs(60))),
            issued + chrono::Duration::seconds(60)
        );
    }

    #[test]
    fn rules_are_read_only_and_never_secrets() {
        for r in rules() {
            assert_eq!(r.verbs, vec!["get", "list", "watch"]);
            let res = r.resources.unwrap_or_default();
            assert!(!res.iter().any(|x| x == "secrets" || x == "*"), "{res:?}");
        }
    }
}
