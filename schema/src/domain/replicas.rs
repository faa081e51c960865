//! Replicas and cluster ownership (issue 19): which server process runs each cluster's watches,
//! writer and gateway prober, under which lease epoch, and which replicas are alive.

use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};
use linkplane_store::leases;

use crate::{common::db, db::one, error::ApiResult};

/// A running linkplane server process sharing the database.
#[derive(SimpleObject, Debug, Clone)]
pub struct Replica {
    /// Unique per process start (`<pod>-<random>`); it is also in the user agent of every
    /// request the replica sends to a cluster.
    pub id: String,
    /// Pod or host name.
    pub name: String,
    /// True while its heartbeat is younger than its lease duration.
    pub alive: bool,
    /// When the process registered.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub heartbeat_at: DateTime<Utc>,
    /// Clusters whose lease it holds now.
    pub clusters: Vec<String>,
}

/// The replica holding a cluster's lease.
#[derive(SimpleObject, Debug, Clone)]
pub struct ClusterLease {
    /// The replica's id.
    pub replica: String,
    /// Fencing epoch: goes up on every change of holder.
    pub epoch: i64,
    /// The lease ends then unless renewed (renewed every few seconds while the holder lives).
    pub expires_at: DateTime<Utc>,
}

/// The valid lease of `cluster`, if any.
pub(crate) async fn owner_of(ctx: &Context<'_>, cluster: &str) -> ApiResult<Option<ClusterLease>> {
    let all = one!(db(ctx)?, |c| leases::list(c))?;
    Ok(all
        .into_iter()
        .find(|l| l.cluster == cluster && l.valid)
        .and_then(|l| {
            Some(ClusterLease {
                replica: l.holder?,
                epoch: l.epoch,
                expires_at: l.expires_at,
            })
        }))
}

/// The `replicas` query.
#[derive(Default)]
pub struct ReplicaQuery;

#[Object]
impl ReplicaQuery {
    /// Every registered replica, oldest first, with the clusters it owns. A replica that died
    /// without shutting down stays listed (not alive) for ten lease durations.
    async fn replicas(&self, ctx: &Context<'_>) -> ApiResult<Vec<Replica>> {
        let (replicas, held) = one!(db(ctx)?, |c| async {
            let r = leases::list_replicas(c).await?;
            let l = leases::list(c).await?;
            Ok::<_, linkplane_store::StoreError>((r, l))
        })?;
        Ok(replicas
            .into_iter()
            .map(|r| Replica {
                clusters: held
                    .iter()
                    .filter(|l| l.valid && l.holder.as_deref() == Some(r.id.as_str()))
                    .map(|l| l.cluster.clone())
                    .collect(),
                id: r.id,
                name: r.name,
                alive: r.alive,
                started_at: r.started_at,
                heartbeat_at: r.heartbeat_at,
            })
            .collect())
    }
}
