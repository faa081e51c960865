//! `linkplane status` (one screen of fleet health), `linkplane check` (every check with a
//! hint) and `linkplane gateways` (Linkerd's `multicluster gateways` table).

use std::{collections::BTreeMap, process::ExitCode};

use clap::Args;
use serde::Serialize;

use crate::{
    Client, Conn, Result,
    ops::{self, FederatedStates, Fleet, GatewayMirrors, Gateways, Whoami, pascal, wire, word},
    output::{self, Format, Style, Table, age, or_dash, short_rev},
};

/// `linkplane status`.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Output format (`wide` is `table` here).
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Format,
    /// Connection.
    #[command(flatten)]
    pub conn: Conn,
}

/// Mirror counts by state, summed over clusters.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// `MIRRORED`.
    pub mirrored: i64,
    /// `CONFLICT`.
    pub conflict: i64,
    /// `MISSING_NAMESPACE`.
    pub missing_namespace: i64,
    /// `POLICY_DENIED`.
    pub policy_denied: i64,
    /// `ERROR`.
    pub error: i64,
    /// Every mirror.
    pub total: i64,
}

/// What `status -o json` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// No problem found.
    pub healthy: bool,
    /// Every problem, one sentence each.
    pub problems: Vec<String>,
    /// Clusters.
    pub clusters: Vec<ops::fleet::FleetClustersNodes>,
    /// Links.
    pub links: Vec<ops::fleet::FleetLinksNodes>,
    /// Mirrors across the fleet by state.
    pub mirrors: Counts,
    /// Federated services by state (`Federated`, `Conflict`…).
    pub federated: BTreeMap<String, usize>,
    /// Federated services in `Conflict` or `Error` (decided on the typed state, not its name);
    /// already in `problems`, so not printed twice.
    #[serde(skip)]
    pub federated_troubled: BTreeMap<String, usize>,
    /// Git sources.
    pub sources: Vec<ops::fleet::FleetGitSourcesNodes>,
}

/// Federated services by state name: all of them, and those in `Conflict` or `Error`.
type FederatedCounts = (BTreeMap<String, usize>, BTreeMap<String, usize>);

async fn federated_states(client: &Client) -> Result<FederatedCounts> {
    use ops::federated_states::FederationState;
    let mut out = BTreeMap::new();
    let mut troubled = BTreeMap::new();
    let mut after = None;
    loop {
        let page = client
            .run::<FederatedStates>(ops::federated_states::Variables { after })
            .await?
            .federated_services;
        for f in page.nodes {
            let name = pascal(&wire(&f.state));
            if matches!(f.state, FederationState::CONFLICT | FederationState::ERROR) {
                *troubled.entry(name.clone()).or_insert(0) += 1;
            }
            *out.entry(name).or_insert(0) += 1;
        }
        match (page.page_info.has_next_page, page.page_info.end_cursor) {
            (true, Some(c)) => after = Some(c),
            _ => break,
        }
    }
    Ok((out, troubled))
}

/// Gathers the fleet and lists what is wrong.
pub async fn report(client: &Client) -> Result<StatusReport> {
    let fleet = client.run::<Fleet>(ops::fleet::Variables).await?;
    let (federated, federated_troubled) = federated_states(client).await?;
    let mut mirrors = Counts::default();
    for c in &fleet.clusters.nodes {
        let m = &c.mirror_counts;
        mirrors.mirrored += m.mirrored;
        mirrors.conflict += m.conflict;
        mirrors.missing_namespace += m.missing_namespace;
        mirrors.policy_denied += m.policy_denied;
        mirrors.error += m.error;
        mirrors.total += m.total;
    }
    let mut problems = Vec::new();
    for c in &fleet.clusters.nodes {
        let health = wire(&c.health);
        if health == "DOWN" || health == "DEGRADED" {
            let m = &c.mirror_counts;
            let why = match c.reconciler.as_ref().filter(|r| !r.message.is_empty()) {
                Some(r) => format!(" ({}: {})", word(&r.state), r.message),
                None if c.gateway_alive == Some(false) => " (its gateway is dead)".into(),
                None if m.error + m.conflict > 0 => format!(
                    " ({} of the mirrors it holds in Error, {} in Conflict)",
                    m.error, m.conflict
                ),
                None => String::new(),
            };
            problems.push(format!("cluster {} is {}{why}", c.name, pascal(&health)));
        }
    }
    for l in &fleet.links.nodes {
        if let Some(g) = &l.gateway
            && !g.alive
        {
            problems.push(format!(
                "link {}: gateway of {} is dead ({} consecutive failures)",
                l.name, l.target_name, g.consecutive_failures
            ));
        }
    }
    if mirrors.error > 0 || mirrors.conflict > 0 {
        problems.push(format!(
            "{} mirrors in Error and {} in Conflict (linkplane get mirrors --state error -o wide)",
            mirrors.error, mirrors.conflict
        ));
    }
    for (state, n) in &federated_troubled {
        problems.push(format!("{n} federated services in {state}"));
    }
    for s in &fleet.git_sources.nodes {
        if matches!(
            s.status,
            ops::fleet::SyncStatus::FAILED | ops::fleet::SyncStatus::PRUNE_HELD
        ) {
            let status = wire(&s.status);
            let err = s
                .last_error
                .as_deref()
                .and_then(|e| e.lines().next())
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            problems.push(format!("source {} is {}{err}", s.name, pascal(&status)));
        }
    }
    Ok(StatusReport {
        healthy: problems.is_empty(),
        problems,
        clusters: fleet.clusters.nodes,
        links: fleet.links.nodes,
        mirrors,
        federated,
        federated_troubled,
        sources: fleet.git_sources.nodes,
    })
}

/// Runs `status`: exit 0 healthy, 1 unhealthy.
pub async fn status(args: StatusArgs) -> Result<ExitCode> {
    let client = args.conn.client()?;
    let report = report(&client).await?;
    let text = match args.output {
        Format::Json | Format::Yaml => output::document(&report, args.output)?,
        Format::Table | Format::Wide => render_status(&report, Style::stdout()),
    };
    output::print(&text)?;
    Ok(if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn render_status(r: &StatusReport, style: Style) -> String {
    let mut out = String::new();
    let healthy = r
        .clusters
        .iter()
        .filter(|c| wire(&c.health) == "HEALTHY")
        .count();
    out.push_str(&style.bold(&format!(
        "CLUSTERS  {} ({} healthy)\n",
        r.clusters.len(),
        healthy
    )));
    let mut t = Table::new(&["NAME", "HEALTH", "RECONCILER", "GATEWAY", "MIRRORS"]);
    for c in &r.clusters {
        let gateway = match (&c.gateway_config, c.gateway_alive) {
            (None, _) => "-".to_string(),
            (Some(_), None) => "unprobed".to_string(),
            (Some(_), Some(true)) => style.green("alive"),
            (Some(_), Some(false)) => style.red("dead"),
        };
        t.row(vec![
            c.name.clone(),
            style.state(&pascal(&wire(&c.health))),
            c.reconciler
                .as_ref()
                .map(|r| style.state(&word(&r.state)))
                .unwrap_or_else(|| "-".into()),
            gateway,
            format!("{}/{}", c.mirror_counts.mirrored, c.mirror_counts.total),
        ]);
    }
    out.push_str(&t.render());
    let alive = r
        .links
        .iter()
        .filter(|l| l.gateway.as_ref().is_some_and(|g| g.alive))
        .count();
    let dead = r
        .links
        .iter()
        .filter(|l| l.gateway.as_ref().is_some_and(|g| !g.alive))
        .count();
    let paused = r.links.iter().filter(|l| l.paused).count();
    out.push_str(&format!(
        "\n{}  {} ({} gateways alive, {} dead, {} paused)\n",
        style.bold("LINKS"),
        r.links.len(),
        alive,
        dead,
        paused
    ));
    let m = &r.mirrors;
    out.push_str(&format!(
        "{}  {} ({} mirrored, {} conflict, {} missing namespace, {} policy denied, {} error)\n",
        style.bold("MIRRORS"),
        m.total,
        m.mirrored,
        m.conflict,
        m.missing_namespace,
        m.policy_denied,
        m.error
    ));
    let fed: Vec<String> = r
        .federated
        .iter()
        .map(|(state, n)| format!("{n} {}", state.to_lowercase()))
        .collect();
    out.push_str(&format!(
        "{}  {}{}\n",
        style.bold("FEDERATED"),
        r.federated.values().sum::<usize>(),
        if fed.is_empty() {
            String::new()
        } else {
            format!(" ({})", fed.join(", "))
        }
    ));
    out.push('\n');
    out.push_str(&style.bold(&format!("SOURCES  {}\n", r.sources.len())));
    let mut t = Table::new(&["NAME", "STATUS", "REVISION", "DRIFTED", "SYNCED"]);
    for s in &r.sources {
        let mut status = style.state(&pascal(&wire(&s.status)));
        if s.suspended {
            status.push_str(&style.yellow(" (suspended)"));
        }
        if let Some(pin) = &s.pinned_revision {
            status.push_str(&style.yellow(&format!(" (pinned {})", short_rev(Some(pin)))));
        }
        t.row(vec![
            s.name.clone(),
            status,
            short_rev(s.last_applied_revision.as_deref()),
            if s.drifted {
                style.yellow("yes")
            } else {
                "no".into()
            },
            age(s.last_synced_at.as_deref()),
        ]);
    }
    out.push_str(&t.render());
    out.push('\n');
    if r.healthy {
        out.push_str(&format!("{} healthy\n", style.ok_mark()));
    } else {
        out.push_str(&format!(
            "{} {} problem{}:\n",
            style.fail_mark(),
            r.problems.len(),
            if r.problems.len() == 1 { "" } else { "s" }
        ));
        for p in &r.problems {
            out.push_str(&format!("  - {p}\n"));
        }
    }
    out
}

/// `linkplane check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Only this cluster's checks (and the server's).
    #[arg(long)]
    pub cluster: Option<String>,
    /// Output format (`wide` is `table` here).
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Format,
    /// Connection.
    #[command(flatten)]
    pub conn: Conn,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Passed.
    Ok,
    /// Worth a look; does not fail the command.
    Warn,
    /// Failed: the command exits 1.
    Fail,
}

/// One line of `check`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// `server` or `cluster <name>`.
    pub group: String,
    /// What was checked.
    pub name: String,
    /// How it came out.
    pub outcome: Outcome,
    /// What was seen.
    pub detail: String,
    /// What to do about a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

fn check(group: &str, name: &str, outcome: Outcome, detail: String, hint: Option<String>) -> Check {
    Check {
        group: group.to_string(),
        name: name.to_string(),
        outcome,
        detail,
        hint: if outcome == Outcome::Ok { None } else { hint },
    }
}

/// Every check of the server and the clusters.
pub async fn checks(client: &Client, only: Option<&str>) -> Result<Vec<Check>> {
    let mut out = Vec::new();
    let server = "server";
    let who = client.run::<Whoami>(ops::whoami::Variables).await?.whoami;
    out.push(check(
        server,
        "API answers with this token",
        Outcome::Ok,
        format!(
            "{} as {} ({})",
            client.endpoint(),
            if who.name.is_empty() {
                "an unnamed token".to_string()
            } else {
                format!("{:?}", who.name)
            },
            wire(&who.role).to_lowercase()
        ),
        None,
    ));
    match client.ready().await {
        Ok((ready, body)) => {
            let status = body["status"].as_str().unwrap_or("unknown").to_string();
            let reason = body["reason"].as_str().unwrap_or_default().to_string();
            let db_down = !ready && reason.contains("database");
            out.push(check(
                server,
                "database reachable",
                if db_down { Outcome::Fail } else { Outcome::Ok },
                if db_down {
                    reason.clone()
                } else {
                    format!("readiness: {status}")
                },
                Some(
                    "the server cannot reach PostgreSQL: check its --database-url / DATABASE_URL \
                     and that the database is up; the server's log names the cause"
                        .into(),
                ),
            ));
            if !ready && !db_down {
                let pending = body["clusters"].to_string();
                out.push(check(
                    server,
                    "ready",
                    Outcome::Warn,
                    format!("{status}: {reason} {pending}"),
                    Some("cluster watches are still listing; wait, or check those clusters".into()),
                ));
            }
        }
        Err(e) => out.push(check(
            server,
            "database reachable",
            Outcome::Fail,
            format!("readiness endpoint: {e}"),
            Some("the server's /readyz could not be read: is a proxy in front of it?".into()),
        )),
    }
    out.extend(crate::server_checks::checks(client).await?);
    let fleet = client.run::<Fleet>(ops::fleet::Variables).await?;
    if fleet.git_sources.nodes.is_empty() {
        out.push(check(
            server,
            "Git",
            Outcome::Warn,
            "no Git source: objects come only from the API".into(),
            Some("start the server with --git-url, or add a GitSource".into()),
        ));
    }
    for s in &fleet.git_sources.nodes {
        let status = wire(&s.status);
        let first_error = s
            .last_error
            .as_deref()
            .and_then(|e| e.lines().next())
            .unwrap_or_default()
            .to_string();
        let (outcome, detail, hint) = match status.as_str() {
            "SYNCED" | "OUT_OF_SYNC" => (
                Outcome::Ok,
                format!(
                    "{} applied from {}",
                    short_rev(s.last_applied_revision.as_deref()),
                    s.url
                ),
                None,
            ),
            "UNKNOWN" => (
                Outcome::Warn,
                "never synced yet".into(),
                Some(format!("linkplane sync {}", s.name)),
            ),
            "PRUNE_HELD" => (
                Outcome::Fail,
                first_error.clone(),
                Some(format!(
                    "revision {} deletes more than the prune limit allows: approve it \
                     (approvePrune) or fix the commit",
                    short_rev(s.last_attempted_revision.as_deref())
                )),
            ),
            _ => {
                let fetch = ["fetch", "clone", "resolv", "connect", "authentic", "ssh"]
                    .iter()
                    .any(|w| first_error.to_lowercase().contains(w));
                (
                    Outcome::Fail,
                    first_error.clone(),
                    Some(if fetch {
                        format!(
                            "the server cannot fetch {}: check the URL and credentials \
                             (--git-token-file, --git-ssh-key-file)",
                            s.url
                        )
                    } else {
                        format!(
                            "revision {} was rejected; fix the files named above and commit, \
                             or `linkplane rollback {} <good revision>`",
                            short_rev(s.last_attempted_revision.as_deref()),
                            s.name
                        )
                    }),
                )
            }
        };
        out.push(check(
            server,
            &format!("Git source {} fetched and applied", s.name),
            outcome,
            detail,
            hint,
        ));
        if s.drifted {
            out.push(check(
                server,
                &format!("Git source {} matches the database", s.name),
                Outcome::Warn,
                "objects changed outside Git".into(),
                Some(format!(
                    "`linkplane diff {}` shows them field by field; commit them to Git, or turn \
                     on self-heal (--git-self-heal) to have them reverted",
                    s.name
                )),
            ));
        }
        if s.suspended {
            out.push(check(
                server,
                &format!("Git source {} syncing", s.name),
                Outcome::Warn,
                "suspended".into(),
                Some(format!("linkplane resume {}", s.name)),
            ));
        }
        if let Some(pin) = &s.pinned_revision {
            out.push(check(
                server,
                &format!("Git source {} following its ref", s.name),
                Outcome::Warn,
                format!("pinned at {}", short_rev(Some(pin))),
                Some(format!("linkplane unpin {}", s.name)),
            ));
        }
    }
    for c in &fleet.clusters.nodes {
        if only.is_some_and(|o| o != c.name) {
            continue;
        }
        let group = format!("cluster {}", c.name);
        let reconciler = c.reconciler.as_ref();
        let forbidden = reconciler.is_some_and(|r| {
            let m = r.message.to_lowercase();
            m.contains("forbidden") || m.contains("403") || m.contains("unauthorized")
        });
        match reconciler {
            None => out.push(check(
                &group,
                "API reachable with its credentials",
                Outcome::Warn,
                "no reconciler report yet".into(),
                Some("no link uses this cluster, or the server is starting".into()),
            )),
            Some(r) => {
                let state = word(&r.state);
                let running = r.state == ops::fleet::ReconcilerState::RUNNING;
                out.push(check(
                    &group,
                    "API reachable with its credentials",
                    if running && !forbidden {
                        Outcome::Ok
                    } else {
                        Outcome::Fail
                    },
                    if r.message.is_empty() {
                        format!("{state} at {}", c.api_server)
                    } else if r.message.contains(&c.api_server) {
                        format!("{state}: {}", r.message)
                    } else {
                        format!("{state} at {}: {}", c.api_server, r.message)
                    },
                    Some(format!(
                        "is {0} up and reachable from the server? Try `kubectl --server {0} get \
                         namespaces` with the credentials the cluster declares ({1})",
                        c.api_server,
                        match wire(&c.credentials_source).as_str() {
                            "KUBECONFIG_FILE" => "a kubeconfig file",
                            "SECRET_REF" => "a Secret",
                            _ => "stored with setClusterCredentials",
                        }
                    )),
                ));
                if running || forbidden {
                    out.push(check(
                        &group,
                        "required rights present",
                        if forbidden || !r.watches_synced {
                            Outcome::Fail
                        } else {
                            Outcome::Ok
                        },
                        if r.watches_synced {
                            "Services, Endpoints and Namespaces listed and watched".into()
                        } else {
                            "watches have not listed yet".into()
                        },
                        Some(
                            "grant linkplane's identity get/list/watch on services, endpoints \
                             and namespaces and create/update/delete on services and endpoints \
                             (docs/deploying.md)"
                                .into(),
                        ),
                    ));
                }
            }
        }
        if let Some(gw) = &c.gateway_config {
            let addr = format!("{}:{}", gw.addresses.join(","), gw.port);
            let failing: Vec<String> = c
                .gateway_probes
                .iter()
                .filter(|p| !p.alive)
                .map(|p| {
                    format!(
                        "{} ({} failures{})",
                        p.link,
                        p.consecutive_failures,
                        p.last_error
                            .as_deref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            let (outcome, detail) = match c.gateway_alive {
                None => (Outcome::Warn, format!("{addr}: not probed yet")),
                Some(true) => (
                    Outcome::Ok,
                    format!(
                        "{addr}, {} probe{}{}",
                        c.gateway_probes.len(),
                        if c.gateway_probes.len() == 1 { "" } else { "s" },
                        c.gateway_latency_ms
                            .map(|ms| format!(", {ms:.1}ms"))
                            .unwrap_or_default()
                    ),
                ),
                Some(false) => (Outcome::Fail, format!("{addr}: {}", failing.join("; "))),
            };
            out.push(check(
                &group,
                "gateway alive",
                outcome,
                detail,
                Some(format!(
                    "the gateway at {addr} does not answer its probe: check the gateway pods, \
                     its probe port and the network from the server to it"
                )),
            ));
        }
        let m = &c.mirror_counts;
        let broken = m.error + m.conflict;
        let stuck = m.missing_namespace + m.policy_denied;
        out.push(check(
            &group,
            "mirrors converged",
            if broken > 0 {
                Outcome::Fail
            } else if stuck > 0 {
                Outcome::Warn
            } else {
                Outcome::Ok
            },
            format!(
                "{}/{} mirrored{}",
                m.mirrored,
                m.total,
                if broken + stuck > 0 {
                    format!(
                        " ({} error, {} conflict, {} missing namespace, {} policy denied)",
                        m.error, m.conflict, m.missing_namespace, m.policy_denied
                    )
                } else {
                    String::new()
                }
            ),
            Some(format!(
                "linkplane get mirrors --cluster {} -o wide shows each message",
                c.name
            )),
        ));
    }
    for l in &fleet.links.nodes {
        if only.is_some_and(|o| o != l.source_name && o != l.target_name) {
            continue;
        }
        // Null when the link needs none (gateway mode only) or before the first attempt.
        let Some(rc) = &l.remote_credential else {
            continue;
        };
        let place = format!("{}/{}", rc.namespace, rc.name);
        let (outcome, detail, hint) = match wire(&rc.state).as_str() {
            "ISSUED" => (
                Outcome::Ok,
                format!(
                    "{place} in {}{}",
                    l.source_name,
                    rc.expires_at
                        .as_deref()
                        .map(|t| format!(", token expires {t}"))
                        .unwrap_or_default()
                ),
                None,
            ),
            "PENDING" => (
                Outcome::Warn,
                format!("{place}: not written yet"),
                Some("the server is starting, or the pair was just linked".into()),
            ),
            // A source without Linkerd is a valid setup (gateway mirrors still work, and the
            // Secret follows the namespace): worth a look, not a failure.
            "NAMESPACE_MISSING" => (
                Outcome::Warn,
                rc.message.clone(),
                Some(format!(
                    "install Linkerd's control plane in {} (or set the cluster's \
                     linkerdNamespace); linkplane writes the Secret as soon as the namespace \
                     exists",
                    l.source_name
                )),
            ),
            _ => (
                Outcome::Fail,
                rc.message.clone(),
                Some(format!(
                    "linkplane needs rights in {} to create a ServiceAccount, ClusterRole and \
                     binding and to request tokens (docs/mirroring.md), and to write Secrets \
                     in {}'s {}",
                    l.target_name, l.source_name, rc.namespace
                )),
            ),
        };
        out.push(check(
            &format!("link {}", l.name),
            "remote-discovery credentials",
            outcome,
            detail,
            hint,
        ));
    }
    Ok(out)
}

/// Runs `check`: exit 0 when nothing failed, 1 otherwise.
pub async fn check_cmd(args: CheckArgs) -> Result<ExitCode> {
    let client = args.conn.client()?;
    let all = checks(&client, args.cluster.as_deref()).await?;
    let failed = all.iter().filter(|c| c.outcome == Outcome::Fail).count();
    let text = match args.output {
        Format::Json | Format::Yaml => output::document(&all, args.output)?,
        Format::Table | Format::Wide => render_checks(&all, Style::stdout()),
    };
    output::print(&text)?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn render_checks(all: &[Check], style: Style) -> String {
    let mut out = String::new();
    let mut group = "";
    for c in all {
        if c.group != group {
            if !group.is_empty() {
                out.push('\n');
            }
            group = &c.group;
            out.push_str(&style.bold(group));
            out.push('\n');
        }
        let mark = match c.outcome {
            Outcome::Ok => style.ok_mark(),
            Outcome::Warn => style.yellow("‼"),
            Outcome::Fail => style.fail_mark(),
        };
        out.push_str(&format!("  {mark} {}", c.name));
        if !c.detail.is_empty() {
            out.push_str(&style.dim(&format!(": {}", c.detail)));
        }
        out.push('\n');
        if let Some(h) = &c.hint {
            out.push_str(&format!("      {}\n", style.dim(&format!("hint: {h}"))));
        }
    }
    let failed = all.iter().filter(|c| c.outcome == Outcome::Fail).count();
    let warned = all.iter().filter(|c| c.outcome == Outcome::Warn).count();
    out.push('\n');
    if failed == 0 {
        out.push_str(&format!(
            "{} {} checks passed{}\n",
            style.ok_mark(),
            all.len() - warned,
            if warned > 0 {
                format!(", {warned} warnings")
            } else {
                String::new()
            }
        ));
    } else {
        out.push_str(&format!(
            "{} {failed} of {} checks failed\n",
            style.fail_mark(),
            all.len()
        ));
    }
    out
}

/// `linkplane gateways`.
#[derive(Debug, Clone, Args)]
pub struct GatewaysArgs {
    /// Only gateways of this target cluster.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Format,
    /// Connection.
    #[command(flatten)]
    pub conn: Conn,
}

/// One row of `gateways`: a target cluster's gateway as probed for one link.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRow {
    /// The cluster whose gateway it is (the link's target).
    pub cluster: String,
    /// The link probing it.
    pub link: String,
    /// The link's source (where the mirrors live).
    pub source: String,
    /// Gateway address `host:port`.
    pub address: Option<String>,
    /// `None` before the first probe.
    pub alive: Option<bool>,
    /// Latency of the last successful probe.
    pub latency_ms: Option<f64>,
    /// Median probe latency over the server's window of recent probes (null when the server
    /// does not run the prober, or before a success).
    pub latency_p50_ms: Option<f64>,
    /// 95th percentile of the same window.
    pub latency_p95_ms: Option<f64>,
    /// 99th percentile of the same window.
    pub latency_p99_ms: Option<f64>,
    /// Probes in that window.
    pub window_probes: Option<i64>,
    /// Failures since the last success.
    pub consecutive_failures: i64,
    /// Gateway-mode mirrors of this link: the services behind this gateway.
    pub mirrors: usize,
    /// Last failure reason.
    pub last_error: Option<String>,
    /// When the last probe finished.
    pub last_probe_at: Option<String>,
    /// Whether the link is paused.
    pub paused: bool,
}

/// Runs `gateways`.
pub async fn gateways(args: GatewaysArgs) -> Result<ExitCode> {
    let client = args.conn.client()?;
    let links = client
        .run::<Gateways>(ops::gateways::Variables)
        .await?
        .links
        .nodes;
    let mut behind: BTreeMap<String, usize> = BTreeMap::new();
    let mut after = None;
    loop {
        let page = client
            .run::<GatewayMirrors>(ops::gateway_mirrors::Variables { after })
            .await?
            .mirrors;
        for m in page.nodes {
            if wire(&m.mode) == "GATEWAY" {
                *behind.entry(m.link_name).or_insert(0) += 1;
            }
        }
        match (page.page_info.has_next_page, page.page_info.end_cursor) {
            (true, Some(c)) => after = Some(c),
            _ => break,
        }
    }
    let mut rows: Vec<GatewayRow> = links
        .into_iter()
        .filter(|l| args.cluster.as_ref().is_none_or(|c| &l.target_name == c))
        .filter(|l| {
            l.target
                .as_ref()
                .is_some_and(|t| t.gateway_config.is_some())
                || l.gateway.is_some()
        })
        .map(|l| GatewayRow {
            address: l
                .target
                .as_ref()
                .and_then(|t| t.gateway_config.as_ref())
                .map(|g| format!("{}:{}", g.addresses.join(","), g.port)),
            alive: l.gateway.as_ref().map(|g| g.alive),
            latency_ms: l.gateway.as_ref().and_then(|g| g.latency_ms),
            latency_p50_ms: l
                .gateway
                .as_ref()
                .and_then(|g| g.latency.as_ref())
                .map(|p| p.p50),
            latency_p95_ms: l
                .gateway
                .as_ref()
                .and_then(|g| g.latency.as_ref())
                .map(|p| p.p95),
            latency_p99_ms: l
                .gateway
                .as_ref()
                .and_then(|g| g.latency.as_ref())
                .map(|p| p.p99),
            window_probes: l
                .gateway
                .as_ref()
                .and_then(|g| g.latency.as_ref())
                .map(|p| p.probes),
            consecutive_failures: l
                .gateway
                .as_ref()
                .map(|g| g.consecutive_failures)
                .unwrap_or(0),
            last_error: l.gateway.as_ref().and_then(|g| g.last_error.clone()),
            last_probe_at: l.gateway.as_ref().and_then(|g| g.last_probe_at.clone()),
            mirrors: behind.get(&l.name).copied().unwrap_or(0),
            cluster: l.target_name,
            link: l.name,
            source: l.source_name,
            paused: l.paused,
        })
        .collect();
    rows.sort_by(|a, b| (&a.cluster, &a.source).cmp(&(&b.cluster, &b.source)));
    let text = match args.output {
        Format::Json | Format::Yaml => output::document(&rows, args.output)?,
        Format::Table | Format::Wide => {
            render_gateways(&rows, args.output == Format::Wide, Style::stdout())
        }
    };
    output::print(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// The `gateways` table: Linkerd's `multicluster gateways` columns (CLUSTER, ALIVE, NUM_SVC,
/// LATENCY_P50/P95/P99) with the probing link, consecutive failures and the last probe's age;
/// `wide` adds the last probe's latency, the address and the last error.
fn render_gateways(rows: &[GatewayRow], wide: bool, style: Style) -> String {
    let ms = |v: Option<f64>| v.map_or_else(|| "-".into(), |ms| format!("{ms:.1}ms"));
    let mut headers = vec![
        "CLUSTER",
        "LINK",
        "SOURCE",
        "ALIVE",
        "NUM_SVC",
        "LATENCY_P50",
        "LATENCY_P95",
        "LATENCY_P99",
        "FAILURES",
        "PROBED",
    ];
    if wide {
        headers.extend(["LAST LATENCY", "ADDRESS", "LAST ERROR"]);
    }
    let mut t = Table::new(&headers);
    for r in rows {
        let mut row = vec![
            r.cluster.clone(),
            r.link.clone(),
            r.source.clone(),
            match r.alive {
                None => "-".into(),
                Some(true) => style.green("yes"),
                Some(false) => style.red("no"),
            },
            r.mirrors.to_string(),
            ms(r.latency_p50_ms),
            ms(r.latency_p95_ms),
            ms(r.latency_p99_ms),
            r.consecutive_failures.to_string(),
            age(r.last_probe_at.as_deref()),
        ];
        if wide {
            row.extend([
                ms(r.latency_ms),
                r.address.clone().unwrap_or_else(|| "-".into()),
                or_dash(r.last_error.as_deref().unwrap_or_default()),
            ]);
        }
        t.row(row);
    }
    if t.is_empty() {
        "No gateways found.\n".into()
    } else {
        t.render()
    }
}
