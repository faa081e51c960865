//! Fleet fixtures shared by the schema tests and the API benchmark.
#![allow(dead_code, clippy::unwrap_used)]

use linkplane_core::{Cluster, CredentialsRef, Link};
use linkplane_schema::{Api, ApiOptions, Principal, Role};
use linkplane_store::{Owner, PgConnection, Store, clusters, gateways, links, reconcilers};

/// Cluster `i`'s name.
pub fn cluster_name(i: usize) -> String {
    format!("c{i:02}")
}

/// `n` clusters; each links to the next two (a ring), so 2n links when n > 2; `per_link`
/// mirrors per link (bulk-inserted), a gateway probe per link, a reconciler per cluster.
pub async fn seed_fleet(conn: &mut PgConnection, n: usize, per_link: usize) {
    for i in 0..n {
        let mut c = Cluster::new(
            cluster_name(i),
            format!("https://c{i}.example.com:6443"),
            CredentialsRef::KubeconfigFile(format!("/etc/linkplane/c{i}.kubeconfig")),
        );
        c.spec.labels.insert("region".into(), format!("r{}", i % 3));
        clusters::upsert(conn, &c, &Owner::Api).await.unwrap();
        let state = if i == 0 {
            reconcilers::ReconcilerState::Degraded
        } else {
            reconcilers::ReconcilerState::Running
        };
        reconcilers::set(conn, &cluster_name(i), state, "", true)
            .await
            .unwrap();
    }
    let hops: &[usize] = if n > 2 { &[1, 2] } else { &[1] };
    for i in 0..n {
        for &h in hops {
            let (src, dst) = (cluster_name(i), cluster_name((i + h) % n));
            let name = format!("{src}-from-{dst}");
            links::upsert(conn, &Link::new(&name, &src, &dst), &Owner::Api)
                .await
                .unwrap();
            gateways::record(conn, &name, i % 5 != 4, Some(1.0 + i as f64), 0, None)
                .await
                .unwrap();
        }
    }
    if per_link > 0 {
        sqlx::query(
            "INSERT INTO mirrors (link, source_cluster, target_cluster, remote_namespace, remote_name, local_name,
                                  mode, headless, state, message)
             SELECT l.name, l.source_cluster, l.target_cluster, 'ns' || (g % 10), 'svc' || g,
                    'svc' || g || '-' || l.target_cluster,
                    CASE WHEN g % 4 = 0 THEN 'remote-discovery' ELSE 'gateway' END, false,
                    CASE WHEN g % 50 = 7 THEN 'Conflict' ELSE 'Mirrored' END,
                    CASE WHEN g % 50 = 7 THEN 'a Service not owned by linkplane exists' ELSE '' END
             FROM links l, generate_series(0, $1 - 1) g",
        )
        .bind(per_link as i32)
        .execute(&mut *conn)
        .await
        .unwrap();
    }
}

/// The API over `pool`, with default options.
pub fn api(pool: sqlx::PgPool) -> Api {
    Api::new(Store::from_pool(pool), ApiOptions::default())
}

/// A caller with `role`.
pub fn as_role(role: Role) -> Option<Principal> {
    Some(Principal {
        token_id: None,
        role,
    })
}
