// Builds the dashboard into an output directory (default: the committed copy the server embeds).
//   node build.mjs [OUT_DIR]
// Deterministic: the same sources and esbuild version give the same bytes, which is what
// `scripts/web check` relies on.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? join(here, "../../server/assets/dashboard"));
mkdirSync(out, { recursive: true });

const common = { bundle: true, minify: true, legalComments: "none", charset: "utf8", logLevel: "warning" };
await build({
  ...common,
  entryPoints: [join(here, "src/main.ts")],
  outfile: join(out, "app.js"),
  format: "iife",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
});
await build({ ...common, entryPoints: [join(here, "static/app.css")], outfile: join(out, "app.css") });
for (const f of ["index.html", "favicon.svg"]) copyFileSync(join(here, "static", f), join(out, f));
