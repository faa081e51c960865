// The fleet as an SVG picture: clusters on a circle, links as curved arrows from the link's
// source (the consumer, which receives mirrors) to its target (the exporter). One `topology`
// request draws it whole: at 50 clusters and 100 links that is 150 shapes, cheap to redraw on
// every live event.

import { gql } from "./api";
import { h, norm, s } from "./dom";

export interface Counts {
  total: number;
  mirrored: number;
  conflict: number;
  error: number;
}

export interface TNode {
  name: string;
  health: string;
  gatewayAlive: boolean | null;
  gatewayLatencyMs: number | null;
  reconciler: { state: string; message: string } | null;
  mirrorCounts: Counts;
}

export interface TEdge {
  name: string;
  sourceName: string;
  targetName: string;
  paused: boolean;
  gateway: { alive: boolean; latencyMs: number | null; consecutiveFailures: number; lastError: string | null } | null;
  mirrorCounts: Counts;
}

export interface Topo {
  nodes: TNode[];
  edges: TEdge[];
}

const QUERY = `query Topology { topology {
  nodes { name health gatewayAlive gatewayLatencyMs reconciler { state message }
          mirrorCounts { total mirrored conflict error } }
  edges { name sourceName targetName paused
          gateway { alive latencyMs consecutiveFailures lastError }
          mirrorCounts { total mirrored conflict error } } } }`;

export async function fetchTopology(): Promise<Topo> {
  return (await gql<{ topology: Topo }>(QUERY)).topology;
}

/** ok / warn / bad / unknown for a cluster. */
export function nodeTone(n: TNode): string {
  switch (norm(n.health)) {
    case "HEALTHY":
      return "ok";
    case "DEGRADED":
      return "warn";
    case "DOWN":
      return "bad";
    default:
      return "unknown";
  }
}

/** ok / warn / bad / paused / unknown for a link: a dead gateway is red, mirrors in Error or
 * Conflict amber, a slow gateway (≥ 250 ms) amber. */
export function edgeTone(e: TEdge): string {
  if (e.paused) return "paused";
  if (e.gateway && !e.gateway.alive) return "bad";
  if (e.mirrorCounts.error + e.mirrorCounts.conflict > 0) return "warn";
  if (e.gateway && (e.gateway.latencyMs ?? 0) >= 250) return "warn";
  if (!e.gateway) return "unknown";
  return "ok";
}

export interface Highlight {
  /** Cluster drawn as failed. */
  down?: string;
  /** Clusters drawn as affected. */
  affected?: Set<string>;
}

export interface Pick {
  kind: "cluster" | "link";
  name: string;
}

/** What a cluster's shape shows: it changes with health, the shape itself does not. */
function nodeLook(node: TNode, sel: boolean, hl?: Highlight) {
  let tone = nodeTone(node);
  if (hl?.down === node.name) tone = "bad";
  else if (hl?.affected?.has(node.name)) tone = "warn";
  else if (hl) tone = "unknown";
  const mc = node.mirrorCounts;
  const title = `${node.name}: ${norm(node.health)}` +
    (node.reconciler ? `\nreconciler ${node.reconciler.state}${node.reconciler.message ? `: ${node.reconciler.message}` : ""}` : "") +
    `\ngateway ${node.gatewayAlive === null ? "not probed" : node.gatewayAlive ? "alive" : "DEAD"}` +
    `\nholds ${mc.total} mirrors (error ${mc.error}, conflict ${mc.conflict})`;
  return { tone, cls: `node ${tone}${sel ? " selected" : ""}`, title, alert: mc.error + mc.conflict > 0 };
}

/** What a link's shape shows. */
function edgeLook(e: TEdge, sel: boolean) {
  const tone = edgeTone(e);
  const lat = e.gateway?.latencyMs;
  const title = `${e.name}: ${e.sourceName} → ${e.targetName}` +
    (e.paused ? " (paused)" : "") +
    (e.gateway ? `\ngateway ${e.gateway.alive ? "alive" : "DEAD"}${lat != null ? `, ${Math.round(lat)} ms` : ""}` : "\ngateway not probed yet") +
    `\nmirrors ${e.mirrorCounts.total} (error ${e.mirrorCounts.error}, conflict ${e.mirrorCounts.conflict})`;
  return { tone, cls: `edge ${tone}${sel ? " selected" : ""}`, title, latency: lat != null ? `${Math.round(lat)} ms` : "" };
}

function structure(t: Topo): string {
  return JSON.stringify([t.nodes.map((n) => n.name), t.edges.map((e) => [e.name, e.sourceName, e.targetName])]);
}

const isSel = (p: Pick | null | undefined, kind: Pick["kind"], name: string) => p?.kind === kind && p.name === name;

/** Draws the picture; `onPick` receives clicks on clusters and links. */
export function renderTopology(
  t: Topo,
  onPick: (p: Pick) => void,
  selected?: Pick | null,
  hl?: Highlight,
): SVGElement {
  const n = t.nodes.length;
  // Nodes about 50 units apart on the circle: 50 clusters stay legible at a laptop width.
  const R = Math.max(150, n * 8);
  const pad = 90;
  const size = 2 * (R + pad);
  const c = size / 2;
  const pos = new Map<string, { x: number; y: number }>();
  t.nodes.forEach((node, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(1, n);
    pos.set(node.name, { x: c + R * Math.cos(a), y: c + R * Math.sin(a) });
  });
  const nodeR = n > 30 ? 12 : 22;
  const tones = ["ok", "warn", "bad", "paused", "unknown"];
  const defs = s(
    "defs",
    null,
    tones.map((tone) =>
      s(
        "marker",
        { id: `arrow-${tone}`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
        s("path", { d: "M0,0 L10,5 L0,10 z", class: `arrowhead ${tone}` }),
      ),
    ),
  );
  const edges = t.edges.map((e) => {
    const a = pos.get(e.sourceName);
    const b = pos.get(e.targetName);
    if (!a || !b) return null;
    const dx = b.x - a.x;
    const dy = b.y - a.y;
    const len = Math.hypot(dx, dy) || 1;
    const ux = dx / len;
    const uy = dy / len;
    // Bend to the right of the direction of travel, so a → b and b → a are two arcs.
    const bend = Math.min(40, len / 6);
    const mx = (a.x + b.x) / 2 - uy * bend;
    const my = (a.y + b.y) / 2 + ux * bend;
    const sx = a.x + ux * nodeR;
    const sy = a.y + uy * nodeR;
    const ex = b.x - ux * (nodeR + 3);
    const ey = b.y - uy * (nodeR + 3);
    const look = edgeLook(e, isSel(selected, "link", e.name));
    const d = `M${sx},${sy} Q${mx},${my} ${ex},${ey}`;
    const g = s(
      "g",
      { class: look.cls, "data-link": e.name, "data-tone": look.tone, tabindex: 0, role: "button", "aria-label": look.title },
      s("title", null, look.title),
      s("path", { class: "hit", d }),
      s("path", { class: "line", d, "marker-end": `url(#arrow-${look.tone})` }),
      // Latency labels only while they fit (a dozen clusters).
      n <= 12 ? s("text", { class: "latency", x: (sx + 2 * mx + ex) / 4, y: (sy + 2 * my + ey) / 4 - 4 }, look.latency) : null,
    );
    g.addEventListener("click", () => onPick({ kind: "link", name: e.name }));
    g.addEventListener("keydown", (ev) => {
      if ((ev as KeyboardEvent).key === "Enter") onPick({ kind: "link", name: e.name });
    });
    return g;
  });
  const nodes = t.nodes.map((node) => {
    const p = pos.get(node.name);
    if (!p) return null;
    const look = nodeLook(node, isSel(selected, "cluster", node.name), hl);
    // Label outside the circle, away from the centre.
    const lx = p.x + ((p.x - c) / R) * (nodeR + 14);
    const ly = p.y + ((p.y - c) / R) * (nodeR + 14) + 4;
    const anchor = Math.abs(p.x - c) < R * 0.2 ? "middle" : p.x > c ? "start" : "end";
    const alert = s("circle", { class: "alert", cx: p.x + nodeR * 0.75, cy: p.y - nodeR * 0.75, r: 5 });
    if (!look.alert) alert.setAttribute("visibility", "hidden");
    const g = s(
      "g",
      { class: look.cls, "data-cluster": node.name, "data-health": norm(node.health), "data-tone": look.tone, tabindex: 0, role: "button", "aria-label": look.title },
      s("title", null, look.title),
      s("circle", { class: "body", cx: p.x, cy: p.y, r: nodeR }),
      alert,
      s("text", { x: lx, y: ly, "text-anchor": anchor }, node.name),
    );
    g.addEventListener("click", () => onPick({ kind: "cluster", name: node.name }));
    g.addEventListener("keydown", (ev) => {
      if ((ev as KeyboardEvent).key === "Enter") onPick({ kind: "cluster", name: node.name });
    });
    return g;
  });
  return s(
    "svg",
    { class: "topology", viewBox: `0 0 ${size} ${size}`, role: "img", "aria-label": `fleet topology: ${n} clusters, ${t.edges.length} links`, "data-structure": structure(t) },
    defs,
    s("g", { class: "edges" }, edges),
    s("g", { class: "nodes" }, nodes),
  );
}

/** Updates a drawn picture in place (colours, titles, latencies, selection) when the fleet kept
 * its clusters and links; answers false when it did not (then draw it anew). Updating in place
 * keeps focus and hover, and a click in progress is never lost to a redraw. */
export function patchTopology(svg: Element | null, t: Topo, selected?: Pick | null, hl?: Highlight): boolean {
  if (!(svg instanceof SVGElement) || svg.getAttribute("data-structure") !== structure(t)) return false;
  for (const node of t.nodes) {
    const g = svg.querySelector(`g.node[data-cluster="${CSS.escape(node.name)}"]`);
    if (!g) return false;
    const look = nodeLook(node, isSel(selected, "cluster", node.name), hl);
    g.setAttribute("class", look.cls);
    g.setAttribute("data-tone", look.tone);
    g.setAttribute("data-health", norm(node.health));
    g.setAttribute("aria-label", look.title);
    const title = g.querySelector("title");
    if (title) title.textContent = look.title;
    g.querySelector("circle.alert")?.setAttribute("visibility", look.alert ? "visible" : "hidden");
  }
  for (const e of t.edges) {
    const g = svg.querySelector(`g.edge[data-link="${CSS.escape(e.name)}"]`);
    if (!g) return false;
    const look = edgeLook(e, isSel(selected, "link", e.name));
    g.setAttribute("class", look.cls);
    g.setAttribute("data-tone", look.tone);
    g.setAttribute("aria-label", look.title);
    const title = g.querySelector("title");
    if (title) title.textContent = look.title;
    g.querySelector("path.line")?.setAttribute("marker-end", `url(#arrow-${look.tone})`);
    const lat = g.querySelector("text.latency");
    if (lat) lat.textContent = look.latency;
  }
  return true;
}

export function legend(): HTMLElement {
  const item = (tone: string, text: string) => h("li", null, h("span", { class: `swatch ${tone}` }), text);
  return h(
    "ul",
    { class: "legend" },
    item("ok", "healthy / gateway alive"),
    item("warn", "degraded, slow gateway, mirrors in Error or Conflict"),
    item("bad", "down / gateway dead"),
    item("unknown", "no report yet"),
    item("paused", "link paused"),
    h("li", { class: "muted" }, "arrow: link source (consumer) → target (exporter)"),
  );
}
