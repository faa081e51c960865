// linkplane's dashboard: sign-in, the app shell, a hash router (no token or data ever in a URL
// the server sees) and the live link that refreshes the current page on topology events.

import { type Session, onUnauthenticated, startSession, token } from "./api";
import { badge, h, mount } from "./dom";
import { gitPage } from "./git";
import { Live, type LiveStatus } from "./live";
import { blastPage, clustersPage, federatedPage, gatewaysPage, linksPage, mcsPage, mirrorsPage, servicesPage, topologyPage } from "./pages";
import type { Ctx, View } from "./view";

const PAGES: { path: string; title: string; make: (c: Ctx) => View }[] = [
  { path: "topology", title: "Topology", make: topologyPage },
  { path: "clusters", title: "Clusters", make: clustersPage },
  { path: "links", title: "Links", make: linksPage },
  { path: "gateways", title: "Gateways", make: gatewaysPage },
  { path: "services", title: "Services", make: servicesPage },
  { path: "mirrors", title: "Mirrors", make: mirrorsPage },
  { path: "federated", title: "Federated", make: federatedPage },
  { path: "mcs", title: "MCS", make: mcsPage },
  { path: "git", title: "Git sources", make: gitPage },
  { path: "blast", title: "Blast radius", make: blastPage },
];

/** Refresh at most this often on bursts of events. */
const EVENT_DEBOUNCE_MS = 400;
/** Safety net: health that no event announces (a reconciler losing its cluster) still shows. */
const POLL_MS = 5000;

const root = document.getElementById("app") as HTMLElement;
let session: Session | null = null;
let live: Live | null = null;
let view: View | null = null;
let pending = 0;
let poll = 0;
let lastEvent = "";

function signIn(message?: string, tone: "bad" | "info" = "bad"): void {
  live?.stop();
  live = null;
  session = null;
  view?.dispose?.();
  view = null;
  window.clearInterval(poll);
  const input = h("input", { type: "password", id: "token", name: "token", autocomplete: "off", spellcheck: "false", required: true, placeholder: "API token", "aria-label": "API token" });
  const msg = h("p", { id: "signin-message", class: message ? tone : "", role: "alert" }, message ?? "");
  const button = h("button", { type: "submit", id: "signin" }, "Sign in");
  const form = h(
    "form",
    {
      class: "signin card",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const t = input.value.trim();
        if (!t) return;
        button.setAttribute("disabled", "");
        mount(msg, "checking the token…");
        msg.className = "info";
        token.set(t);
        try {
          session = await startSession();
          start();
        } catch (err) {
          token.clear();
          const m = (err as Error).message;
          if (!msg.isConnected) return; // the 401 handler already redrew the form
          msg.className = "bad";
          mount(msg, m);
          button.removeAttribute("disabled");
        }
      },
    },
    h("h1", null, "linkplane"),
    h("p", { class: "muted" }, "Sign in with an API token (", h("code", null, "linkplane token create --role viewer"), "). It is kept for this tab only and sent as a bearer header, never in a URL."),
    input,
    button,
    msg,
  );
  mount(root, h("main", { class: "signin-page" }, form));
  input.focus();
}

function signOut(): void {
  token.clear();
  signIn("Signed out.", "info");
}

const liveDot = h("span", { class: "live connecting", id: "live", title: "live updates" }, "connecting");
const banner = h("div", { class: "banner", id: "banner", role: "status" });
const content = h("main", { id: "content" });

function notify(msg: string, tone: "ok" | "bad" | "info" = "info"): void {
  mount(banner, h("p", { class: tone }, msg, h("button", { type: "button", class: "close", "aria-label": "dismiss", onclick: () => mount(banner) }, "×")));
}

function setLive(s: LiveStatus, detail?: string): void {
  liveDot.className = `live ${s}`;
  liveDot.textContent = s === "live" ? "live" : s === "refused" ? "refused" : s === "offline" ? "offline" : "connecting";
  liveDot.title = detail ? `live updates: ${s} (${detail})` : `live updates: ${s}`;
  liveDot.dataset.status = s;
  if (s === "live") schedule();
}

function schedule(): void {
  if (pending) return;
  pending = window.setTimeout(() => {
    pending = 0;
    view?.refresh?.();
  }, EVENT_DEBOUNCE_MS);
}

function start(): void {
  if (!session) return;
  const nav = h(
    "nav",
    { class: "tabs" },
    PAGES.map((p) => h("a", { href: `#/${p.path}`, "data-page": p.path }, p.title)),
  );
  const header = h(
    "header",
    null,
    h("a", { class: "brand", href: "#/topology" }, "linkplane"),
    nav,
    h("span", { class: "spacer" }),
    liveDot,
    h("span", { class: "last-event muted", id: "last-event" }),
    badge(session.role.toLowerCase(), "role"),
    h("button", { type: "button", id: "signout", onclick: signOut }, "Sign out"),
  );
  header.querySelector(".badge.role")?.setAttribute("id", "role");
  mount(root, header, banner, content);
  live = new Live((e) => {
    lastEvent = `${e.kind.toLowerCase()} ${e.link ?? e.cluster ?? e.source ?? ""} ${e.state ?? e.result ?? (e.alive === null ? "" : e.alive ? "alive" : "dead")}`.trim();
    const le = document.getElementById("last-event");
    if (le) le.textContent = `last event: ${lastEvent}`;
    view?.onEvent?.(e);
    schedule();
  }, setLive);
  live.start();
  window.clearInterval(poll);
  poll = window.setInterval(() => {
    if (document.visibilityState === "visible") view?.refresh?.();
  }, POLL_MS);
  route();
}

function route(): void {
  if (!session) return;
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, query] = hash.split("?");
  const parts = (path ?? "").split("/").filter(Boolean).map(decodeURIComponent);
  const page = PAGES.find((p) => p.path === parts[0]) ?? PAGES[0];
  view?.dispose?.();
  mount(banner);
  const ctx: Ctx = { session, rest: parts.slice(1), params: new URLSearchParams(query ?? ""), notify };
  view = page.make(ctx);
  for (const a of document.querySelectorAll<HTMLAnchorElement>("nav.tabs a")) {
    if (a.dataset.page === page.path) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${page.title} · linkplane`;
  mount(content, view.el);
  content.dataset.page = page.path;
}

onUnauthenticated((why) => {
  token.clear();
  signIn(why);
});

window.addEventListener("hashchange", route);

async function boot(): Promise<void> {
  if (!token.get()) return signIn();
  try {
    session = await startSession();
    start();
  } catch (e) {
    if (session === null && document.getElementById("signin-message")) return;
    token.clear();
    signIn((e as Error).message);
  }
}

void boot();
