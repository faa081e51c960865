// Builds GraphiQL into ../../server/assets/graphiql: index.html, graphiql.js, graphiql.css.
// Production React, minified, every asset bundled (fonts and images stay data: URLs from
// GraphiQL's CSS), so the page makes no request to another origin and runs under the strict
// CSP the server sends. The Rust build embeds the output; it never runs npm.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', '..', 'server', 'assets', 'graphiql');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

await build({
  entryPoints: { graphiql: join(here, 'src', 'main.jsx') },
  outdir: out,
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  jsx: 'automatic',
  define: { 'process.env.NODE_ENV': '"production"' },
  loader: { '.woff2': 'dataurl', '.woff': 'dataurl', '.ttf': 'dataurl', '.svg': 'dataurl', '.png': 'dataurl' },
  legalComments: 'linked',
  logLevel: 'info',
});
copyFileSync(join(here, 'src', 'index.html'), join(out, 'index.html'));
