// `scripts/bench dashboard`: time to first paint of the topology, measured in Debian's headless
// Chromium against a server that tests/dashboard_bench.rs seeded (50 clusters, 20,000 mirrors).
//
// Each run opens a fresh tab with the token already in sessionStorage and loads `/#/topology`;
// the app marks `linkplane:topology-painted` after the frame that shows the picture. Reported:
// that mark and Chromium's first-contentful-paint, both from navigation start, p50/p90/max.
//
//   LP_URL, LP_ADMIN_TOKEN, LP_CHROMIUM, LP_CLUSTERS (expected nodes), LP_RUNS, LP_WARMUP,
//   LP_SHOT (a screenshot of the last run)

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const URL_ = process.env.LP_URL;
const TOKEN = process.env.LP_ADMIN_TOKEN;
const CLUSTERS = Number(process.env.LP_CLUSTERS ?? 50);
const RUNS = Number(process.env.LP_RUNS ?? 20);
const WARMUP = Number(process.env.LP_WARMUP ?? 3);

const profile = mkdtempSync(join(tmpdir(), "linkplane-bench-chromium."));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.LP_CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
  viewport: { width: 1440, height: 900 },
});
await ctx.addInitScript((t) => sessionStorage.setItem("linkplane.token", t), TOKEN);

const painted = [];
const fcp = [];
let shapes = "";
for (let i = 0; i < WARMUP + RUNS; i++) {
  const page = await ctx.newPage();
  await page.goto(`${URL_}/#/topology`);
  const handle = await page.waitForFunction(
    (n) => {
      const m = performance.getEntriesByName("linkplane:topology-painted")[0];
      return m && document.querySelectorAll("svg.topology g.node").length === n ? m.startTime : null;
    },
    CLUSTERS,
    { timeout: 60_000, polling: 50 },
  );
  const t = await handle.jsonValue();
  const f = await page.evaluate(() => performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null);
  if (!shapes) shapes = await page.evaluate(() => `${document.querySelectorAll("g.node").length} nodes, ${document.querySelectorAll("g.edge").length} edges, summary: ${document.querySelector(".summary")?.textContent}`);
  if (process.env.LP_SHOT && i === WARMUP + RUNS - 1) await page.screenshot({ path: process.env.LP_SHOT });
  if (i >= WARMUP) {
    painted.push(t);
    if (f !== null) fcp.push(f);
  }
  await page.close();
}
await ctx.close();
rmSync(profile, { recursive: true, force: true });

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.round((s.length - 1) * p))];
};
const fmt = (xs) => `p50 ${pct(xs, 0.5).toFixed(0)} ms  p90 ${pct(xs, 0.9).toFixed(0)} ms  max ${Math.max(...xs).toFixed(0)} ms`;
console.log(`drawn: ${shapes}`);
console.log(`first contentful paint (shell)      ${fmt(fcp)}  (${fcp.length} runs)`);
console.log(`topology painted (from navigation)  ${fmt(painted)}  (${painted.length} runs after ${WARMUP} warm-up)`);
