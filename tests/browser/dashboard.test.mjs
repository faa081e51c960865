// The dashboard in a real browser (Debian's headless Chromium driven by playwright-core),
// against a running `linkplane dev` that tests/browser.rs started. Run by tests/browser.rs with:
//
//   LP_URL              http://127.0.0.1:<port> (the server)
//   LP_ADMIN_TOKEN, LP_OPERATOR_TOKEN, LP_VIEWER_TOKEN
//   LP_KUBESIM_ADMIN    kubesim's fault-injection endpoint (POST /clusters/<name>/stop|start)
//   LP_REPO, LP_WEBHOOK_URL, LP_WEBHOOK_SECRET   the GitOps repository and its webhook
//   LP_CHROMIUM         the browser binary (default /usr/bin/chromium)
//   LP_OUT              where screenshots go (target/browser)
//   LP_UPDATE_SCREENSHOT=1  also write docs/dashboard.png (the README's picture)
//
// The tests run in order in one browser against one fleet: later ones rely on earlier ones
// having left it healthy.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`${k} is not set (tests/browser.rs sets it)`);
  return v;
};
const URL_ = env("LP_URL");
const ORIGIN = new URL(URL_).origin;
const TOKENS = { admin: env("LP_ADMIN_TOKEN"), operator: env("LP_OPERATOR_TOKEN"), viewer: env("LP_VIEWER_TOKEN") };
const KUBESIM = env("LP_KUBESIM_ADMIN");
const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, "..", "..");
const OUT = env("LP_OUT", join(repoRoot, "target", "browser"));

// Flags for Debian's Chromium in a container: no sandbox (root), no GPU, nothing phoning home.
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

let browser;
let profile;
/** Every request any page made, to prove none left the origin. */
const requests = [];
/** CSP violations and page errors. */
const problems = [];

before(async () => {
  mkdirSync(OUT, { recursive: true });
  profile = mkdtempSync(join(tmpdir(), "linkplane-chromium."));
  // A persistent context is the only way to hand Chromium a fresh --user-data-dir of our own.
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: env("LP_CHROMIUM", "/usr/bin/chromium"),
    args: FLAGS,
    viewport: { width: 1440, height: 900 },
    timeout: 60_000,
  });
  browser.on("request", (r) => requests.push(r.url()));
  browser.on("page", watch);
});

after(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

function watch(page) {
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
}

/** A new tab with an empty sessionStorage (each tab has its own). */
async function tab() {
  const page = await browser.newPage();
  page.setDefaultTimeout(20_000);
  return page;
}

async function signIn(page, tokenValue) {
  await page.goto(URL_);
  await page.fill("#token", tokenValue);
  await page.click("#signin");
}

async function gql(query, variables = {}, tokenValue = TOKENS.admin) {
  const res = await fetch(`${URL_}/graphql`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${tokenValue}` },
    body: JSON.stringify({ query, variables }),
  });
  return res.json();
}

async function kubesim(cluster, action) {
  const res = await fetch(`${KUBESIM}/clusters/${cluster}/${action}`, { method: "POST" });
  assert.ok(res.ok, `kubesim ${cluster}/${action}: ${res.status}`);
}

const CLUSTERS = ["east", "north", "west"];

test("the pages are served without a token under a strict CSP; the data API still wants one", async () => {
  const res = await fetch(`${URL_}/`);
  assert.equal(res.status, 200);
  const csp = res.headers.get("content-security-policy") ?? "";
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  const html = await res.text();
  assert.doesNotMatch(html, /<script>|https?:\/\//, "no inline script, no other origin");
  const api = await fetch(`${URL_}/graphql`, { method: "POST", headers: { "Content-Type": "application/json" }, body: '{"query":"{ clusters { nodes { name } } }"}' });
  assert.equal(api.status, 401);
});

test("a refused token gets a clear 401 message and is not kept", async () => {
  const page = await tab();
  await signIn(page, "not-a-real-token-0123456789");
  await page.waitForSelector("#signin-message.bad");
  const msg = await page.textContent("#signin-message");
  assert.match(msg, /401/, msg);
  assert.match(msg, /refused|invalid/i, msg);
  assert.equal(await page.evaluate(() => sessionStorage.getItem("linkplane.token")), null);
  await page.close();
});

let adminPage;

test("signs in with a token kept in this tab only, never in a URL, and draws the dev clusters", async () => {
  const page = (adminPage = await tab());
  await signIn(page, TOKENS.admin);
  await page.waitForSelector("svg.topology");
  for (const c of CLUSTERS) await page.waitForSelector(`g.node[data-cluster="${c}"]`);
  assert.equal(await page.locator("g.node").count(), 3);
  // The dev repository links every cluster to every other: six directed links.
  assert.equal(await page.locator("g.edge").count(), 6);
  assert.equal((await page.textContent("#role")).trim(), "admin");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("linkplane.token")), TOKENS.admin);
  assert.ok(!page.url().includes(TOKENS.admin), page.url());
  for (const r of requests) assert.ok(!r.includes(TOKENS.admin), `token in a URL: ${r}`);
  // The subscription is up (graphql-transport-ws on /graphql/ws, allowed by connect-src 'self').
  await page.waitForSelector('#live[data-status="live"]');
  // Every cluster healthy before the fault test (the first gateway probes can take a moment).
  await page.waitForFunction(
    (names) => names.every((n) => document.querySelector(`g.node[data-cluster="${n}"]`)?.getAttribute("data-tone") === "ok"),
    CLUSTERS,
    { timeout: 90_000 },
  );
});

test("clicking a cluster and a link shows their detail; the README's screenshot", async () => {
  const page = adminPage;
  await page.click('g.node[data-cluster="east"]');
  await page.waitForSelector('#detail h2:has-text("east")');
  assert.match(await page.textContent("#detail"), /HEALTHY/);
  // A real click on the middle of the curve (a curve's bounding-box centre is off the line).
  const mid = await page.$eval('g.edge[data-link="west-from-east"] path.line', (p) => {
    const pt = p.getPointAtLength(p.getTotalLength() / 2);
    const m = p.getScreenCTM();
    return { x: m.a * pt.x + m.c * pt.y + m.e, y: m.b * pt.x + m.d * pt.y + m.f };
  });
  await page.mouse.click(mid.x, mid.y);
  await page.waitForSelector('#detail h2:has-text("west-from-east")');
  assert.match(await page.textContent("#detail"), /west → east/);
  await page.click('g.node[data-cluster="east"]');
  await page.waitForSelector('#detail h2:has-text("east")');
  const shot = join(OUT, "dashboard.png");
  await page.screenshot({ path: shot });
  if (process.env.LP_UPDATE_SCREENSHOT === "1") copyFileSync(shot, join(repoRoot, "docs", "dashboard.png"));
});

test("a stopped cluster turns red without a reload, and recovers", async () => {
  const page = adminPage;
  // A marker on window survives only if the page is never reloaded.
  await page.evaluate(() => {
    window.__noReload = true;
  });
  const navigations = [];
  page.on("framenavigated", (f) => f === page.mainFrame() && navigations.push(f.url()));
  await kubesim("north", "stop");
  try {
    await page.waitForSelector('g.node[data-cluster="north"][data-tone="bad"]', { timeout: 90_000 });
    const summary = await page.textContent(".summary");
    assert.match(summary, /1\s*down/, summary);
    // The subscription delivered the change (the header shows the last event it received).
    await page.waitForFunction(() => (document.getElementById("last-event")?.textContent ?? "").startsWith("last event:"));
  } finally {
    await kubesim("north", "start");
  }
  assert.equal(await page.evaluate(() => window.__noReload), true, "the page was reloaded");
  assert.deepEqual(navigations, []);
  await page.waitForSelector('g.node[data-cluster="north"][data-tone="ok"]', { timeout: 90_000 });
});

test("the list pages answer with paged tables and filters", async () => {
  const page = adminPage;
  await page.goto(`${URL_}/#/clusters`);
  await page.waitForSelector("table.clusters tbody tr >> text=east");
  await page.goto(`${URL_}/#/links`);
  await page.waitForSelector("table.links >> text=west-from-east");
  await page.goto(`${URL_}/#/gateways`);
  await page.waitForSelector("table.gateways >> text=alive");
  await page.goto(`${URL_}/#/mirrors?cluster=west`);
  await page.waitForSelector("table.mirrors >> text=web-east");
  const holders = await page.$$eval("table.mirrors tbody tr td:nth-child(2)", (tds) => tds.map((t) => t.textContent));
  assert.ok(holders.length > 0 && holders.every((h) => h === "west"), holders.join(","));
  assert.ok(await page.isVisible(".pager .next"));
  await page.goto(`${URL_}/#/federated`);
  await page.waitForSelector("table.federated >> text=checkout-federated");
  await page.goto(`${URL_}/#/services?cluster=east`);
  await page.waitForSelector("text=web");
  await page.goto(`${URL_}/#/blast?cluster=east`);
  await page.waitForSelector("#blast-result .verdict");
  assert.match(await page.textContent("#blast-result .verdict"), /If east fails: \d+ mirrors in \d+ clusters/);
  await page.waitForSelector('#content g.node[data-cluster="east"][data-tone="bad"]');
});

test("the MCS page shows east's ServiceExport with its KEP-1645 conditions and the consumers' ServiceImports", async () => {
  // The dev fleet: east exports demo/cart by a ServiceExport over links with `mcs` (full mesh), so
  // KEP-1645 wants it Valid, Ready (imported into north and west) and not in conflict, and a
  // ClusterSetIP ServiceImport of it, from east, in each consumer.
  const page = adminPage;
  await page.goto(`${URL_}/#/mcs`);
  const exported = page.locator("table.mcs-exports tbody tr", { hasText: "cart" });
  await exported.locator("text=EXPORTED").waitFor({ timeout: 60_000 });
  const cells = await exported.locator("td").allTextContents();
  assert.equal(cells[1], "east");
  assert.equal(cells[2], "demo");
  assert.match(cells[4], /valid True.*ready True.*conflict False/);
  assert.equal(cells[5], "north, west");
  const imports = page.locator("table.mcs-imports tbody tr", { hasText: "cart" });
  await page.waitForFunction(() => document.querySelectorAll("table.mcs-imports tbody tr").length >= 2, null, { timeout: 60_000 });
  const rows = await imports.evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)));
  assert.deepEqual(
    rows.map((r) => [r[1], r[3], r[5], r[7]]).sort(),
    [
      ["north", "ClusterSetIP", "east", "IMPORTED"],
      ["west", "ClusterSetIP", "east", "IMPORTED"],
    ],
  );
  // The state filter goes to the server: no import is in error, and the table says so.
  await page.selectOption('select[name="importState"]', "ERROR");
  await page.waitForSelector("#mcs-imports >> text=nothing here");
  assert.match(page.url(), /importState=ERROR/);
  await exported.locator("text=EXPORTED").waitFor();
});

test("a viewer sees no mutating control", async () => {
  const page = await tab();
  await signIn(page, TOKENS.viewer);
  await page.waitForSelector("svg.topology");
  assert.equal((await page.textContent("#role")).trim(), "viewer");
  await page.goto(`${URL_}/#/git`);
  await page.waitForSelector(".git-source");
  await page.waitForSelector(".timeline .attempt");
  assert.equal(await page.locator(".control").count(), 0, "no Sync/Pin/Unpin/Suspend/Resume for a viewer");
  assert.equal(await page.locator(".controls").count(), 0);
  assert.equal(await page.locator("form.pin").count(), 0);
  await page.close();
});

test("an operator syncs a Git source now", async () => {
  const page = await tab();
  await signIn(page, TOKENS.operator);
  await page.waitForSelector("svg.topology");
  assert.equal((await page.textContent("#role")).trim(), "operator");
  await page.goto(`${URL_}/#/git`);
  await page.click("button.sync-now");
  await page.waitForSelector("#banner p.ok", { timeout: 30_000 });
  assert.match(await page.textContent("#banner"), /Sync .*: (Applied|Unchanged)/i);
  await page.close();
});

test("an operator pins a revision and the mirrors follow", async (t) => {
  const caps = await gql("{ __schema { mutationType { fields { name } } } }");
  const mutations = (caps.data?.__schema?.mutationType?.fields ?? []).map((f) => f.name);
  if (!mutations.includes("pinGitSource")) {
    t.skip("SKIPPED: this server's schema has no pinGitSource mutation (the GitOps mutations of issue 16 point 3 are not merged yet)");
    return;
  }
  const repo = env("LP_REPO");
  const git = (...args) =>
    execFileSync("git", ["-C", repo, ...args], {
      env: { ...process.env, GIT_CONFIG_GLOBAL: "/dev/null", GIT_CONFIG_NOSYSTEM: "1", GIT_AUTHOR_NAME: "browser", GIT_AUTHOR_EMAIL: "browser@linkplane.invalid", GIT_COMMITTER_NAME: "browser", GIT_COMMITTER_EMAIL: "browser@linkplane.invalid" },
    }).toString().trim();
  const good = git("rev-parse", "HEAD");
  // A new revision unlinks west from east: web-east leaves west.
  const mesh = git("show", "HEAD:links/mesh.yaml");
  const without = mesh.split("\n---\n").filter((d) => !d.includes("name: west-from-east\n")).join("\n---\n");
  execFileSync("sh", ["-c", 'cat > "$1"', "sh", join(repo, "links/mesh.yaml")], { input: without });
  git("commit", "-qam", "unlink west from east");
  const hook = await fetch(env("LP_WEBHOOK_URL"), { method: "POST", headers: { "X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": env("LP_WEBHOOK_SECRET") }, body: "{}" });
  assert.equal(hook.status, 202);
  const westHas = async (name) => {
    const r = await gql('{ mirrors(cluster: "west", namespace: "demo", first: 100) { nodes { localName state } } }');
    return (r.data?.mirrors?.nodes ?? []).some((m) => m.localName === name);
  };
  for (let i = 0; i < 120 && (await westHas("web-east")); i++) await new Promise((r) => setTimeout(r, 500));
  assert.equal(await westHas("web-east"), false, "the unlink revision applied");

  const page = await tab();
  await signIn(page, TOKENS.operator);
  await page.waitForSelector("svg.topology");
  await page.goto(`${URL_}/#/git`);
  await page.click(`button.pin-here[data-revision="${good}"]`);
  await page.waitForSelector(`.pinned code[title="${good}"]`, { timeout: 30_000 });
  // The mirrors follow the pinned revision: web-east is back in west, seen on the mirrors page.
  await page.goto(`${URL_}/#/mirrors?cluster=west&namespace=demo`);
  await page.waitForFunction(() => document.querySelector("table.mirrors")?.textContent?.includes("web-east"), null, { timeout: 60_000 });
  await page.goto(`${URL_}/#/git`);
  await page.click("button.unpin");
  await page.waitForSelector('.pinned:has-text("not pinned")', { timeout: 30_000 });
  await page.close();
});

test("an operator suspends and resumes a Git source", async (t) => {
  const caps = await gql("{ __schema { mutationType { fields { name } } } }");
  const mutations = (caps.data?.__schema?.mutationType?.fields ?? []).map((f) => f.name);
  if (!mutations.includes("suspendGitSource") || !mutations.includes("resumeGitSource")) {
    t.skip("SKIPPED: this server's schema has no suspendGitSource/resumeGitSource (issue 16 point 3 not merged yet)");
    return;
  }
  const page = await tab();
  await signIn(page, TOKENS.operator);
  await page.waitForSelector("svg.topology");
  await page.goto(`${URL_}/#/git`);
  await page.click("button.suspend");
  await page.waitForSelector('.git-source h2 .badge:has-text("SUSPENDED")', { timeout: 30_000 });
  await page.click("button.resume");
  await page.waitForSelector("button.suspend", { timeout: 30_000 });
  assert.equal(await page.locator('.git-source h2 .badge:has-text("SUSPENDED")').count(), 0);
  await page.close();
});

test("signing out forgets the token", async () => {
  const page = adminPage;
  await page.goto(`${URL_}/#/topology`);
  await page.click("#signout");
  await page.waitForSelector("#token");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("linkplane.token")), null);
});

test("GraphiQL loads without a token, introspects with the token bar's token and runs a query", async () => {
  const page = await tab();
  const errors = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  const res = await page.goto(`${URL_}/graphql`);
  assert.equal(res.status(), 200);
  assert.match(res.headers()["content-security-policy"] ?? "", /script-src 'self'/);
  // The editor loads before any token: the page holds no data.
  await page.waitForSelector(".graphiql-query-editor .CodeMirror");
  await page.waitForSelector('.lp-token-state:has-text("no token")');
  // The viewer's token in the bar: GraphiQL remounts and introspects with it.
  await page.fill("#lp-token", TOKENS.viewer);
  await page.click('.lp-token-bar button[type="submit"]');
  await page.waitForSelector('.lp-token-state:has-text("Authorization: Bearer")');
  assert.equal(await page.evaluate(() => sessionStorage.getItem("linkplane.token")), TOKENS.viewer);
  // Introspection worked: the docs explorer shows the root Query type and its clusters field.
  await page.click('button[aria-label="Show Documentation Explorer"]');
  await page.locator('.graphiql-doc-explorer a.graphiql-doc-explorer-type-name:text-is("Query")').first().click();
  await page.waitForSelector('.graphiql-doc-explorer-title:has-text("Query")');
  await page.waitForSelector('a.graphiql-doc-explorer-field-name:text-is("clusters")');
  // A query typed into the editor (CodeMirror 5 behind a hidden textarea), run with Ctrl-Enter.
  const query = "{ clusters { edges { node { name } } } }";
  await page.click(".graphiql-query-editor .CodeMirror-lines");
  await page.keyboard.press("Control+A");
  await page.keyboard.press("Delete");
  await page.keyboard.insertText(query);
  assert.equal(await page.$eval(".graphiql-query-editor .CodeMirror", (el) => el.CodeMirror.getValue()), query);
  await page.keyboard.press("Control+Enter");
  await page.waitForFunction(() => /"name": "east"/.test(document.querySelector(".graphiql-response .CodeMirror")?.CodeMirror?.getValue() ?? ""));
  const response = JSON.parse(await page.$eval(".graphiql-response .CodeMirror", (el) => el.CodeMirror.getValue()));
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  const names = response.data.clusters.edges.map((e) => e.node.name).sort();
  assert.deepEqual(names, CLUSTERS);
  for (const r of requests) assert.ok(!r.includes(TOKENS.viewer), `token in a URL: ${r}`);
  assert.deepEqual(errors, [], "no console error, no CSP violation on the GraphiQL page");
  await page.close();
});

test("no request left the origin and the CSP refused nothing", async () => {
  const foreign = requests.filter((r) => {
    const u = new URL(r);
    return !["http:", "https:", "ws:", "wss:"].includes(u.protocol) ? false : u.host !== new URL(ORIGIN).host;
  });
  assert.deepEqual(foreign, []);
  assert.deepEqual(problems, []);
});
