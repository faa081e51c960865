//! Replicas beside `linkplane dev`'s own server (issue 19): more `linkplane serve` processes on
//! its database, clusters and Git repository, as the pods of one Deployment share them; who
//! holds which cluster, from the API; and kubesim's request log, read over its admin endpoint,
//! to see which replica wrote into which cluster and when.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::dev::DevEnv;

/// Another `linkplane serve` with the dev server's environment on its own port and Git cache
/// (each pod has its own `emptyDir`); killed on drop.
pub struct Replica {
    child: Child,
    port: u16,
    /// `LINKPLANE_REPLICA_NAME`: the prefix of its replica id.
    pub name: String,
    log: PathBuf,
    _cache: tempfile::TempDir,
}

impl Drop for Replica {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `signal` (`KILL`, `STOP`, `CONT`) to `pid` with kill(1); panics when it fails.
pub fn signal(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill -{signal} {pid}");
}

impl Replica {
    /// Starts a replica called `name` beside `env`'s server, with that server's environment
    /// (database, Git source, webhook secret, credentials key, lease timings) but its own
    /// listen port, name and Git cache.
    pub fn spawn(env: &DevEnv, name: &str) -> Replica {
        let server = env.reload_facts().server_pid;
        let environ =
            std::fs::read(format!("/proc/{server}/environ")).expect("the dev server's environment");
        let vars: Vec<(String, String)> = environ
            .split(|b| *b == 0)
            .filter_map(|kv| {
                let kv = String::from_utf8_lossy(kv);
                let (k, v) = kv.split_once('=')?;
                Some((k.to_string(), v.to_string()))
            })
            .collect();
        let bin =
            std::fs::read_link(format!("/proc/{server}/exe")).expect("the dev server's binary");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let cache = tempfile::Builder::new()
            .prefix("linkplane-replica-git.")
            .tempdir()
            .expect("temp dir");
        let log = std::env::temp_dir().join(format!("linkplane-replica-{name}-{port}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(bin)
            .arg("serve")
            .env_clear()
            .envs(vars)
            .env("LINKPLANE_LISTEN", format!("127.0.0.1:{port}"))
            .env("LINKPLANE_REPLICA_NAME", name)
            .env("LINKPLANE_GIT_CACHE_DIR", cache.path())
            .stdout(Stdio::null())
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("the replica starts");
        Replica {
            child,
            port,
            name: name.to_string(),
            log,
            _cache: cache,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `kill -9`, and reaps it.
    pub fn kill9(&mut self) {
        signal(self.pid(), "KILL");
        let _ = self.child.wait();
    }

    /// Everything it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of its log, for assertion messages.
    pub fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// The replica id in a user agent `linkplane/<version> (replica <id>)`.
pub fn replica_of(user_agent: &str) -> Option<&str> {
    user_agent
        .strip_prefix("linkplane/")?
        .split_once("(replica ")?
        .1
        .strip_suffix(')')
}

/// Who holds what, from one replica's API.
#[derive(Debug, Clone, Default)]
pub struct Ownership {
    /// Live replicas: id → (name, clusters whose valid lease it holds).
    pub replicas: BTreeMap<String, (String, BTreeSet<String>)>,
    /// Cluster → (holder, epoch) of its valid lease.
    pub holders: BTreeMap<String, (String, i64)>,
}

impl Ownership {
    /// Reads `replicas` and each cluster's lease through `base_url`'s GraphQL API; `None` while
    /// it does not answer (killed, stopped, database away).
    pub async fn read(base_url: &str, token: &str) -> Option<Ownership> {
        let query = "{ replicas { id name alive clusters } clusters(first: 50) { edges { node { name lease { replica epoch } } } } }";
        let res: Value = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .ok()?
            .post(format!("{base_url}/graphql"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "query": query }))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        if res.get("errors").is_some() {
            return None;
        }
        let data = &res["data"];
        let replicas = data["replicas"]
            .as_array()?
            .iter()
            .filter(|r| r["alive"] == true)
            .filter_map(|r| {
                let clusters = r["clusters"]
                    .as_array()?
                    .iter()
                    .filter_map(|c| c.as_str().map(str::to_string))
                    .collect();
                Some((
                    r["id"].as_str()?.to_string(),
                    (r["name"].as_str()?.to_string(), clusters),
                ))
            })
            .collect();
        let holders = data["clusters"]["edges"]
            .as_array()?
            .iter()
            .filter_map(|e| {
                let n = &e["node"];
                Some((
                    n["name"].as_str()?.to_string(),
                    (
                        n["lease"]["replica"].as_str()?.to_string(),
                        n["lease"]["epoch"].as_i64()?,
                    ),
                ))
            })
            .collect();
        Some(Ownership { replicas, holders })
    }

    /// Ok when each of `clusters` is held by exactly one live replica, the replicas' own lists
    /// agree with the leases (no cluster listed under two replicas), exactly `live` replicas
    /// are alive, and the spread is even (loads differ by at most one, nobody idles while
    /// there are at least as many clusters as replicas). Otherwise what is wrong.
    pub fn exclusive_and_spread(&self, clusters: &[&str], live: usize) -> Result<(), String> {
        let mut seen = BTreeMap::new();
        for (id, (_, held)) in &self.replicas {
            for c in held {
                if let Some(other) = seen.insert(c.clone(), id.clone()) {
                    return Err(format!("{c} owned by {other} and {id}: {self:?}"));
                }
            }
        }
        for c in clusters {
            match (self.holders.get(*c), seen.get(*c)) {
                (Some((h, _)), Some(id)) if h == id => {}
                _ => {
                    return Err(format!(
                        "{c} is not held by exactly one live replica: {self:?}"
                    ));
                }
            }
        }
        if self.replicas.len() != live {
            return Err(format!(
                "{} live replicas, want {live}: {self:?}",
                self.replicas.len()
            ));
        }
        let loads: Vec<usize> = self.replicas.values().map(|(_, h)| h.len()).collect();
        let (min, max) = (
            loads.iter().min().copied().unwrap_or(0),
            loads.iter().max().copied().unwrap_or(0),
        );
        if max - min > 1 || (min == 0 && clusters.len() >= live) {
            return Err(format!("uneven spread {loads:?}: {self:?}"));
        }
        Ok(())
    }

    /// The id of the live replica named `name`.
    pub fn id_of(&self, name: &str) -> Option<String> {
        self.replicas
            .iter()
            .find(|(_, (n, _))| n == name)
            .map(|(id, _)| id.clone())
    }

    /// The id of the live replica whose name is none of `names` (`linkplane dev`'s own server,
    /// whose name is the host's).
    pub fn id_not_named(&self, names: &[&str]) -> Option<String> {
        self.replicas
            .iter()
            .find(|(_, (n, _))| !names.contains(&n.as_str()))
            .map(|(id, _)| id.clone())
    }
}

/// One entry of a cluster's request log (kubesim's admin endpoint answers them in the shape of
/// `audit.k8s.io/v1` Events).
#[derive(Debug, Clone)]
pub struct Logged {
    /// Position in the cluster's log.
    pub seq: u64,
    /// `create`, `update`, `patch`, `delete`, `get`, `list`, `watch`…
    pub verb: String,
    /// Plural resource.
    pub resource: String,
    /// Namespace, if any.
    pub namespace: Option<String>,
    /// Object name, if any.
    pub name: Option<String>,
    /// The writing replica's id, from the user agent (`None` for kubectl and other clients).
    pub replica: Option<String>,
    /// HTTP status answered.
    pub code: u16,
    /// When the API server received it.
    pub received: DateTime<Utc>,
}

impl Logged {
    /// True for the verbs that change state.
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }
}

/// `cluster`'s request log from `since` on, and the mark to read from next.
pub async fn requests(env: &DevEnv, cluster: &str, since: u64) -> (Vec<Logged>, u64) {
    let url = format!(
        "{}/clusters/{cluster}/requests?since={since}",
        env.facts.admin_url
    );
    let res: Value = reqwest::get(&url)
        .await
        .expect("kubesim's admin endpoint answers")
        .json()
        .await
        .expect("the request log is JSON");
    let items = res["items"]
        .as_array()
        .expect("the request log has items")
        .iter()
        .map(|e| {
            let s = |v: &Value| v.as_str().map(str::to_string);
            Logged {
                seq: e["seq"].as_u64().expect("seq"),
                verb: s(&e["verb"]).expect("verb"),
                resource: s(&e["objectRef"]["resource"]).unwrap_or_default(),
                namespace: s(&e["objectRef"]["namespace"]),
                name: s(&e["objectRef"]["name"]),
                replica: e["userAgent"]
                    .as_str()
                    .and_then(replica_of)
                    .map(str::to_string),
                code: e["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
                received: e["requestReceivedTimestamp"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .expect("requestReceivedTimestamp is RFC 3339"),
            }
        })
        .collect();
    (items, res["next"].as_u64().expect("next"))
}

/// The current end of each of `clusters`' request logs.
pub async fn marks(env: &DevEnv, clusters: &[&str]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for c in clusters {
        let (_, next) = requests(env, c, u64::MAX).await;
        out.insert(c.to_string(), next);
    }
    out
}

/// Writes by linkplane replicas into a cluster's own mirror objects — everything in `namespace`
/// (mirrors, their Endpoints and EndpointSlices, ServiceImports, ServiceExport status), which
/// only the cluster's lease holder writes. (The remote-discovery account linkplane keeps in a
/// *target* is written by the owner of the pair's source, under that cluster's lease; it lives
/// in `linkplane-remote-access` and cluster-scoped RBAC, so it is not in here.)
pub fn own_writes(log: &[Logged], namespace: &str) -> Vec<Logged> {
    log.iter()
        .filter(|r| r.is_write() && r.replica.is_some())
        .filter(|r| r.namespace.as_deref() == Some(namespace))
        .cloned()
        .collect()
}

/// The runs of one writer in `writes` (in the order the API server received them): `[a, b, a]`
/// means the writer changed twice. Two replicas writing into one cluster at overlapping times
/// interleave, so their runs outnumber the lease terms (the epoch counts those).
pub fn writer_runs(writes: &[Logged]) -> Vec<String> {
    let mut runs: Vec<String> = Vec::new();
    for w in writes {
        if let Some(id) = &w.replica
            && runs.last() != Some(id)
        {
            runs.push(id.clone());
        }
    }
    runs
}
