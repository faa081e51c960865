// Git sources: sync status, revisions, the history as a timeline, drift with a field-level diff,
// and for operators Sync now / Pin to a revision / Unpin / Suspend / Resume. A viewer's page has
// no mutating control at all; a control whose mutation this server's schema lacks is not drawn.

import { atLeast, gql } from "./api";
import { badge, h, mount, norm, rev, table, when } from "./dom";
import { type Ctx, type View, changes, failed, section } from "./view";

interface Attempt {
  id: number;
  revision: string;
  author: string;
  message: string;
  trigger: string;
  result: string;
  startedAt: string;
  durationMs: number;
  counts: { kind: string; created: number; updated: number; deleted: number }[];
  errors: string[];
}

interface Source {
  name: string;
  url: string;
  gitRef: string;
  path: string;
  pollInterval: string;
  selfHeal: boolean;
  pinnedRevision: string | null;
  suspended?: boolean;
  status: string;
  drifted: boolean;
  lastAppliedRevision: string | null;
  lastAttemptedRevision: string | null;
  lastError: string | null;
  lastSyncedAt: string | null;
  drift: { kind: string; name: string; change: string; detectedAt: string; fields?: { path: string; desired: string; actual: string }[] }[];
  history: Attempt[];
}

function statusTone(s: string): string {
  switch (norm(s)) {
    case "SYNCED":
      return "ok";
    case "OUTOFSYNC":
    case "PRUNEHELD":
      return "warn";
    case "FAILED":
      return "bad";
    default:
      return "unknown";
  }
}

function resultTone(r: string): string {
  switch (norm(r)) {
    case "APPLIED":
      return "ok";
    case "UNCHANGED":
      return "info";
    case "REJECTED":
    case "FAILED":
      return "bad";
    default:
      return "warn";
  }
}

export function gitPage(ctx: Ctx): View {
  const { role, caps } = ctx.session;
  const operator = atLeast(role, "OPERATOR");
  const has = (m: string) => caps.mutations.has(m);
  const body = h("div", { id: "git-sources" }, h("p", { class: "muted" }, "loading…"));
  const el = h("div", null, body);
  let busy = false;

  const mutate = async (label: string, doc: string, vars: Record<string, unknown>) => {
    if (busy) return;
    busy = true;
    ctx.notify(`${label}…`, "info");
    try {
      const data = await gql<Record<string, { result?: string; message?: string; name?: string }>>(doc, vars);
      const r = Object.values(data)[0];
      ctx.notify(`${label}: ${r?.result ? `${r.result}${r.message ? ` — ${r.message}` : ""}` : "done"}`, "ok");
    } catch (e) {
      ctx.notify(`${label} failed: ${(e as Error).message}`, "bad");
    } finally {
      busy = false;
      refresh();
    }
  };

  const controls = (src: Source): HTMLElement | null => {
    if (!operator) return null;
    const revInput = h("input", { type: "text", class: "revision", name: "revision", placeholder: "commit id", value: "", size: 14, "aria-label": `revision to pin ${src.name} to` });
    const b = (cls: string, text: string, f: () => void) => h("button", { type: "button", class: `control ${cls}`, "data-source": src.name, onclick: f }, text);
    const missing: string[] = [];
    const out = h("div", { class: "controls" });
    out.appendChild(b("sync-now", "Sync now", () => mutate(`Sync ${src.name}`, "mutation($s: String!) { syncNow(source: $s) { result message revision } }", { s: src.name })));
    if (has("pinGitSource")) {
      out.appendChild(
        h("form", { class: "pin", onsubmit: (e: Event) => {
          e.preventDefault();
          const r = revInput.value.trim();
          if (r) void pin(src.name, r);
        } }, revInput, h("button", { type: "submit", class: "control pin-submit", "data-source": src.name }, "Pin to revision")),
      );
    } else missing.push("pinGitSource");
    if (src.pinnedRevision) {
      if (has("unpinGitSource"))
        out.appendChild(b("unpin", "Unpin", () => mutate(`Unpin ${src.name}`, "mutation($s: String!) { unpinGitSource(source: $s) { name } }", { s: src.name })));
      else missing.push("unpinGitSource");
    }
    if (src.suspended) {
      if (has("resumeGitSource"))
        out.appendChild(b("resume", "Resume", () => mutate(`Resume ${src.name}`, "mutation($s: String!) { resumeGitSource(source: $s) { name } }", { s: src.name })));
      else missing.push("resumeGitSource");
    } else if (has("suspendGitSource")) {
      out.appendChild(b("suspend", "Suspend", () => mutate(`Suspend ${src.name}`, "mutation($s: String!) { suspendGitSource(source: $s) { name } }", { s: src.name })));
    } else missing.push("suspendGitSource");
    if (missing.length)
      out.appendChild(h("p", { class: "muted small" }, `This server's API has no ${missing.join(", ")}: those controls are hidden.`));
    return out;
  };

  const pin = (source: string, revision: string) =>
    mutate(`Pin ${source} to ${rev(revision)}`, "mutation($s: String!, $r: String!) { pinGitSource(source: $s, revision: $r) { name pinnedRevision } }", { s: source, r: revision });

  const timeline = (src: Source): HTMLElement =>
    h(
      "ol",
      { class: "timeline" },
      src.history.map((a) =>
        h(
          "li",
          { class: `attempt ${resultTone(a.result)}`, "data-revision": a.revision },
          h("span", { class: "dot" }),
          h(
            "div",
            null,
            h("div", null, badge(a.result, resultTone(a.result)), " ", h("code", { title: a.revision }, rev(a.revision)), " ", h("span", { class: "muted" }, `${a.trigger} · `), when(a.startedAt), h("span", { class: "muted" }, ` · ${a.durationMs} ms`)),
            h("div", { class: "commit" }, a.message.split("\n")[0], h("span", { class: "muted" }, a.author ? ` — ${a.author}` : "")),
            a.counts.length
              ? h("div", { class: "muted small" }, a.counts.map((c) => `${c.kind} +${c.created} ~${c.updated} −${c.deleted}`).join(" · "))
              : null,
            a.errors.length ? h("pre", { class: "errors" }, a.errors.join("\n")) : null,
            operator && has("pinGitSource") && a.revision && a.revision !== src.pinnedRevision
              ? h("button", { type: "button", class: "control pin-here link-button", "data-source": src.name, "data-revision": a.revision, onclick: () => void pin(src.name, a.revision) }, "Pin / roll back to this revision")
              : null,
          ),
        ),
      ),
    );

  const drift = (src: Source): HTMLElement | null => {
    if (!src.drift.length) return null;
    return h(
      "div",
      { class: "drift" },
      h("h3", null, "Drift (changed outside Git)"),
      src.drift.map((d) =>
        h(
          "div",
          { class: "drift-item" },
          h("div", null, badge(d.change, "warn"), " ", `${d.kind} `, h("code", null, d.name), " ", when(d.detectedAt)),
          d.fields
            ? table(["field", "in Git", "in the database"], d.fields.map((f) => [h("code", null, f.path), h("code", { class: "desired" }, f.desired), h("code", { class: "actual" }, f.actual)]), { class: "diff" })
            : h("p", { class: "muted small" }, "Field values need the operator role."),
        ),
      ),
    );
  };

  const fresh = changes();
  const refresh = () => {
    const suspended = caps.gitSourceFields.has("suspended") ? "suspended" : "";
    const fields = operator ? "fields { path desired actual }" : "";
    gql<{ gitSources: { nodes: Source[] } }>(
      `{ gitSources(first: 50) { nodes { name url gitRef path pollInterval selfHeal pinnedRevision ${suspended}
        status drifted lastAppliedRevision lastAttemptedRevision lastError lastSyncedAt
        drift { kind name change detectedAt ${fields} }
        history(limit: 20) { id revision author message trigger result startedAt durationMs
          counts { kind created updated deleted } errors } } } }`,
    )
      .then(({ gitSources }) => {
        // Never redraw under an operator typing a revision (the next refresh will).
        const typing = body.querySelector<HTMLInputElement>("input.revision:focus");
        if (typing && typing.value) return;
        if (!fresh(gitSources)) return;
        if (!gitSources.nodes.length) return mount(body, section("Git sources", h("p", { class: "muted" }, "No Git source is configured.")));
        mount(
          body,
          gitSources.nodes.map((src) =>
            h(
              "section",
              { class: "card git-source", "data-source": src.name },
              h("h2", null, "Git source ", h("code", null, src.name), " ", badge(norm(src.status), statusTone(src.status)), src.suspended ? badge("SUSPENDED", "paused") : null, src.pinnedRevision ? badge(`pinned ${rev(src.pinnedRevision)}`, "info") : null),
              h("dl", null,
                h("dt", null, "repository"), h("dd", null, h("code", null, src.url), " ", h("code", null, src.gitRef), src.path && src.path !== "." ? [" ", h("code", null, src.path)] : null),
                h("dt", null, "applied"), h("dd", { class: "applied" }, h("code", { title: src.lastAppliedRevision ?? "" }, rev(src.lastAppliedRevision)), " ", when(src.lastSyncedAt)),
                h("dt", null, "last tried"), h("dd", null, h("code", null, rev(src.lastAttemptedRevision))),
                h("dt", null, "pinned to"), h("dd", { class: "pinned" }, src.pinnedRevision ? h("code", { title: src.pinnedRevision }, rev(src.pinnedRevision)) : "not pinned (follows the ref)"),
                h("dt", null, "poll / self-heal"), h("dd", null, `${src.pollInterval} / ${src.selfHeal ? "on" : "off"}`),
                src.lastError ? [h("dt", null, "last error"), h("dd", null, h("pre", { class: "errors" }, src.lastError))] : null,
              ),
              controls(src),
              drift(src),
              h("h3", null, "History"),
              timeline(src),
            ),
          ),
        );
      })
      .catch((e) => failed(body, e));
  };
  refresh();
  return { el, refresh };
}
