//! The `federated_services` and `federated_members` tables: federation state for the API.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::{Result, StoreError};

pub use linkplane_core::status::FederatedState;

pub use linkplane_core::status::MemberState;

/// One member of a federated service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    /// Cluster holding the member Service.
    pub cluster: String,
    /// True for the source cluster's own Service (`local-discovery`).
    pub is_local: bool,
    /// Its state.
    pub state: MemberState,
    /// Detail for Rejected/Unreachable.
    pub message: String,
    /// The member Service's creation time (oldest member wins metadata and port conflicts).
    pub member_since: Option<DateTime<Utc>>,
}

/// A federated service's state as the reconciler reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedStatus {
    /// Cluster holding `<svc>-federated`.
    pub source_cluster: String,
    /// Namespace (same for every member).
    pub namespace: String,
    /// Base service name.
    pub service: String,
    /// Name of the federated Service (possibly shortened).
    pub local_name: String,
    /// State.
    pub state: FederatedState,
    /// Detail for non-Federated states.
    pub message: String,
    /// `multicluster.linkerd.io/remote-discovery` as written.
    pub remote_discovery: String,
    /// Whether `multicluster.linkerd.io/local-discovery` is set.
    pub local_discovery: bool,
    /// Members, in annotation order.
    pub members: Vec<MemberStatus>,
}

/// A stored federated service.
#[derive(Debug, Clone, PartialEq)]
pub struct FederatedRow {
    /// Row id, stable for cursors.
    pub id: i64,
    /// The state.
    pub status: FederatedStatus,
    /// Last change of state.
    pub last_transition: DateTime<Utc>,
}

pub(crate) struct ServiceRow {
    pub(crate) id: i64,
    pub(crate) source_cluster: String,
    pub(crate) namespace: String,
    pub(crate) service: String,
    pub(crate) local_name: String,
    pub(crate) state: String,
    pub(crate) message: String,
    pub(crate) remote_discovery: String,
    pub(crate) local_discovery: bool,
    pub(crate) last_transition: DateTime<Utc>,
}

struct MemberRow {
    federated_id: i64,
    member_cluster: String,
    is_local: bool,
    state: String,
    message: String,
    member_since: Option<DateTime<Utc>>,
}

/// Records a federated service and replaces its member list, in one transaction.
pub async fn upsert(conn: &mut PgConnection, s: &FederatedStatus) -> Result<()> {
    let map = |e| {
        StoreError::from_sqlx(
            "FederatedService",
            &s.local_name,
            "recording federation state",
            e,
        )
    };
    let id: i64 = sqlx::query_scalar!(
        "INSERT INTO federated_services (source_cluster, namespace, service, local_name, state, message,
                                         remote_discovery, local_discovery)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (source_cluster, namespace, service) DO UPDATE SET
             local_name = EXCLUDED.local_name, state = EXCLUDED.state, message = EXCLUDED.message,
             remote_discovery = EXCLUDED.remote_discovery, local_discovery = EXCLUDED.local_discovery,
             updated_at = now(),
             last_transition = CASE WHEN federated_services.state = EXCLUDED.state
                                    THEN federated_services.last_transition ELSE now() END
         RETURNING id",
        s.source_cluster,
        s.namespace,
        s.service,
        s.local_name,
        s.state.as_str(),
        s.message,
        s.remote_discovery,
        s.local_discovery,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(map)?;
    let clusters: Vec<&str> = s.members.iter().map(|m| m.cluster.as_str()).collect();
    let locals: Vec<bool> = s.members.iter().map(|m| m.is_local).collect();
    let states: Vec<&str> = s.members.iter().map(|m| m.state.as_str()).collect();
    let messages: Vec<&str> = s.members.iter().map(|m| m.message.as_str()).collect();
    let since: Vec<Option<DateTime<Utc>>> = s.members.iter().map(|m| m.member_since).collect();
    sqlx::query!(
        "WITH incoming AS (
             SELECT * FROM UNNEST($2::text[], $3::bool[], $4::text[], $5::text[], $6::timestamptz[])
                 AS t(member_cluster, is_local, state, message, member_since)),
         removed AS (
             DELETE FROM federated_members m WHERE m.federated_id = $1
                 AND m.member_cluster NOT IN (SELECT member_cluster FROM incoming))
         INSERT INTO federated_members (federated_id, member_cluster, is_local, state, message, member_since)
         SELECT $1, member_cluster, is_local, state, message, member_since FROM incoming
         ON CONFLICT (federated_id, member_cluster) DO UPDATE SET is_local = EXCLUDED.is_local,
             state = EXCLUDED.state, message = EXCLUDED.message, member_since = EXCLUDED.member_since",
        id,
        &clusters as &[&str],
        &locals as &[bool],
        &states as &[&str],
        &messages as &[&str],
        &since as &[Option<DateTime<Utc>>],
    )
    .execute(&mut *conn)
    .await
    .map_err(map)?;
    Ok(())
}

/// Forgets a federated service (it was deleted because no member remains).
pub async fn delete(
    conn: &mut PgConnection,
    source_cluster: &str,
    namespace: &str,
    service: &str,
) -> Result<bool> {
    let done =
        sqlx::query!("DELETE FROM federated_services WHERE source_cluster = $1 AND namespace = $2 AND service = $3",
            source_cluster,
            namespace,
            service,
        )
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db("deleting federation state"))?;
    Ok(done.rows_affected() > 0)
}

/// Federated services, optionally of one source cluster and/or namespace, ordered by id after
/// `after_id`, at most `limit`, each with its members in annotation order (local first, then by
/// `member_since`, then by cluster name).
pub async fn list(
    conn: &mut PgConnection,
    source_cluster: Option<&str>,
    namespace: Option<&str>,
    after_id: i64,
    limit: i64,
) -> Result<Vec<FederatedRow>> {
    let services: Vec<ServiceRow> = select_services!(
        "FROM federated_services
         WHERE ($1::text IS NULL OR source_cluster = $1) AND ($2::text IS NULL OR namespace = $2) AND id > $3
         ORDER BY id LIMIT $4",
        source_cluster,
        namespace,
        after_id,
        limit,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("listing federated services"))?;
    with_members(conn, services).await
}

/// A checked `query_as!` of [`ServiceRow`]s: their select list followed by the statement's rest
/// (`FROM …`) as `+`-joined string literals, then the arguments (see `mirrors::select_rows!`).
macro_rules! select_services {
    ($rest:expr $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            $crate::federation::ServiceRow,
            "SELECT id, source_cluster, namespace, service, local_name, state, message, \
             remote_discovery, local_discovery, last_transition "
                + $rest
            $(, $arg)*
        )
    };
}
pub(crate) use select_services;

/// `services` with their members (one statement), in the order given.
pub(crate) async fn with_members(
    conn: &mut PgConnection,
    services: Vec<ServiceRow>,
) -> Result<Vec<FederatedRow>> {
    let ids: Vec<i64> = services.iter().map(|s| s.id).collect();
    let members: Vec<MemberRow> = sqlx::query_as!(
        MemberRow,
        "SELECT federated_id, member_cluster, is_local, state, message, member_since FROM federated_members
         WHERE federated_id = ANY($1)
         ORDER BY federated_id, is_local DESC, member_since NULLS LAST, member_cluster",
        &ids,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("listing federated members"))?;
    let mut by_id: std::collections::HashMap<i64, Vec<MemberStatus>> =
        std::collections::HashMap::new();
    for m in members {
        by_id.entry(m.federated_id).or_default().push(MemberStatus {
            cluster: m.member_cluster,
            is_local: m.is_local,
            state: MemberState::parse(&m.state).unwrap_or(MemberState::Rejected),
            message: m.message,
            member_since: m.member_since,
        });
    }
    Ok(services
        .into_iter()
        .map(|s| FederatedRow {
            id: s.id,
            last_transition: s.last_transition,
            status: FederatedStatus {
                members: by_id.remove(&s.id).unwrap_or_default(),
                source_cluster: s.source_cluster,
                namespace: s.namespace,
                service: s.service,
                local_name: s.local_name,
                state: FederatedState::parse(&s.state).unwrap_or(FederatedState::Error),
                message: s.message,
                remote_discovery: s.remote_discovery,
                local_discovery: s.local_discovery,
            },
        })
        .collect())
}

/// A federated service identified for the blast radius.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedRef {
    /// Row id.
    pub id: i64,
    /// Cluster holding the `<svc>-federated` Service.
    pub source_cluster: String,
    /// Namespace.
    pub namespace: String,
    /// Base service name.
    pub service: String,
    /// The federated Service's name.
    pub local_name: String,
}

/// Federated services with at least one `Member` whose every `Member` is in `cluster`.
pub async fn stranded_federated(
    conn: &mut PgConnection,
    cluster: &str,
) -> Result<Vec<FederatedRef>> {
    sqlx::query_as!(
        FederatedRef,
        "SELECT fs.id, fs.source_cluster, fs.namespace, fs.service, fs.local_name FROM federated_services fs
         WHERE EXISTS (SELECT 1 FROM federated_members m
                       WHERE m.federated_id = fs.id AND m.state = 'Member' AND m.member_cluster = $1)
           AND NOT EXISTS (SELECT 1 FROM federated_members m
                           WHERE m.federated_id = fs.id AND m.state = 'Member' AND m.member_cluster <> $1)
         ORDER BY fs.source_cluster, fs.namespace, fs.service",
        cluster,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("computing the federated blast radius"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Owner, clusters, test_support::cluster};

    fn member(c: &str, local: bool, state: MemberState) -> MemberStatus {
        MemberStatus {
            cluster: c.into(),
            is_local: local,
            state,
            message: String::new(),
            member_since: None,
        }
    }

    fn status(members: Vec<MemberStatus>) -> FederatedStatus {
        FederatedStatus {
            source_cluster: "west".into(),
            namespace: "shop".into(),
            service: "web".into(),
            local_name: "web-federated".into(),
            state: FederatedState::Federated,
            message: String::new(),
            remote_discovery: "web@east,web@north".into(),
            local_discovery: true,
            members,
        }
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn members_are_replaced_and_listed_local_first(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        clusters::upsert(&mut conn, &cluster("west"), &Owner::Api)
            .await
            .unwrap();
        let first = status(vec![
            member("east", false, MemberState::Member),
            member("north", false, MemberState::Member),
            member("west", true, MemberState::Member),
        ]);
        upsert(&mut conn, &first).await.unwrap();
        let mut second = status(vec![
            member("west", true, MemberState::Member),
            member("north", false, MemberState::Unreachable),
        ]);
        second.remote_discovery = "web@north".into();
        upsert(&mut conn, &second).await.unwrap();
        let rows = list(&mut conn, Some("west"), None, 0, 10).await.unwrap();
        assert_eq!(rows.len(), 1);
        let got: Vec<(String, MemberState)> = rows[0]
            .status
            .members
            .iter()
            .map(|m| (m.cluster.clone(), m.state))
            .collect();
        assert_eq!(
            got,
            vec![
                ("west".to_string(), MemberState::Member),
                ("north".to_string(), MemberState::Unreachable)
            ]
        );
        assert_eq!(rows[0].status.remote_discovery, "web@north");
        assert!(delete(&mut conn, "west", "shop", "web").await.unwrap());
        assert!(list(&mut conn, None, None, 0, 10).await.unwrap().is_empty());
    }
}
