// The read-only pages: topology, clusters, links, services, mirrors, federated services,
// Multi-Cluster Services exports and imports, gateways and blast radius. Every list is paged (`first: 50` with `after`).

import { gql } from "./api";
import { badge, h, link, mount, ms, norm, table, when } from "./dom";
import { type Pick, type Topo, edgeTone, fetchTopology, legend, nodeTone, patchTopology, renderTopology } from "./topology";
import { type Ctx, Pager, type View, changes, failed, section } from "./view";

const PAGE = 50;

const q = (p: Record<string, string | null | undefined>): string => {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(p)) if (v) u.set(k, v);
  const t = u.toString();
  return t ? `?${t}` : "";
};

export function healthBadge(health: string): HTMLElement {
  const tone = nodeTone({ health } as never);
  return badge(norm(health), tone);
}

export function mirrorStateBadge(state: string): HTMLElement {
  const st = norm(state);
  const tone = st === "MIRRORED" ? "ok" : st === "ERROR" || st === "CONFLICT" ? "bad" : "warn";
  return badge(st, tone);
}

function alive(v: boolean | null | undefined): HTMLElement {
  return v === null || v === undefined ? badge("not probed", "unknown") : v ? badge("alive", "ok") : badge("DEAD", "bad");
}

function counts(c: { total: number; mirrored: number; conflict: number; error: number }): HTMLElement {
  return h(
    "span",
    { class: "counts" },
    `${c.mirrored}/${c.total} mirrored`,
    c.error ? h("span", { class: "bad-text" }, ` · ${c.error} error`) : null,
    c.conflict ? h("span", { class: "bad-text" }, ` · ${c.conflict} conflict`) : null,
  );
}

// ---------------------------------------------------------------------------------------------
// Topology

export function topologyPage(ctx: Ctx): View {
  const picture = h("div", { class: "picture", id: "topology" }, h("p", { class: "muted" }, "loading the fleet…"));
  const detail = h("aside", { class: "detail card", id: "detail" }, h("p", { class: "muted" }, "Click a cluster or a link for its detail."));
  const summary = h("div", { class: "summary" });
  const el = h("div", { class: "topology-page" }, summary, h("div", { class: "split" }, h("div", { class: "card" }, picture, legend()), detail));
  let topo: Topo | null = null;
  let picked: Pick | null = ctx.params.get("cluster")
    ? { kind: "cluster", name: ctx.params.get("cluster") as string }
    : ctx.params.get("link")
      ? { kind: "link", name: ctx.params.get("link") as string }
      : null;
  const pick = (p: Pick) => {
    picked = p;
    draw();
  };
  let drawn = "";
  const draw = () => {
    if (!topo) return;
    // Nothing changed since the last draw: leave the DOM alone (links in the detail keep focus).
    const sig = JSON.stringify([topo, picked]);
    if (sig === drawn) return;
    drawn = sig;
    if (!patchTopology(picture.querySelector("svg.topology"), topo, picked)) mount(picture, renderTopology(topo, pick, picked));
    const by = (tone: string) => topo!.nodes.filter((n) => nodeTone(n) === tone).length;
    const m = topo.nodes.reduce(
      (a, n) => ({ total: a.total + n.mirrorCounts.total, error: a.error + n.mirrorCounts.error, conflict: a.conflict + n.mirrorCounts.conflict }),
      { total: 0, error: 0, conflict: 0 },
    );
    const deadGw = topo.edges.filter((e) => e.gateway && !e.gateway.alive).length;
    mount(
      summary,
      h("div", { class: "stat" }, h("b", null, topo.nodes.length), " clusters"),
      h("div", { class: "stat ok" }, h("b", null, by("ok")), " healthy"),
      h("div", { class: "stat warn" }, h("b", null, by("warn")), " degraded"),
      h("div", { class: "stat bad" }, h("b", null, by("bad")), " down"),
      h("div", { class: "stat" }, h("b", null, topo.edges.length), " links"),
      h("div", { class: `stat ${deadGw ? "bad" : ""}` }, h("b", null, deadGw), " dead gateways"),
      h("div", { class: "stat" }, h("b", null, m.total), " mirrors"),
      h("div", { class: `stat ${m.error + m.conflict ? "bad" : ""}` }, h("b", null, m.error + m.conflict), " in Error/Conflict"),
    );
    renderDetail();
  };
  const renderDetail = () => {
    if (!topo || !picked) return;
    if (picked.kind === "cluster") {
      const n = topo.nodes.find((x) => x.name === picked!.name);
      if (!n) return mount(detail, h("p", { class: "muted" }, `${picked.name} is gone.`));
      const out = topo.edges.filter((e) => e.sourceName === n.name);
      const inc = topo.edges.filter((e) => e.targetName === n.name);
      mount(
        detail,
        h("h2", null, "Cluster ", h("code", null, n.name)),
        h("dl", null,
          h("dt", null, "health"), h("dd", null, healthBadge(n.health)),
          h("dt", null, "reconciler"), h("dd", null, n.reconciler ? `${n.reconciler.state}${n.reconciler.message ? ` — ${n.reconciler.message}` : ""}` : "no report yet"),
          h("dt", null, "gateway"), h("dd", null, alive(n.gatewayAlive), " ", ms(n.gatewayLatencyMs)),
          h("dt", null, "holds"), h("dd", null, counts(n.mirrorCounts)),
          h("dt", null, "consumes from"), h("dd", null, out.map((e) => e.targetName).join(", ") || "–"),
          h("dt", null, "exports to"), h("dd", null, inc.map((e) => e.sourceName).join(", ") || "–"),
        ),
        h("p", { class: "actions" },
          link(`#/clusters/${encodeURIComponent(n.name)}`, "Details"),
          link(`#/mirrors${q({ cluster: n.name })}`, "Mirrors held"),
          link(`#/blast${q({ cluster: n.name })}`, "Blast radius"),
        ),
      );
    } else {
      const e = topo.edges.find((x) => x.name === picked!.name);
      if (!e) return mount(detail, h("p", { class: "muted" }, `${picked.name} is gone.`));
      mount(
        detail,
        h("h2", null, "Link ", h("code", null, e.name)),
        h("dl", null,
          h("dt", null, "from → to"), h("dd", null, `${e.sourceName} → ${e.targetName}`),
          h("dt", null, "state"), h("dd", null, e.paused ? badge("paused", "paused") : badge(edgeTone(e), edgeTone(e))),
          h("dt", null, "gateway"), h("dd", null, alive(e.gateway?.alive), " ", ms(e.gateway?.latencyMs)),
          h("dt", null, "failures"), h("dd", null, String(e.gateway?.consecutiveFailures ?? 0)),
          e.gateway?.lastError ? [h("dt", null, "last error"), h("dd", { class: "bad-text" }, e.gateway.lastError)] : null,
          h("dt", null, "mirrors"), h("dd", null, counts(e.mirrorCounts)),
        ),
        h("p", { class: "actions" }, link(`#/mirrors${q({ link: e.name })}`, "Mirrors of this link"), link("#/gateways", "Gateways")),
      );
    }
  };
  let painted = false;
  const refresh = () => {
    fetchTopology()
      .then((t) => {
        topo = t;
        draw();
        if (!painted) {
          painted = true;
          // After the frame that shows the picture: what `scripts/bench dashboard` measures.
          requestAnimationFrame(() => setTimeout(() => performance.mark("linkplane:topology-painted"), 0));
        }
      })
      .catch((e) => (topo ? ctx.notify((e as Error).message, "bad") : failed(picture, e)));
  };
  refresh();
  return { el, refresh };
}

// ---------------------------------------------------------------------------------------------
// Clusters

interface ClusterRow {
  name: string;
  apiServer: string;
  owner: string;
  health: string;
  gatewayAlive: boolean | null;
  gatewayLatencyMs: number | null;
  reconciler: { state: string; message: string } | null;
  mirrorCounts: { total: number; mirrored: number; conflict: number; error: number };
  outgoingLinks: { name: string }[];
  incomingLinks: { name: string }[];
}

const CLUSTER_FIELDS = `name apiServer owner health gatewayAlive gatewayLatencyMs reconciler { state message }
  mirrorCounts { total mirrored conflict error } outgoingLinks { name } incomingLinks { name }`;

export function clustersPage(ctx: Ctx): View {
  if (ctx.rest[0]) return clusterDetail(ctx, ctx.rest[0]);
  const body = h("div", null, h("p", { class: "muted" }, "loading…"));
  const pager = new Pager(PAGE, () => refresh());
  const el = section("Clusters", body, pager.el);
  const fresh = changes();
  const refresh = () => {
    gql<{ clusters: { pageInfo: { hasNextPage: boolean; endCursor: string | null }; nodes: ClusterRow[] } }>(
      `query($first: Int, $after: String) { clusters(first: $first, after: $after) {
        pageInfo { hasNextPage endCursor } nodes { ${CLUSTER_FIELDS} } } }`,
      { first: PAGE, after: pager.after },
    )
      .then(({ clusters }) => {
        if (!fresh(clusters)) return;
        mount(
          body,
          table(
            ["cluster", "health", "reconciler", "gateway", "latency", "mirrors held", "links out / in", "owner"],
            clusters.nodes.map((c) => [
              link(`#/clusters/${encodeURIComponent(c.name)}`, c.name),
              healthBadge(c.health),
              c.reconciler ? h("span", { title: c.reconciler.message }, c.reconciler.state) : h("span", { class: "muted" }, "–"),
              alive(c.gatewayAlive),
              ms(c.gatewayLatencyMs),
              counts(c.mirrorCounts),
              `${c.outgoingLinks.length} / ${c.incomingLinks.length}`,
              c.owner,
            ]),
            { class: "clusters" },
          ),
        );
        pager.show(clusters.pageInfo, clusters.nodes.length);
      })
      .catch((e) => failed(body, e));
  };
  refresh();
  return { el, refresh };
}

function clusterDetail(_ctx: Ctx, name: string): View {
  const body = h("div", null, h("p", { class: "muted" }, "loading…"));
  const el = h("div", null, h("p", null, link("#/clusters", "‹ all clusters")), body);
  const fresh = changes();
  const refresh = () => {
    gql<{
      cluster: (Omit<ClusterRow, "outgoingLinks" | "incomingLinks"> & {
        clusterDomain: string;
        labels: { key: string; value: string }[];
        gatewayProbes: { link: string; alive: boolean; latencyMs: number | null; consecutiveFailures: number; lastError: string | null; lastProbeAt: string | null }[];
        outgoingLinks: { name: string; targetName: string; paused: boolean }[];
        incomingLinks: { name: string; sourceName: string; paused: boolean }[];
      }) | null;
    }>(
      `query($name: String!) { cluster(name: $name) { ${CLUSTER_FIELDS} clusterDomain labels { key value }
        gatewayProbes { link alive latencyMs consecutiveFailures lastError lastProbeAt }
        outgoingLinks { name targetName paused } incomingLinks { name sourceName paused } } }`,
      { name },
    )
      .then(({ cluster: c }) => {
        if (!fresh(c)) return;
        if (!c) return mount(body, h("p", { class: "error" }, `No cluster named ${name}.`));
        mount(
          body,
          section(
            `Cluster ${c.name}`,
            h("dl", null,
              h("dt", null, "health"), h("dd", null, healthBadge(c.health)),
              h("dt", null, "API server"), h("dd", null, h("code", null, c.apiServer)),
              h("dt", null, "cluster domain"), h("dd", null, c.clusterDomain),
              h("dt", null, "labels"), h("dd", null, c.labels.map((l) => h("code", { class: "label" }, `${l.key}=${l.value}`))),
              h("dt", null, "reconciler"), h("dd", null, c.reconciler ? `${c.reconciler.state} ${c.reconciler.message}` : "no report yet"),
              h("dt", null, "gateway"), h("dd", null, alive(c.gatewayAlive), " ", ms(c.gatewayLatencyMs)),
              h("dt", null, "holds"), h("dd", null, counts(c.mirrorCounts)),
              h("dt", null, "owner"), h("dd", null, c.owner),
            ),
            h("p", { class: "actions" },
              link(`#/mirrors${q({ cluster: c.name })}`, "Mirrors held"),
              link(`#/services${q({ cluster: c.name })}`, "Exported services"),
              link(`#/blast${q({ cluster: c.name })}`, "Blast radius"),
            ),
          ),
          section(
            "Gateway probes (links targeting this cluster)",
            table(
              ["link", "alive", "latency", "consecutive failures", "last error", "last probe"],
              c.gatewayProbes.map((p) => [p.link, alive(p.alive), ms(p.latencyMs), String(p.consecutiveFailures), p.lastError ?? "", when(p.lastProbeAt)]),
            ),
          ),
          section(
            "Links",
            table(
              ["link", "direction", "peer", "paused"],
              [
                ...c.outgoingLinks.map((l) => [l.name, "consumes from", l.targetName, l.paused ? "yes" : "no"]),
                ...c.incomingLinks.map((l) => [l.name, "exports to", l.sourceName, l.paused ? "yes" : "no"]),
              ],
            ),
          ),
        );
      })
      .catch((e) => failed(body, e));
  };
  refresh();
  return { el, refresh };
}

// ---------------------------------------------------------------------------------------------
// Links and gateways

interface LinkRow {
  name: string;
  sourceName: string;
  targetName: string;
  paused: boolean;
  owner: string;
  gateway: { alive: boolean; latencyMs: number | null; consecutiveFailures: number; lastError: string | null; lastProbeAt: string | null } | null;
  mirrorCounts: { total: number; mirrored: number; conflict: number; error: number };
}

function linksList(title: string, gatewaysView: boolean): View {
  const body = h("div", null, h("p", { class: "muted" }, "loading…"));
  const pager = new Pager(PAGE, () => refresh());
  const el = section(title, gatewaysView ? h("p", { class: "muted" }, "Each link's target gateway as probed for that link — what `linkerd multicluster gateways` shows.") : null, body, pager.el);
  const fresh = changes();
  const refresh = () => {
    gql<{ links: { pageInfo: { hasNextPage: boolean; endCursor: string | null }; nodes: LinkRow[] } }>(
      `query($first: Int, $after: String) { links(first: $first, after: $after) { pageInfo { hasNextPage endCursor }
        nodes { name sourceName targetName paused owner
          gateway { alive latencyMs consecutiveFailures lastError lastProbeAt }
          mirrorCounts { total mirrored conflict error } } } }`,
      { first: PAGE, after: pager.after },
    )
      .then(({ links }) => {
        if (!fresh(links)) return;
        const rows = links.nodes.map((l) =>
          gatewaysView
            ? [l.targetName, link(`#/topology${q({ link: l.name })}`, l.name), alive(l.gateway?.alive), ms(l.gateway?.latencyMs), String(l.gateway?.consecutiveFailures ?? 0), l.gateway?.lastError ?? "", when(l.gateway?.lastProbeAt), String(l.mirrorCounts.total)]
            : [link(`#/topology${q({ link: l.name })}`, l.name), l.sourceName, l.targetName, l.paused ? badge("paused", "paused") : badge("active", "ok"), alive(l.gateway?.alive), ms(l.gateway?.latencyMs), link(`#/mirrors${q({ link: l.name })}`, counts(l.mirrorCounts)), l.owner],
        );
        mount(
          body,
          table(
            gatewaysView
              ? ["gateway cluster", "probed for link", "alive", "latency", "consecutive failures", "last error", "last probe", "mirrors"]
              : ["link", "source (consumer)", "target (exporter)", "state", "gateway", "latency", "mirrors", "owner"],
            rows,
            { class: gatewaysView ? "gateways" : "links" },
          ),
        );
        pager.show(links.pageInfo, links.nodes.length);
      })
      .catch((e) => failed(body, e));
  };
  refresh();
  return { el, refresh };
}

export const linksPage = (_ctx: Ctx): View => linksList("Links", false);
export const gatewaysPage = (_ctx: Ctx): View => linksList("Gateways", true);

// ---------------------------------------------------------------------------------------------
// Filters shared by services, mirrors and federated services

async function clusterNames(): Promise<string[]> {
  const r = await gql<{ clusters: { nodes: { name: string }[] } }>("{ clusters(first: 500) { nodes { name } } }");
  return r.clusters.nodes.map((n) => n.name);
}

function filterBar(
  ctx: Ctx,
  fields: { key: string; label: string; kind: "cluster" | "text" | "state"; states?: string[] }[],
  onChange: () => void,
): { el: HTMLElement; value: (k: string) => string | null } {
  const inputs = new Map<string, HTMLInputElement | HTMLSelectElement>();
  const el = h("form", { class: "filters", onsubmit: (e: Event) => e.preventDefault() });
  for (const f of fields) {
    let input: HTMLInputElement | HTMLSelectElement;
    if (f.kind === "text") {
      input = h("input", { name: f.key, type: "search", placeholder: "any", value: ctx.params.get(f.key) ?? "" });
    } else {
      const sel = h("select", { name: f.key }, h("option", { value: "" }, "any"));
      const opts = f.kind === "state" ? (f.states ?? []) : [];
      for (const o of opts) sel.appendChild(h("option", { value: o }, o));
      sel.value = ctx.params.get(f.key) ?? "";
      if (f.kind === "cluster") {
        const want = ctx.params.get(f.key) ?? "";
        if (want) sel.appendChild(h("option", { value: want }, want));
        sel.value = want;
        clusterNames()
          .then((names) => {
            for (const n of names) if (n !== want) sel.appendChild(h("option", { value: n }, n));
          })
          .catch(() => {});
      }
      input = sel;
    }
    input.addEventListener("change", () => {
      const u = new URLSearchParams();
      for (const [k, i] of inputs) if (i.value) u.set(k, i.value);
      const t = u.toString();
      history.replaceState(null, "", `${location.pathname}${location.hash.split("?")[0]}${t ? `?${t}` : ""}`);
      onChange();
    });
    inputs.set(f.key, input);
    el.appendChild(h("label", null, f.label, input));
  }
  return { el, value: (k) => inputs.get(k)?.value || null };
}

// ---------------------------------------------------------------------------------------------
// Mirrors

const MIRROR_STATES = ["MIRRORED", "CONFLICT", "MISSING_NAMESPACE", "POLICY_DENIED", "ERROR"];

interface MirrorRow {
  id: string;
  linkName: string;
  sourceCluster: string;
  targetCluster: string;
  namespace: string;
  remoteName: string;
  localName: string;
  mode: string;
  headless: boolean;
  state: string;
  message: string;
  lastTransition: string;
}

export function mirrorsPage(ctx: Ctx): View {
  const body = h("div", null, h("p", { class: "muted" }, "loading…"));
  const pager = new Pager(PAGE, () => refresh());
  const filters = filterBar(
    ctx,
    [
      { key: "cluster", label: "held by cluster", kind: "cluster" },
      { key: "target", label: "exported by", kind: "cluster" },
      { key: "namespace", label: "namespace", kind: "text" },
      { key: "state", label: "state", kind: "state", states: MIRROR_STATES },
      { key: "link", label: "link", kind: "text" },
    ],
    () => {
      pager.reset();
      refresh();
    },
  );
  const el = section("Mirrors", filters.el, body, pager.el);
  const fresh = changes();
  const refresh = () => {
    gql<{ mirrors: { pageInfo: { hasNextPage: boolean; endCursor: string | null }; nodes: MirrorRow[] } }>(
      `query($cluster: String, $target: String, $namespace: String, $state: MirrorState, $link: String, $first: Int, $after: String) {
        mirrors(cluster: $cluster, targetCluster: $target, namespace: $namespace, state: $state, link: $link, first: $first, after: $after) {
          pageInfo { hasNextPage endCursor }
          nodes { id linkName sourceCluster targetCluster namespace remoteName localName mode headless state message lastTransition } } }`,
      {
        cluster: filters.value("cluster"),
        target: filters.value("target"),
        namespace: filters.value("namespace"),
        state: filters.value("state"),
        link: filters.value("link"),
        first: PAGE,
        after: pager.after,
      },
    )
      .then(({ mirrors }) => {
        if (!fresh(mirrors)) return;
        mount(
          body,
          table(
            ["mirror", "held by", "namespace", "of service", "link", "mode", "state", "since", "message"],
            mirrors.nodes.map((m) => [
              h("code", null, m.localName),
              m.sourceCluster,
              m.namespace,
              `${m.remoteName}@${m.targetCluster}`,
              m.linkName,
              `${m.mode}${m.headless ? " (headless)" : ""}`,
              mirrorStateBadge(m.state),
              when(m.lastTransition),
              h("span", { class: "message" }, m.message),
            ]),
            { class: "mirrors" },
          ),
        );
        pager.show(mirrors.pageInfo, mirrors.nodes.length);
      })
      .catch((e) => failed(body, e));
  };
  refresh();
  return { el, refresh };
}

// ---------------------------------------------------------------------------------------------
// Exported services and their consumers

export function servicesPage(ctx: Ctx): View {
  const body = h("div", null, h("p", { class: "muted" }, "loading…"));
  const pager = new Pager(PAGE, () => refresh());
  const filters = filterBar(
    ctx,
    [
      { key: "cluster", label: "exported by", kind: "cluster" },
      { key: "namespace", label: "namespace", kind: "text" },
    ],
    () => {
      pager.reset();
      refresh();
    },
  );
  const el = section("Exported services and their consumers", filters.el, body, pager.el);
  const fresh = changes();
  const refresh = () => {
    gql<{
      services: {
        pageInfo: { hasNextPage: boolean; endCursor: string | null };
        nodes: { id: string; cluster: string; namespace: string; name: string; healthyConsumers: number; consumers: { sourceCluster: string; localName: string; state: string; mode: string }[] }[];
      };
    }>(
      `query($cluster: String, $namespace: String, $first: Int, $after: String) {
        services(cluster: $cluster, namespace: $namespace, first: $first, after: $after) { pageInfo { hasNextPage endCursor }
          nodes { id cluster namespace name healthyConsumers consumers { sourceCluster localName state mode } } } }`,
      { cluster: filters.value("cluster"), namespace: filters.value("namespace"), first: PAGE, after: pager.after },
    )
      .then(({ services }) => {
        if (!fresh(services)) return;
        mount(
          body,
          table(
            ["service", "exported by", "namespace", "healthy consumers", "consumers"],
            services.nodes.map((s) => [
              h("code", null, s.name),
              s.cluster,
              s.namespace,
              `${s.healthyConsumers} / ${s.consumers.length}`,
              h("span", null, s.consumers.map((c) => h("span", { class: "chip", title: `${c.localName} (${c.mode})` }, `${c.sourceCluster} `, mirrorStateBadge(c.state)))),
            ]),
          ),
        );
        pager.show(services.pageInfo, services.nodes.length);
      })
      .catch((e) => failed(body, e));
  };
  refresh();
  return { el, refresh };
}

// ---------------------------------------------------------------------------------------------
// Federated services

export function federatedPage(ctx: Ctx): View {
  const body = h("div", null, h("p", { class: "muted" }, "loading…"));
  const pager = new Pager(PAGE, () => refresh());
  const filters = filterBar(
    ctx,
    [
      { key: "cluster", label: "source cluster", kind: "cluster" },
      { key: "namespace", label: "namespace", kind: "text" },
    ],
    () => {
      pager.reset();
      refresh();
    },
  );
  const el = section("Federated services", filters.el, body, pager.el);
  const fresh = changes();
  const refresh = () => {
    gql<{
      federatedServices: {
        pageInfo: { hasNextPage: boolean; endCursor: string | null };
        nodes: { id: string; sourceCluster: string; namespace: string; service: string; localName: string; state: string; message: string; lastTransition: string; members: { cluster: string; isLocal: boolean; state: string; message: string }[]; conflicts: string[] }[];
      };
    }>(
      `query($cluster: String, $namespace: String, $first: Int, $after: String) {
        federatedServices(cluster: $cluster, namespace: $namespace, first: $first, after: $after) { pageInfo { hasNextPage endCursor }
          nodes { id sourceCluster namespace service localName state message lastTransition
            members { cluster isLocal state message } conflicts } } }`,
      { cluster: filters.value("cluster"), namespace: filters.value("namespace"), first: PAGE, after: pager.after },
    )
      .then(({ federatedServices: fs }) => {
        if (!fresh(fs)) return;
        mount(
          body,
          table(
            ["federated service", "in cluster", "namespace", "state", "members", "since", "conflicts"],
            fs.nodes.map((f) => [
              h("code", null, f.localName),
              f.sourceCluster,
              f.namespace,
              badge(norm(f.state), norm(f.state) === "FEDERATED" ? "ok" : "bad"),
              h("span", null, f.members.map((m) => h("span", { class: "chip", title: m.message }, `${m.cluster}${m.isLocal ? " (local)" : ""} `, badge(norm(m.state), norm(m.state) === "MEMBER" ? "ok" : "warn")))),
              when(f.lastTransition),
              f.conflicts.join("; "),
            ]),
            { class: "federated" },
          ),
        );
        pager.show(fs.pageInfo, fs.nodes.length);
      })
      .catch((e) => failed(body, e));
  };
  refresh();
  return { el, refresh };
}

// ---------------------------------------------------------------------------------------------
// Kubernetes Multi-Cluster Services: ServiceExports (KEP-1645 conditions) and ServiceImports

const MCS_EXPORT_STATES = ["EXPORTED", "CONFLICT", "PENDING", "INVALID"];
const MCS_IMPORT_STATES = ["IMPORTED", "CONFLICT", "ERROR"];

interface McsCondition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

function mcsStateBadge(state: string): HTMLElement {
  const st = norm(state);
  const tone = st === "EXPORTED" || st === "IMPORTED" ? "ok" : st === "PENDING" ? "warn" : "bad";
  return badge(st, tone);
}

/** A condition as a chip: green when as wished (Valid/Ready true, Conflict false). */
function conditionChip(c: McsCondition): HTMLElement {
  const holds = norm(c.status) === "TRUE";
  const good = norm(c.type) === "CONFLICT" ? !holds : holds;
  return h(
    "span",
    { class: "chip condition", title: `${c.reason}${c.message ? `: ${c.message}` : ""}` },
    `${norm(c.type).toLowerCase()} `,
    badge(holds ? "True" : "False", good ? "ok" : "bad"),
  );
}

export function mcsPage(ctx: Ctx): View {
  const exportsBody = h("div", { id: "mcs-exports" }, h("p", { class: "muted" }, "loading…"));
  const importsBody = h("div", { id: "mcs-imports" }, h("p", { class: "muted" }, "loading…"));
  const exportsPager = new Pager(PAGE, () => refresh());
  const importsPager = new Pager(PAGE, () => refresh());
  const filters = filterBar(
    ctx,
    [
      { key: "cluster", label: "cluster", kind: "cluster" },
      { key: "namespace", label: "namespace", kind: "text" },
      { key: "exportState", label: "export state", kind: "state", states: MCS_EXPORT_STATES },
      { key: "importState", label: "import state", kind: "state", states: MCS_IMPORT_STATES },
    ],
    () => {
      exportsPager.reset();
      importsPager.reset();
      refresh();
    },
  );
  const el = h(
    "div",
    null,
    section("Multi-Cluster Services: ServiceExports", filters.el, exportsBody, exportsPager.el),
    section("Multi-Cluster Services: ServiceImports", importsBody, importsPager.el),
  );
  const fresh = changes();
  const refresh = () => {
    gql<{
      mcsExports: {
        pageInfo: { hasNextPage: boolean; endCursor: string | null };
        nodes: { id: string; cluster: string; namespace: string; service: string; state: string; conflict: boolean; links: string[]; importedBy: string[]; lastTransition: string; conditions: McsCondition[] }[];
      };
      mcsImports: {
        pageInfo: { hasNextPage: boolean; endCursor: string | null };
        nodes: { id: string; cluster: string; namespace: string; service: string; type: string; ports: { name: string | null; protocol: string; port: number }[]; sourceClusters: string[]; endpointSlices: number; readyEndpoints: number; state: string; message: string; lastTransition: string }[];
      };
    }>(
      `query($cluster: String, $namespace: String, $exportState: McsExportState, $importState: McsImportState, $first: Int, $afterExport: String, $afterImport: String) {
        mcsExports(cluster: $cluster, namespace: $namespace, state: $exportState, first: $first, after: $afterExport) {
          pageInfo { hasNextPage endCursor }
          nodes { id cluster namespace service state conflict links importedBy lastTransition conditions { type status reason message } } }
        mcsImports(cluster: $cluster, namespace: $namespace, state: $importState, first: $first, after: $afterImport) {
          pageInfo { hasNextPage endCursor }
          nodes { id cluster namespace service type ports { name protocol port } sourceClusters endpointSlices readyEndpoints state message lastTransition } } }`,
      {
        cluster: filters.value("cluster"),
        namespace: filters.value("namespace"),
        exportState: filters.value("exportState"),
        importState: filters.value("importState"),
        first: PAGE,
        afterExport: exportsPager.after,
        afterImport: importsPager.after,
      },
    )
      .then((r) => {
        if (!fresh(r)) return;
        const { mcsExports: ex, mcsImports: im } = r;
        mount(
          exportsBody,
          table(
            ["service", "exported by", "namespace", "state", "conditions", "imported by", "links", "since", "why"],
            ex.nodes.map((e) => [
              h("code", null, e.service),
              e.cluster,
              e.namespace,
              mcsStateBadge(e.state),
              h("span", null, e.conditions.map(conditionChip)),
              e.importedBy.join(", "),
              e.links.join(", "),
              when(e.lastTransition),
              h(
                "span",
                { class: "message" },
                e.conditions
                  .filter((c) => (norm(c.status) === "TRUE") === (norm(c.type) === "CONFLICT"))
                  .map((c) => `${c.reason}: ${c.message}`)
                  .join("; "),
              ),
            ]),
            { class: "mcs-exports" },
          ),
        );
        mount(
          importsBody,
          table(
            ["service", "in cluster", "namespace", "type", "ports", "from clusters", "endpoint slices", "state", "since", "message"],
            im.nodes.map((i) => [
              h("code", null, i.service),
              i.cluster,
              i.namespace,
              norm(i.type) === "CLUSTERSETIP" ? "ClusterSetIP" : "Headless",
              i.ports.map((p) => `${p.name ? `${p.name}:` : ""}${p.port}/${p.protocol}`).join(", "),
              i.sourceClusters.join(", "),
              `${i.endpointSlices} (${i.readyEndpoints} ready)`,
              mcsStateBadge(i.state),
              when(i.lastTransition),
              h("span", { class: "message" }, i.message),
            ]),
            { class: "mcs-imports" },
          ),
        );
        exportsPager.show(ex.pageInfo, ex.nodes.length);
        importsPager.show(im.pageInfo, im.nodes.length);
      })
      .catch((e) => {
        failed(exportsBody, e);
        failed(importsBody, e);
      });
  };
  refresh();
  return { el, refresh };
}

// ---------------------------------------------------------------------------------------------
// Blast radius

/** Rows of the mirror list drawn at most (the counts cover all of them). */
const BLAST_ROWS = 200;

export function blastPage(ctx: Ctx): View {
  const select = h("select", { name: "cluster", id: "blast-cluster" }, h("option", { value: "" }, "pick a cluster…"));
  const gwOnly = h("input", { type: "checkbox", name: "gatewayOnly" });
  if (ctx.params.get("gatewayOnly") === "true") gwOnly.checked = true;
  const picture = h("div", { class: "picture small" });
  const body = h("div", { id: "blast-result" });
  const el = h(
    "div",
    null,
    section(
      "Blast radius",
      h("p", { class: "muted" }, "Pick a cluster: which services in which clusters lose every endpoint if it fails (or only its gateway)."),
      h("form", { class: "filters", onsubmit: (e: Event) => e.preventDefault() }, h("label", null, "cluster", select), h("label", { class: "check" }, gwOnly, "only its gateway fails")),
      h("div", { class: "split halves" }, picture, body),
    ),
  );
  const want = ctx.params.get("cluster") ?? "";
  let topo: Topo | null = null;
  fetchTopology()
    .then((t) => {
      topo = t;
      for (const n of t.nodes) select.appendChild(h("option", { value: n.name }, n.name));
      select.value = want;
      run();
    })
    .catch((e) => failed(body, e));
  const run = () => {
    const cluster = select.value;
    const u = new URLSearchParams();
    if (cluster) u.set("cluster", cluster);
    if (gwOnly.checked) u.set("gatewayOnly", "true");
    history.replaceState(null, "", `${location.pathname}#/blast${u.toString() ? `?${u}` : ""}`);
    if (!cluster) {
      if (topo) mount(picture, renderTopology(topo, (p) => p.kind === "cluster" && ((select.value = p.name), run())));
      return mount(body, h("p", { class: "muted" }, "No cluster picked."));
    }
    mount(body, h("p", { class: "muted" }, "computing…"));
    gql<{ blastRadius: { cluster: string; gatewayOnly: boolean; affectedClusters: string[]; mirrors: { sourceCluster: string; namespace: string; localName: string; remoteName: string; mode: string }[]; federatedServices: { sourceCluster: string; namespace: string; localName: string }[] } }>(
      `query($cluster: String!, $gatewayOnly: Boolean!) { blastRadius(cluster: $cluster, gatewayOnly: $gatewayOnly) {
        cluster gatewayOnly affectedClusters mirrors { sourceCluster namespace localName remoteName mode }
        federatedServices { sourceCluster namespace localName } } }`,
      { cluster, gatewayOnly: gwOnly.checked },
    )
      .then(({ blastRadius: b }) => {
        if (topo)
          mount(picture, renderTopology(topo, (p) => p.kind === "cluster" && ((select.value = p.name), run()), null, { down: b.cluster, affected: new Set(b.affectedClusters) }));
        const per = new Map<string, number>();
        for (const m of b.mirrors) per.set(m.sourceCluster, (per.get(m.sourceCluster) ?? 0) + 1);
        mount(
          body,
          h("p", { class: "verdict" },
            `If ${b.cluster}${b.gatewayOnly ? "'s gateway" : ""} fails: `,
            h("b", null, String(b.mirrors.length)), " mirrors in ",
            h("b", null, String(b.affectedClusters.length)), " clusters lose every endpoint; ",
            h("b", null, String(b.federatedServices.length)), " federated services lose every member.",
          ),
          table(["consumer cluster", "mirrors that break"], [...per.entries()].sort((a, c) => c[1] - a[1]).map(([k, v]) => [link(`#/mirrors${q({ cluster: k, target: b.cluster })}`, k), String(v)])),
          b.federatedServices.length
            ? table(["stranded federated service", "in cluster", "namespace"], b.federatedServices.map((f) => [f.localName, f.sourceCluster, f.namespace]))
            : null,
          table(
            ["mirror", "held by", "namespace", "mode"],
            b.mirrors.slice(0, BLAST_ROWS).map((m) => [h("code", null, m.localName), m.sourceCluster, m.namespace, m.mode]),
          ),
          b.mirrors.length > BLAST_ROWS ? h("p", { class: "muted" }, `first ${BLAST_ROWS} of ${b.mirrors.length} shown; the Mirrors page lists them all, paged.`) : null,
        );
      })
      .catch((e) => failed(body, e));
  };
  select.addEventListener("change", run);
  gwOnly.addEventListener("change", run);
  return { el };
}

