//! `linkplane get clusters|links|policies|mirrors|federated|mcs-exports|mcs-imports|sources|tokens [NAME]`.

use std::{process::ExitCode, time::Duration};

use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::{
    Client, Conn, Error, Result,
    ops::{
        self, Clusters, Federated, Links, McsExports, McsImports, Mirrors, Policies, Sources,
        Tokens, kebab, pascal, wire, word,
    },
    output::{self, Format, Style, Table, age, or_dash, short_rev},
};

/// What `get` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// Clusters with health, reconciler, gateway and mirror counts.
    #[value(alias = "cluster")]
    Clusters,
    /// Links (source cluster mirrors the target's services).
    #[value(alias = "link")]
    Links,
    /// Export policies.
    #[value(alias = "policy", alias = "exportpolicies")]
    Policies,
    /// Mirrored services, by consumer cluster.
    #[value(alias = "mirror")]
    Mirrors,
    /// Federated services and their members.
    #[value(alias = "federatedservices")]
    Federated,
    /// Kubernetes MCS `ServiceExport`s with their KEP-1645 conditions.
    #[value(
        alias = "serviceexports",
        alias = "serviceexport",
        alias = "mcs-export"
    )]
    McsExports,
    /// Kubernetes MCS `ServiceImport`s written into consumer clusters.
    #[value(
        alias = "serviceimports",
        alias = "serviceimport",
        alias = "mcs-import"
    )]
    McsImports,
    /// Git sources with sync status.
    #[value(alias = "source", alias = "gitsources")]
    Sources,
    /// API tokens (admin role).
    #[value(alias = "token")]
    Tokens,
}

/// `linkplane get`.
#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    /// What to list.
    #[arg(value_enum)]
    pub kind: Kind,
    /// Only this object (mirrors, federated services, MCS exports and imports: the service
    /// name).
    pub name: Option<String>,
    /// Only objects of this cluster (links: source or target; mirrors: the consumer;
    /// federated: the cluster holding the federated service; MCS exports: the exporting cluster;
    /// MCS imports: the consumer).
    #[arg(long)]
    pub cluster: Option<String>,
    /// Only this namespace (mirrors, federated, MCS exports and imports).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Only this state: cluster health (`down`), mirror state (`error`, `missing-namespace`),
    /// federation state, MCS export state (`conflict`, `pending`, `invalid`), MCS import state,
    /// source status (`out-of-sync`).
    #[arg(long)]
    pub state: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Format,
    /// Keep printing as things change (over the server's event subscription).
    #[arg(long, short = 'w')]
    pub watch: bool,
    /// Connection.
    #[command(flatten)]
    pub conn: Conn,
}

/// Runs `get`.
pub async fn run(args: GetArgs) -> Result<ExitCode> {
    check_filters(&args)?;
    let client = args.conn.client()?;
    let style = Style::stdout();
    output::print(&render(&client, &args, style).await?)?;
    if args.watch {
        watch(&client, &args, style).await?;
    }
    Ok(ExitCode::SUCCESS)
}

fn check_filters(args: &GetArgs) -> Result<()> {
    let (cluster, namespace, state) = match args.kind {
        Kind::Clusters => (false, false, true),
        Kind::Links => (true, false, false),
        Kind::Policies | Kind::Tokens => (false, false, false),
        Kind::Mirrors | Kind::Federated | Kind::McsExports | Kind::McsImports => (true, true, true),
        Kind::Sources => (false, false, true),
    };
    let kind = kind_name(args.kind);
    for (given, allowed, flag) in [
        (args.cluster.is_some(), cluster, "--cluster"),
        (args.namespace.is_some(), namespace, "--namespace"),
        (args.state.is_some(), state, "--state"),
    ] {
        if given && !allowed {
            return Err(Error::Usage(format!("{flag} does not apply to {kind}")));
        }
    }
    Ok(())
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Clusters => "clusters",
        Kind::Links => "links",
        Kind::Policies => "policies",
        Kind::Mirrors => "mirrors",
        Kind::Federated => "federated",
        Kind::McsExports => "mcs-exports",
        Kind::McsImports => "mcs-imports",
        Kind::Sources => "sources",
        Kind::Tokens => "tokens",
    }
}

/// Re-renders on every burst of topology events until interrupted.
async fn watch(client: &Client, args: &GetArgs, style: Style) -> Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let sub = client.clone();
    let task = tokio::spawn(async move {
        sub.subscribe::<ops::Events>(ops::events::Variables, move |_| tx.send(()).is_ok())
            .await
    });
    let mut last = String::new();
    while rx.recv().await.is_some() {
        // Events come in bursts (one sync writes many rows): settle, then ask once.
        tokio::time::sleep(Duration::from_millis(300)).await;
        while rx.try_recv().is_ok() {}
        let text = render(client, args, style).await?;
        if text != last {
            output::print(&format!("\n{text}"))?;
            last = text;
        }
    }
    match task.await {
        Ok(res) => res,
        Err(e) => Err(Error::Watch(e.to_string())),
    }
}

/// The listing as text in the requested format.
pub async fn render(client: &Client, args: &GetArgs, style: Style) -> Result<String> {
    match args.kind {
        Kind::Clusters => clusters(client, args, style).await,
        Kind::Links => links(client, args, style).await,
        Kind::Policies => policies(client, args).await,
        Kind::Mirrors => mirrors(client, args, style).await,
        Kind::Federated => federated(client, args, style).await,
        Kind::McsExports => mcs_exports(client, args, style).await,
        Kind::McsImports => mcs_imports(client, args, style).await,
        Kind::Sources => sources(client, args, style).await,
        Kind::Tokens => tokens(client, args).await,
    }
}

/// JSON/YAML of the objects: one object when NAME was given, else a list.
fn emit<T: Serialize + Clone>(
    items: Vec<T>,
    args: &GetArgs,
    kind: &'static str,
    table: impl FnOnce(&[T]) -> Table,
) -> Result<String> {
    if let Some(name) = &args.name
        && items.is_empty()
    {
        return Err(Error::NotFound {
            kind,
            name: name.clone(),
        });
    }
    match args.output {
        Format::Json | Format::Yaml => {
            if args.name.is_some() && items.len() == 1 {
                output::document(&items[0], args.output)
            } else {
                output::document(&items, args.output)
            }
        }
        Format::Table | Format::Wide => {
            let t = table(&items);
            if t.is_empty() {
                Ok(format!("No {} found.\n", kind_plural(kind)))
            } else {
                Ok(t.render())
            }
        }
    }
}

fn kind_plural(kind: &str) -> String {
    match kind {
        "policy" => "policies".into(),
        "federated service" => "federated services".into(),
        "MCS export" => "MCS exports".into(),
        "MCS import" => "MCS imports".into(),
        "Git source" => "Git sources".into(),
        k => format!("{k}s"),
    }
}

fn state_matches(filter: Option<&String>, wire_value: &str) -> bool {
    filter.is_none_or(|f| ops::normalize(f) == ops::normalize(wire_value))
}

fn known_states(filter: Option<&String>, known: &[&str], what: &str) -> Result<()> {
    if let Some(f) = filter
        && !known.iter().any(|k| ops::normalize(k) == ops::normalize(f))
    {
        let names: Vec<String> = known.iter().map(|k| pascal(k)).collect();
        return Err(Error::Usage(format!(
            "unknown {what} {f:?}; one of: {}",
            names.join(", ")
        )));
    }
    Ok(())
}

const HEALTH: &[&str] = &["HEALTHY", "DEGRADED", "DOWN", "UNKNOWN"];
const MIRROR_STATES: &[&str] = &[
    "MIRRORED",
    "CONFLICT",
    "MISSING_NAMESPACE",
    "POLICY_DENIED",
    "ERROR",
];
const FEDERATION_STATES: &[&str] = &[
    "FEDERATED",
    "CONFLICT",
    "MISSING_NAMESPACE",
    "REJECTED",
    "ERROR",
];
const MCS_EXPORT_STATES: &[&str] = &["EXPORTED", "CONFLICT", "PENDING", "INVALID"];
const MCS_IMPORT_STATES: &[&str] = &["IMPORTED", "CONFLICT", "ERROR"];
const SYNC_STATUSES: &[&str] = &["UNKNOWN", "SYNCED", "OUT_OF_SYNC", "FAILED", "PRUNE_HELD"];

async fn clusters(client: &Client, args: &GetArgs, style: Style) -> Result<String> {
    known_states(args.state.as_ref(), HEALTH, "health")?;
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = client
            .run::<Clusters>(ops::clusters::Variables { after })
            .await?
            .clusters;
        all.extend(page.nodes);
        match (page.page_info.has_next_page, page.page_info.end_cursor) {
            (true, Some(c)) => after = Some(c),
            _ => break,
        }
    }
    all.retain(|c| {
        args.name.as_ref().is_none_or(|n| &c.name == n)
            && state_matches(args.state.as_ref(), &wire(&c.health))
    });
    let wide = args.output == Format::Wide;
    emit(all, args, "cluster", |items| {
        let mut headers = vec!["NAME", "HEALTH", "RECONCILER", "GATEWAY", "MIRRORS", "AGE"];
        if wide {
            headers.extend(["API SERVER", "CREDENTIALS", "OWNER", "GEN", "LABELS"]);
        }
        let mut t = Table::new(&headers);
        for c in items {
            let gateway = match (&c.gateway_config, c.gateway_alive) {
                (None, _) => "-".to_string(),
                (Some(_), None) => "unprobed".to_string(),
                (Some(_), Some(true)) => match c.gateway_latency_ms {
                    Some(ms) => style.green(&format!("alive ({ms:.1}ms)")),
                    None => style.green("alive"),
                },
                (Some(_), Some(false)) => style.red("dead"),
            };
            let m = &c.mirror_counts;
            let mut row = vec![
                c.name.clone(),
                style.state(&pascal(&wire(&c.health))),
                c.reconciler
                    .as_ref()
                    .map(|r| style.state(&word(&r.state)))
                    .unwrap_or_else(|| "-".into()),
                gateway,
                format!("{}/{}", m.mirrored, m.total),
                age(Some(&c.created_at)),
            ];
            if wide {
                let labels: Vec<String> = c
                    .labels
                    .iter()
                    .map(|l| format!("{}={}", l.key, l.value))
                    .collect();
                row.extend([
                    c.api_server.clone(),
                    pascal(&wire(&c.credentials_source)),
                    c.owner.clone(),
                    c.generation.to_string(),
                    or_dash(&labels.join(",")),
                ]);
            }
            t.row(row);
        }
        t
    })
}

async fn links(client: &Client, args: &GetArgs, style: Style) -> Result<String> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = client
            .run::<Links>(ops::links::Variables { after })
            .await?
            .links;
        all.extend(page.nodes);
        match (page.page_info.has_next_page, page.page_info.end_cursor) {
            (true, Some(c)) => after = Some(c),
            _ => break,
        }
    }
    all.retain(|l| {
        args.name.as_ref().is_none_or(|n| &l.name == n)
            && args
                .cluster
                .as_ref()
                .is_none_or(|c| &l.source_name == c || &l.target_name == c)
    });
    let wide = args.output == Format::Wide;
    emit(all, args, "link", |items| {
        let mut headers = vec![
            "NAME", "SOURCE", "TARGET", "GATEWAY", "MIRRORS", "PAUSED", "AGE",
        ];
        if wide {
            headers.extend(["LATENCY", "FAILURES", "OWNER", "GEN", "LAST ERROR"]);
        }
        let mut t = Table::new(&headers);
        for l in items {
            let gateway = match &l.gateway {
                None => "unprobed".to_string(),
                Some(g) if g.alive => style.green("alive"),
                Some(_) => style.red("dead"),
            };
            let m = &l.mirror_counts;
            let mut row = vec![
                l.name.clone(),
                l.source_name.clone(),
                l.target_name.clone(),
                gateway,
                format!("{}/{}", m.mirrored, m.total),
                if l.paused {
                    style.yellow("yes")
                } else {
                    "no".into()
                },
                age(Some(&l.created_at)),
            ];
            if wide {
                let g = l.gateway.as_ref();
                row.extend([
                    g.and_then(|g| g.latency_ms)
                        .map(|ms| format!("{ms:.1}ms"))
                        .unwrap_or_else(|| "-".into()),
                    g.map(|g| g.consecutive_failures.to_string())
                        .unwrap_or_else(|| "-".into()),
                    l.owner.clone(),
                    l.generation.to_string(),
                    g.and_then(|g| g.last_error.clone())
                        .unwrap_or_else(|| "-".into()),
                ]);
            }
            t.row(row);
        }
        t
    })
}

/// `a=b,c in (d,e),!f`; `*` for an absent selector (it matches everything).
fn selector(labels: &[(String, String)], exprs: &[(String, String, Vec<String>)]) -> String {
    let mut parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for (key, op, values) in exprs {
        parts.push(match op.as_str() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other} ({})", values.join(",")),
        });
    }
    if parts.is_empty() {
        "*".into()
    } else {
        parts.join(",")
    }
}

macro_rules! selector_text {
    ($sel:expr) => {
        match $sel {
            None => "*".to_string(),
            Some(s) => selector(
                &s.match_labels
                    .iter()
                    .map(|l| (l.key.clone(), l.value.clone()))
                    .collect::<Vec<_>>(),
                &s.match_expressions
                    .iter()
                    .map(|e| (e.key.clone(), e.operator.clone(), e.values.clone()))
                    .collect::<Vec<_>>(),
            ),
        }
    };
}

async fn policies(client: &Client, args: &GetArgs) -> Result<String> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = client
            .run::<Policies>(ops::policies::Variables { after })
            .await?
            .export_policies;
        all.extend(page.nodes);
        match (page.page_info.has_next_page, page.page_info.end_cursor) {
            (true, Some(c)) => after = Some(c),
            _ => break,
        }
    }
    all.retain(|p| args.name.as_ref().is_none_or(|n| &p.name == n));
    let wide = args.output == Format::Wide;
    emit(all, args, "policy", |items| {
        let mut headers = vec![
            "NAME",
            "MODES",
            "NAMESPACES",
            "TARGETS",
            "CONSUMERS",
            "OWNER",
        ];
        if wide {
            headers.extend(["SERVICES", "GEN", "UPDATED"]);
        }
        let mut t = Table::new(&headers);
        for p in items {
            let mut ns = if p.namespaces.allow.is_empty() {
                "*".to_string()
            } else {
                p.namespaces.allow.join(",")
            };
            if !p.namespaces.deny.is_empty() {
                ns.push_str(&format!(" !{}", p.namespaces.deny.join(",!")));
            }
            let mut row = vec![
                p.name.clone(),
                if p.modes.is_empty() {
                    "*".into()
                } else {
                    p.modes.iter().map(kebab).collect::<Vec<_>>().join(",")
                },
                ns,
                selector_text!(&p.target_cluster_selector),
                selector_text!(&p.consumer_cluster_selector),
                p.owner.clone(),
            ];
            if wide {
                row.extend([
                    selector_text!(&p.service_selector),
                    p.generation.to_string(),
                    age(Some(&p.updated_at)),
                ]);
            }
            t.row(row);
        }
        t
    })
}

async fn mirrors(client: &Client, args: &GetArgs, style: Style) -> Result<String> {
    known_states(args.state.as_ref(), MIRROR_STATES, "mirror state")?;
    let state: Option<ops::mirrors::MirrorState> = args
        .state
        .as_deref()
        .and_then(|s| ops::parse_enum(s, MIRROR_STATES));
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = client
            .run::<Mirrors>(ops::mirrors::Variables {
                cluster: args.cluster.clone(),
                namespace: args.namespace.clone(),
                state: state.clone(),
                after,
            })
            .await?
            .mirrors;
        all.extend(page.nodes);
        match (page.page_info.has_next_page, page.page_info.end_cursor) {
            (true, Some(c)) => after = Some(c),
            _ => break,
        }
    }
    all.retain(|m| {
        args.name
            .as_ref()
            .is_none_or(|n| &m.local_name == n || &m.remote_name == n)
    });
    all.sort_by(|a, b| {
        (&a.source_cluster, &a.namespace, &a.local_name).cmp(&(
            &b.source_cluster,
            &b.namespace,
            &b.local_name,
        ))
    });
    let wide = args.output == Format::Wide;
    emit(all, args, "mirror", |items| {
        let mut headers = vec![
            "CLUSTER",
            "NAMESPACE",
            "NAME",
            "TARGET",
            "MODE",
            "STATE",
            "AGE",
        ];
        if wide {
            headers.extend(["LINK", "REMOTE", "HEADLESS", "MESSAGE"]);
        }
        let mut t = Table::new(&headers);
        for m in items {
            let mut row = vec![
                m.source_cluster.clone(),
                m.namespace.clone(),
                m.local_name.clone(),
                m.target_cluster.clone(),
                kebab(&m.mode),
                style.state(&pascal(&wire(&m.state))),
                age(Some(&m.last_transition)),
            ];
            if wide {
                row.extend([
                    m.link_name.clone(),
                    m.remote_name.clone(),
                    if m.headless { "yes" } else { "no" }.into(),
                    or_dash(&m.message),
                ]);
            }
            t.row(row);
        }
        t
    })
}

async fn federated(client: &Client, args: &GetArgs, style: Style) -> Result<String> {
    known_states(args.state.as_ref(), FEDERATION_STATES, "federation state")?;
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = client
            .run::<Federated>(ops::federated::Variables {
                cluster: args.cluster.clone(),
                namespace: args.namespace.clone(),
                after,
            })
            .await?
            .federated_services;
        all.extend(page.nodes);
        match (page.page_info.has_next_page, page.page_info.end_cursor) {
            (true, Some(c)) => after = Some(c),
            _ => break,
        }
    }
    all.retain(|f| {
        args.name
            .as_ref()
            .is_none_or(|n| &f.service == n || &f.local_name == n)
            && state_matches(args.state.as_ref(), &wire(&f.state))
    });
    all.sort_by(|a, b| {
        (&a.source_cluster, &a.namespace, &a.local_name).cmp(&(
            &b.source_cluster,
            &b.namespace,
            &b.local_name,
        ))
    });
    let wide = args.output == Format::Wide;
    emit(all, args, "federated service", |items| {
        let mut headers = vec!["CLUSTER", "NAMESPACE", "NAME", "STATE", "MEMBERS", "AGE"];
        if wide {
            headers.extend(["SERVICE", "LOCAL", "MESSAGE"]);
        }
        let mut t = Table::new(&headers);
        for f in items {
            let members: Vec<String> = f
                .members
                .iter()
                .map(|m| match wire(&m.state).as_str() {
                    "MEMBER" => m.cluster.clone(),
                    other => format!("{}({})", m.cluster, pascal(other)),
                })
                .collect();
            let mut row = vec![
                f.source_cluster.clone(),
                f.namespace.clone(),
                f.local_name.clone(),
                style.state(&pascal(&wire(&f.state))),
                or_dash(&members.join(",")),
                age(Some(&f.last_transition)),
            ];
            if wide {
                row.extend([
                    f.service.clone(),
                    if f.local_discovery { "yes" } else { "no" }.into(),
                    or_dash(&f.message),
                ]);
            }
            t.row(row);
        }
        t
    })
}

/// ServiceExports: one row per export, its three KEP-1645 conditions as columns (`True`,
/// `False`; wide adds the reason of each that is not as wished).
async fn mcs_exports(client: &Client, args: &GetArgs, style: Style) -> Result<String> {
    known_states(args.state.as_ref(), MCS_EXPORT_STATES, "MCS export state")?;
    let state: Option<ops::mcs_exports::McsExportState> = args
        .state
        .as_deref()
        .and_then(|s| ops::parse_enum(s, MCS_EXPORT_STATES));
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = client
            .run::<McsExports>(ops::mcs_exports::Variables {
                cluster: args.cluster.clone(),
                namespace: args.namespace.clone(),
                state: state.clone(),
                after,
            })
            .await?
            .mcs_exports;
        all.extend(page.nodes);
        match (page.page_info.has_next_page, page.page_info.end_cursor) {
            (true, Some(c)) => after = Some(c),
            _ => break,
        }
    }
    all.retain(|e| args.name.as_ref().is_none_or(|n| &e.service == n));
    all.sort_by(|a, b| {
        (&a.cluster, &a.namespace, &a.service).cmp(&(&b.cluster, &b.namespace, &b.service))
    });
    let wide = args.output == Format::Wide;
    emit(all, args, "MCS export", |items| {
        let mut headers = vec![
            "CLUSTER",
            "NAMESPACE",
            "NAME",
            "STATE",
            "VALID",
            "READY",
            "CONFLICT",
            "IMPORTED BY",
            "AGE",
        ];
        if wide {
            headers.extend(["LINKS", "REASONS"]);
        }
        let mut t = Table::new(&headers);
        for e in items {
            let cond = |ty: &str| {
                e.conditions
                    .iter()
                    .find(|c| wire(&c.type_) == ty)
                    .map(|c| pascal(&wire(&c.status)))
                    .unwrap_or_else(|| "-".into())
            };
            let mut row = vec![
                e.cluster.clone(),
                e.namespace.clone(),
                e.service.clone(),
                style.state(&pascal(&wire(&e.state))),
                cond("VALID"),
                cond("READY"),
                cond("CONFLICT"),
                or_dash(&e.imported_by.join(",")),
                age(Some(&e.last_transition)),
            ];
            if wide {
                // The conditions not as wished: Valid or Ready false, Conflict true.
                let reasons: Vec<String> = e
                    .conditions
                    .iter()
                    .filter(|c| (wire(&c.status) == "TRUE") == (wire(&c.type_) == "CONFLICT"))
                    .map(|c| format!("{}: {}", c.reason, c.message))
                    .collect();
                row.extend([or_dash(&e.links.join(",")), or_dash(&reasons.join("; "))]);
            }
            t.row(row);
        }
        t
    })
}

/// ServiceImports, by consumer cluster.
async fn mcs_imports(client: &Client, args: &GetArgs, style: Style) -> Result<String> {
    known_states(args.state.as_ref(), MCS_IMPORT_STATES, "MCS import state")?;
    let state: Option<ops::mcs_imports::McsImportState> = args
        .state
        .as_deref()
        .and_then(|s| ops::parse_enum(s, MCS_IMPORT_STATES));
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = client
            .run::<McsImports>(ops::mcs_imports::Variables {
                cluster: args.cluster.clone(),
                namespace: args.namespace.clone(),
                state: state.clone(),
                after,
            })
            .await?
            .mcs_imports;
        all.extend(page.nodes);
        match (page.page_info.has_next_page, page.page_info.end_cursor) {
            (true, Some(c)) => after = Some(c),
            _ => break,
        }
    }
    all.retain(|i| args.name.as_ref().is_none_or(|n| &i.service == n));
    all.sort_by(|a, b| {
        (&a.cluster, &a.namespace, &a.service).cmp(&(&b.cluster, &b.namespace, &b.service))
    });
    let wide = args.output == Format::Wide;
    emit(all, args, "MCS import", |items| {
        let mut headers = vec![
            "CLUSTER",
            "NAMESPACE",
            "NAME",
            "TYPE",
            "PORTS",
            "SOURCES",
            "SLICES",
            "STATE",
            "AGE",
        ];
        if wide {
            headers.extend(["READY ENDPOINTS", "AFFINITY", "MESSAGE"]);
        }
        let mut t = Table::new(&headers);
        for i in items {
            let ports: Vec<String> = i
                .ports
                .iter()
                .map(|p| format!("{}/{}", p.port, p.protocol))
                .collect();
            // KEP-1645 spells the type `ClusterSetIP`; the wire enum is `CLUSTER_SET_IP`.
            let ty = match wire(&i.type_).as_str() {
                "CLUSTER_SET_IP" => "ClusterSetIP".to_string(),
                other => pascal(other),
            };
            let mut row = vec![
                i.cluster.clone(),
                i.namespace.clone(),
                i.service.clone(),
                ty,
                or_dash(&ports.join(",")),
                or_dash(&i.source_clusters.join(",")),
                i.endpoint_slices.to_string(),
                style.state(&pascal(&wire(&i.state))),
                age(Some(&i.last_transition)),
            ];
            if wide {
                row.extend([
                    i.ready_endpoints.to_string(),
                    i.session_affinity.clone(),
                    or_dash(&i.message),
                ]);
            }
            t.row(row);
        }
        t
    })
}

async fn sources(client: &Client, args: &GetArgs, style: Style) -> Result<String> {
    known_states(args.state.as_ref(), SYNC_STATUSES, "sync status")?;
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = client
            .run::<Sources>(ops::sources::Variables { after })
            .await?
            .git_sources;
        all.extend(page.nodes);
        match (page.page_info.has_next_page, page.page_info.end_cursor) {
            (true, Some(c)) => after = Some(c),
            _ => break,
        }
    }
    all.retain(|s| {
        args.name.as_ref().is_none_or(|n| &s.name == n)
            && state_matches(args.state.as_ref(), &wire(&s.status))
    });
    let wide = args.output == Format::Wide;
    emit(all, args, "Git source", |items| {
        let mut headers = vec![
            "NAME",
            "STATUS",
            "REVISION",
            "DRIFTED",
            "PINNED",
            "SUSPENDED",
            "SYNCED",
        ];
        if wide {
            headers.extend(["URL", "REF", "PATH", "SELF-HEAL", "LAST ERROR"]);
        }
        let mut t = Table::new(&headers);
        for s in items {
            let mut row = vec![
                s.name.clone(),
                style.state(&pascal(&wire(&s.status))),
                short_rev(s.last_applied_revision.as_deref()),
                if s.drifted {
                    style.yellow("yes")
                } else {
                    "no".into()
                },
                short_rev(s.pinned_revision.as_deref()),
                if s.suspended {
                    style.yellow("yes")
                } else {
                    "no".into()
                },
                age(s.last_synced_at.as_deref()),
            ];
            if wide {
                row.extend([
                    s.url.clone(),
                    s.git_ref.clone(),
                    s.path.clone(),
                    if s.self_heal { "yes" } else { "no" }.into(),
                    s.last_error
                        .as_deref()
                        .map(|e| e.lines().next().unwrap_or_default().to_string())
                        .unwrap_or_else(|| "-".into()),
                ]);
            }
            t.row(row);
        }
        t
    })
}

async fn tokens(client: &Client, args: &GetArgs) -> Result<String> {
    let mut all = client
        .run::<Tokens>(ops::tokens::Variables)
        .await?
        .api_tokens;
    all.retain(|t| {
        args.name
            .as_ref()
            .is_none_or(|n| &t.name == n || &t.id == n)
    });
    emit(all, args, "token", |items| {
        let mut t = Table::new(&["ID", "NAME", "ROLE", "CREATED", "LAST USED", "REVOKED"]);
        for tok in items {
            t.row(vec![
                tok.id.clone(),
                or_dash(&tok.name),
                wire(&tok.role).to_lowercase(),
                age(Some(&tok.created_at)),
                age(tok.last_used_at.as_deref()),
                age(tok.revoked_at.as_deref()),
            ]);
        }
        t
    })
}
