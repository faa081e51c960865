//! Two `linkplane serve` processes on one database (issue 19), through the real binary: every
//! cluster owned by exactly one live replica, and after `kill -9` of one of them the clusters it
//! owned are taken over within the lease duration plus a renew interval, and the fleet keeps
//! converging. (`linkplane dev` runs its server with 3 s leases renewed every second; the
//! second replica inherits that environment.)

use std::{
    collections::BTreeMap,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use linkplane_e2e::dev::{DevEnv, eventually};

/// A second `linkplane serve` with the first one's environment, on another port.
struct Second(Child, u16);

impl Drop for Second {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn second_replica(env: &DevEnv) -> Second {
    let environ = std::fs::read(format!("/proc/{}/environ", env.facts.server_pid))
        .expect("the dev server's environment");
    let vars: Vec<(String, String)> = environ
        .split(|b| *b == 0)
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let bin = std::fs::read_link(format!("/proc/{}/exe", env.facts.server_pid))
        .expect("the dev server's binary");
    let log = std::fs::File::create(std::env::temp_dir().join(format!("second-{port}.log")))
        .expect("log file");
    let child = Command::new(bin)
        .arg("serve")
        .env_clear()
        .envs(vars)
        .env("LINKPLANE_LISTEN", format!("127.0.0.1:{port}"))
        .env("LINKPLANE_REPLICA_NAME", "second")
        .stdout(Stdio::null())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("second replica starts");
    Second(child, port)
}

type Ownership = (BTreeMap<String, Vec<String>>, BTreeMap<String, String>);

/// Live replicas (id → clusters) and each cluster's lease holder, from the second replica's API
/// (it stays up while the first is killed); `None` while it does not answer.
async fn ownership(env: &DevEnv, second: &Second) -> Option<Ownership> {
    let url = format!("http://127.0.0.1:{}/graphql", second.1);
    let query = "{ replicas { id alive clusters } clusters(first: 50) { edges { node { name lease { replica epoch } } } } }";
    let res: serde_json::Value = reqwest::Client::new()
        .post(url)
        .bearer_auth(&env.facts.token)
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
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["alive"] == true)
        .map(|r| {
            let clusters = r["clusters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect();
            (r["id"].as_str().unwrap_or_default().to_string(), clusters)
        })
        .collect();
    let holders = data["clusters"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let n = &e["node"];
            Some((
                n["name"].as_str()?.to_string(),
                n["lease"]["replica"].as_str()?.to_string(),
            ))
        })
        .collect();
    Some((replicas, holders))
}

fn mirrored(env: &DevEnv, cluster: &str, name: &str) -> bool {
    let (ok, out) = env.kubectl(
        cluster,
        &["get", "service", "-n", "demo", name, "-o", "name"],
    );
    ok && out.contains(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_split_the_fleet_and_a_kill_9_is_taken_over_within_the_lease() {
    let env = DevEnv::start();
    let second = second_replica(&env);
    let first_pid = env.facts.server_pid;

    // Both replicas alive, every cluster held by one of them, both holding some.
    let (replicas, holders) = eventually(
        Duration::from_secs(60),
        "two replicas share the clusters",
        || async {
            let (replicas, holders) = ownership(&env, &second).await?;
            let busy = replicas.values().filter(|c| !c.is_empty()).count();
            (replicas.len() == 2 && holders.len() == 3 && busy == 2).then_some((replicas, holders))
        },
    )
    .await;
    let owned: usize = replicas.values().map(Vec::len).sum();
    assert_eq!(owned, holders.len(), "no cluster owned twice: {replicas:?}");
    let first_id = holders
        .values()
        .find(|h| !h.starts_with("second-"))
        .cloned()
        .expect("the first replica holds a cluster");
    let lost: Vec<String> = holders
        .iter()
        .filter(|(_, h)| **h == first_id)
        .map(|(c, _)| c.clone())
        .collect();

    let killed = Command::new("kill")
        .args(["-KILL", &first_pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let t0 = Instant::now();
    eventually(
        Duration::from_secs(30),
        "the killed replica's clusters are held by a live replica",
        || async {
            let (replicas, holders) = ownership(&env, &second).await?;
            lost.iter()
                .all(|c| {
                    holders
                        .get(c)
                        .is_some_and(|h| *h != first_id && replicas.contains_key(h))
                })
                .then_some(())
        },
    )
    .await;
    let takeover = t0.elapsed();
    println!("takeover of {lost:?} after kill -9: {takeover:?}");
    // 3 s lease + 1 s renew interval in `linkplane dev`, plus API polling slack.
    assert!(
        takeover < Duration::from_secs(8),
        "takeover took {takeover:?}"
    );

    // The fleet keeps converging: a new export in east is mirrored into north.
    let svc = "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: ha-probe\n  namespace: demo\n  labels:\n    mirror.linkerd.io/exported: \"true\"\nspec:\n  ports:\n  - name: http\n    port: 80\n";
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), svc).expect("write");
    let (ok, out) = env.kubectl("east", &["apply", "-f", &file.path().display().to_string()]);
    assert!(ok, "{out}");
    eventually(
        Duration::from_secs(60),
        "ha-probe-east mirrored into north after the takeover",
        || async { mirrored(&env, "north", "ha-probe-east").then_some(()) },
    )
    .await;
    let (replicas, holders) = ownership(&env, &second).await.expect("the API answers");
    let owned: usize = replicas.values().map(Vec::len).sum();
    assert_eq!(
        owned,
        holders.len(),
        "no cluster owned twice after the takeover: {replicas:?}"
    );
}
