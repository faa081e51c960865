//! A bounded fuzz of the whole HTTP surface of `linkplane serve` as a process (issue 15): GraphQL
//! documents and variables mutated from a corpus of valid ones, raw bodies, content types,
//! headers, paths and push webhooks (signed and not). No request may crash the process or get a
//! 5xx (503 only from a webhook, when the GitOps engine or the database is away; in the latter
//! case the push is kept for later), and every GraphQL answer is JSON.
//!
//! `LINKPLANE_FUZZ_REQUESTS` sets the count (1,500 here; `scripts/bench fuzz` sends 50,000);
//! `LINKPLANE_FUZZ_SEED` replays a run (the seed is printed, and every failure names its request).
#![allow(clippy::unwrap_used)]

use std::{collections::BTreeMap, process::Command, time::Duration};

mod support;

use hmac::Mac as _;
use serde_json::{Value, json};
use support::{create_token, fresh_database, migrate, start_serve};

/// xorshift64*: reproducible from the printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Valid documents touching every root field and mutation, the seeds of mutation.
const CORPUS: &[&str] = &[
    "{ clusters(first: 5) { totalCount: edges { cursor node { name apiServer health reachable links { name } } } pageInfo { hasNextPage endCursor } } }",
    "{ cluster(name: \"east\") { name gateway { address port } mirrors(first: 3) { edges { node { localName state mode } } } } }",
    "{ links { edges { node { name source { name } target { name } paused mirrorCounts { mirrored error } } } } }",
    "{ link(name: \"west-from-east\") { name paused } }",
    "{ exportPolicies { edges { node { name } } } }",
    "{ mirrors(cluster: \"west\", namespace: \"demo\", state: ERROR, first: 10, after: \"YXJyYXljb25uZWN0aW9uOjA=\") { edges { cursor node { localName remoteName state message } } } }",
    "{ services(namespace: \"demo\") { edges { node { name namespace cluster { name } } } } }",
    "{ federatedServices(first: 2) { edges { node { name members { cluster status } } } } }",
    "{ gitSources { edges { node { name status drifted lastError history(limit: 3) { revision result errors } } } } }",
    "{ blastRadius(cluster: \"east\", gatewayOnly: true) { cluster } }",
    "{ topology { clusters { name } } }",
    "query Q($c: String!, $n: Int) { mirrors(cluster: $c, first: $n) { edges { cursor } } }",
    "mutation { pauseLink(name: \"x\") { name } }",
    "mutation { resumeLink(name: \"x\") { name } }",
    "mutation { syncNow(source: \"default\") { revision } }",
    "mutation { setClusterCredentials(cluster: \"east\", kubeconfig: \"apiVersion: v1\") { cluster } }",
    "mutation { approvePrune(source: \"default\", revision: \"abc\") { name } }",
    "{ __schema { queryType { name } types { name fields { name args { name type { name kind ofType { name } } } } } } }",
    "{ __type(name: \"Mirror\") { fields { name } } }",
    "subscription { topologyEvents { kind } }",
    "fragment F on Cluster { name } { clusters { edges { node { ...F ...F } } } }",
    "query A { clusters { edges { cursor } } } query B { links { edges { cursor } } }",
];

/// Tokens and characters spliced into documents.
const SPLICES: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ":",
    "$",
    "@",
    "!",
    "\"",
    "...",
    "#",
    "\n",
    "\\",
    "\\u0000",
    "\u{0}",
    "\u{feff}",
    "é",
    "🦀",
    "\u{202e}",
    "null",
    "true",
    "-0",
    "1e999",
    "99999999999999999999999",
    "__typename",
    "@skip(if: true)",
    "@include(if: $x)",
    "on",
    "fragment",
    "query",
    "mutation",
    "subscription",
    "$c",
    "\"\"\"",
    "'",
    "\t",
    "\r",
    "\u{7f}",
    "\u{fffd}",
];

fn mutate(rng: &mut Rng, doc: &str) -> String {
    let mut chars: Vec<char> = doc.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(chars.len() + 1);
        match rng.below(7) {
            0 => {
                let end = (at + rng.below(12)).min(chars.len());
                chars.drain(at..end);
            }
            1 | 2 => {
                let splice = rng.pick(SPLICES);
                chars.splice(at..at, splice.chars());
            }
            3 => {
                // Nesting: open brackets, sometimes closed.
                let n = 1 + rng.below(300);
                let (open, close) = *rng.pick(&[("[", "]"), ("{", "}"), ("{a: ", "}"), ("(", ")")]);
                let mut s = open.repeat(n);
                if rng.chance(50) {
                    s.push_str(&close.repeat(n));
                }
                chars.splice(at..at, s.chars());
            }
            4 => {
                // Repeat a slice: aliases and fields many times over.
                let end = (at + 1 + rng.below(40)).min(chars.len());
                let slice: String = chars[at.min(end)..end].iter().collect();
                let times = 1 + rng.below(200);
                chars.splice(at..at, slice.repeat(times).chars());
            }
            5 => {
                let other = *rng.pick(CORPUS);
                let cut = rng.below(other.len() + 1);
                let tail: String = other.chars().skip(cut).collect();
                chars.truncate(at);
                chars.extend(tail.chars());
            }
            _ => {
                chars.truncate(at);
            }
        }
    }
    chars.into_iter().collect()
}

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 3 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => json!(rng.next() as i64),
        3 => json!(*rng.pick(&[1.5e300, -0.0, 0.1, 1e-300, 4_294_967_296.5])),
        4 => json!(rng.pick(SPLICES).repeat(1 + rng.below(50))),
        5 => Value::Array(
            (0..rng.below(5))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        6 => {
            let mut v = json!("deep");
            for _ in 0..rng.below(400) {
                v = json!([v]);
            }
            v
        }
        _ => {
            let mut m = serde_json::Map::new();
            for _ in 0..rng.below(5) {
                m.insert(
                    rng.pick(&["c", "n", "x", "name", ""]).to_string(),
                    random_value(rng, depth + 1),
                );
            }
            Value::Object(m)
        }
    }
}

/// One request: method, path, headers, body, and whether a webhook 503 is acceptable.
struct Req {
    method: reqwest::Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn graphql_request(rng: &mut Rng, token: &str) -> Req {
    let doc = if rng.chance(85) {
        let seed = *rng.pick(CORPUS);
        mutate(rng, seed)
    } else {
        rng.pick(CORPUS).to_string()
    };
    let mut body = json!({ "query": doc });
    if rng.chance(40) {
        body["variables"] = random_value(rng, 0);
    }
    if rng.chance(15) {
        body["operationName"] = random_value(rng, 2);
    }
    let body = match rng.below(10) {
        0 => json!([body, body]).to_string(),
        1 => {
            let s = body.to_string();
            let cut = rng.below(s.len());
            s[..s.floor_char_boundary(cut)].to_string()
        }
        _ => body.to_string(),
    };
    let content_type = *rng.pick(&[
        "application/json",
        "application/json",
        "application/json; charset=utf-8",
        "application/graphql",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "",
    ]);
    let mut headers = vec![];
    if !content_type.is_empty() {
        headers.push(("content-type".to_string(), content_type.to_string()));
    }
    match rng.below(10) {
        0 => {}
        1 => headers.push(("authorization".into(), "Bearer lpt_forged".into())),
        2 => headers.push(("authorization".into(), format!("Basic {token}"))),
        3 => headers.push(("authorization".into(), "Bearer ".repeat(1 + rng.below(500)))),
        _ => headers.push(("authorization".into(), format!("Bearer {token}"))),
    }
    if rng.chance(10) {
        headers.push((
            "accept".into(),
            rng.pick(&[
                "text/html",
                "*/*",
                "application/graphql-response+json",
                "x/y;q=abc",
            ])
            .to_string(),
        ));
    }
    let method = if rng.chance(10) {
        reqwest::Method::GET
    } else {
        reqwest::Method::POST
    };
    let path = if method == reqwest::Method::GET {
        let q: String = doc_query_param(&body);
        format!("/graphql?query={q}")
    } else {
        "/graphql".into()
    };
    Req {
        method,
        path,
        headers,
        body: body.into_bytes(),
    }
}

fn doc_query_param(body: &str) -> String {
    body.bytes()
        .take(2000)
        .map(|b| format!("%{b:02X}"))
        .collect()
}

fn webhook_request(rng: &mut Rng, secret: &str) -> Req {
    let repo = rng.pick(&["file:///nowhere", "https://github.com/acme/fleet.git", ""]);
    let payload = match rng.below(4) {
        0 => json!({"ref": "refs/heads/main", "repository": {"clone_url": repo, "git_http_url": repo}}).to_string(),
        1 => random_value(rng, 0).to_string(),
        2 => mutate(rng, r#"{"ref":"refs/heads/main","repository":{"clone_url":"x"}}"#),
        _ => String::from_utf8_lossy(&rng.next().to_le_bytes().repeat(rng.below(64))).to_string(),
    };
    let github = rng.chance(50);
    let mut headers = vec![];
    if github {
        headers.push((
            "x-github-event".into(),
            rng.pick(&["push", "ping", "issues", ""]).to_string(),
        ));
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(payload.as_bytes());
        let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let sig = match rng.below(4) {
            0 => "sha256=00".to_string(),
            1 => good.replace("sha256=", "sha1="),
            _ => good,
        };
        headers.push(("x-hub-signature-256".into(), sig));
    } else {
        headers.push(("x-gitlab-event".into(), "Push Hook".into()));
        let token = if rng.chance(75) {
            secret.to_string()
        } else {
            "wrong".into()
        };
        headers.push(("x-gitlab-token".into(), token));
    }
    Req {
        method: reqwest::Method::POST,
        path: if github {
            "/webhooks/github".into()
        } else {
            "/webhooks/gitlab".into()
        },
        headers,
        body: payload.into_bytes(),
    }
}

fn odd_request(rng: &mut Rng) -> Req {
    let path = rng
        .pick(&[
            "/",
            "/healthz",
            "/readyz",
            "/metrics",
            "/graphql/ws",
            "/graphql/../../etc/passwd",
            "/%00",
            "/%FF%FE",
            "/webhooks/",
            "/webhooks/bitbucket",
            "//graphql",
            "/graphql%2F",
        ])
        .to_string();
    let method = rng
        .pick(&[
            reqwest::Method::GET,
            reqwest::Method::POST,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
            reqwest::Method::OPTIONS,
            reqwest::Method::PATCH,
        ])
        .clone();
    let mut headers = vec![];
    if rng.chance(30) {
        headers.push(("origin".into(), "https://evil.example".into()));
        headers.push(("access-control-request-method".into(), "POST".into()));
    }
    if rng.chance(20) {
        headers.push(("x-filler".into(), "a".repeat(rng.below(16 * 1024))));
    }
    let body = (0..rng.below(4096)).map(|_| rng.next() as u8).collect();
    Req {
        method,
        path,
        headers,
        body,
    }
}

#[tokio::test]
async fn no_request_crashes_the_server_or_gets_a_5xx() {
    let requests: usize = std::env::var("LINKPLANE_FUZZ_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_500);
    let seed: u64 = std::env::var("LINKPLANE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 | 1)
                .unwrap_or(0x9e37_79b9_7f4a_7c15)
        });
    println!("LINKPLANE_FUZZ_SEED={seed} LINKPLANE_FUZZ_REQUESTS={requests}");
    let mut rng = Rng(seed);

    let db = fresh_database("fuzz_http");
    let work = tempfile_dir();
    // A Git repository for the webhooks to reach, and their secret.
    let repo = work.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("README.md"), "fuzz\n").unwrap();
    for args in [
        vec!["init", "-q", "-b", "main"],
        vec!["add", "-A"],
        vec![
            "-c",
            "user.name=f",
            "-c",
            "user.email=f@x",
            "commit",
            "-q",
            "-m",
            "init",
        ],
    ] {
        assert!(
            Command::new("git")
                .arg("-C")
                .arg(&repo)
                .args(&args)
                .status()
                .unwrap()
                .success()
        );
    }
    let secret = "fuzz-webhook-secret";
    std::fs::write(work.join("webhook-secret"), secret).unwrap();
    migrate(&db);
    let token = create_token(&db, "admin", "fuzz");
    let mut command = Command::new(env!("CARGO_BIN_EXE_linkplane"));
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--git-poll-interval",
            "1h",
        ])
        .arg("--git-url")
        .arg(format!("file://{}", repo.display()))
        .arg("--webhook-secret-file")
        .arg(work.join("webhook-secret"))
        .env("DATABASE_URL", &db);
    let (mut server, url) = start_serve(command);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    let mut statuses = BTreeMap::<u16, usize>::new();
    let mut transport_errors = 0usize;
    for i in 0..requests {
        let req = match rng.below(10) {
            0..=6 => graphql_request(&mut rng, &token),
            7 | 8 => webhook_request(&mut rng, secret),
            _ => odd_request(&mut rng),
        };
        let mut builder = client.request(req.method.clone(), format!("{url}{}", req.path));
        for (k, v) in &req.headers {
            builder = builder.header(k, v);
        }
        let summary = format!(
            "request {i} (seed {seed}): {} {} {:?} body {:?}",
            req.method,
            req.path.chars().take(200).collect::<String>(),
            req.headers
                .iter()
                .map(|(k, v)| (k, v.chars().take(80).collect::<String>()))
                .collect::<Vec<_>>(),
            String::from_utf8_lossy(&req.body)
                .chars()
                .take(300)
                .collect::<String>()
        );
        let retry = builder.try_clone();
        let resp = match builder.body(req.body.clone()).send().await {
            Ok(r) => r,
            Err(e) => {
                // A dead server fails at once. A live one gets the same request again: a
                // transport hiccup on a loaded machine (a timeout) is reported, a request that
                // never gets an answer fails.
                if let Some(exit) = server.try_wait() {
                    panic!("{summary}: no answer ({e}); the server exited: {exit}");
                }
                println!("{summary}: no answer ({e:?}); sending it again");
                transport_errors += 1;
                match retry {
                    Some(b) => b
                        .body(req.body)
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("{summary}: no answer twice ({e:?})")),
                    None => panic!("{summary}: no answer ({e:?})"),
                }
            }
        };
        let status = resp.status().as_u16();
        *statuses.entry(status).or_default() += 1;
        let is_json = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let text = resp.text().await.unwrap_or_default();
        let webhook = req.path.starts_with("/webhooks/");
        assert!(
            status < 500 || (webhook && status == 503),
            "{summary}: answered {status}: {text}"
        );
        if req.path.starts_with("/graphql")
            && req.method == reqwest::Method::POST
            && status != 404
            && status != 405
        {
            assert!(is_json, "{summary}: answered {status} without JSON: {text}");
        }
    }
    println!(
        "statuses: {statuses:?}; requests sent twice after a transport error: {transport_errors}"
    );
    assert!(server.try_wait().is_none(), "the server exited");
    let resp = client
        .post(format!("{url}/graphql"))
        .bearer_auth(&token)
        .json(&json!({"query": "{ clusters { edges { cursor } } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the server still answers real queries");
    // Some share of the requests must have been accepted, or the fuzz only hit the front door.
    let ok: usize = statuses
        .iter()
        .filter(|(s, _)| **s < 300)
        .map(|(_, n)| n)
        .sum();
    assert!(
        ok * 10 >= requests,
        "only {ok} of {requests} requests were accepted: {statuses:?}"
    );
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("linkplane-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
