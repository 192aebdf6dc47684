#!/usr/bin/env node
// The build: pd's entry points (the CLI, the simulator, the cache's delete worker and functions) bundled with their
// dependencies by esbuild into dist/ (ES modules for Node 20, source maps), shared code and lazily imported
// commands split into dist/chunks/. One file per process start instead of hundreds of small modules: `pd status`
// starts in about two thirds of the CPU time. Type checking is its own step (`npm run typecheck`, run by CI and
// by lint's typed rules), so tests and `npm start` do not wait for tsc.
//
// import.meta.url keeps its per-file meaning: in src/a/b.ts it becomes the URL of dist/a/b.js, resolved from the
// output file (every output file sits one folder below dist/, like dist/a/b.js would), so `new URL('./x.js',
// import.meta.url)` still finds dist/a/x.js and `../../package.json` the package root.
import { build } from 'esbuild';
import { chmodSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src');
const out = join(root, 'dist');

const perFileUrls = {
  name: 'per-file-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, (args) => {
      if (!args.path.startsWith(src)) return undefined;
      const rel = relative(src, args.path).replaceAll('\\', '/').replace(/\.ts$/, '.js');
      const url = `new URL(${JSON.stringify(`../${rel}`)}, import.meta.url).href`;
      return { contents: readFileSync(args.path, 'utf8').replaceAll('import.meta.url', url), loader: 'ts' };
    });
  },
};

rmSync(out, { recursive: true, force: true });
await build({
  // The cache modules are entries too: `npm run bench:cache` times the built clear/stats/scan functions.
  entryPoints: ['cli/main.ts', 'sim/main.ts', 'cache/delete-worker.ts', 'cache/clear.ts', 'cache/stats.ts', 'cache/scan.ts'].map((f) => join(src, f)),
  outdir: out,
  outbase: src,
  bundle: true,
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  // Smaller files parse faster at every process start; names are kept for error classes and stack traces.
  minify: true,
  keepNames: true,
  // CommonJS dependencies (prom-client, …) call require(): give every output file one.
  banner: { js: "import { createRequire as __pdCreateRequire } from 'node:module'; const require = __pdCreateRequire(import.meta.url);" },
  plugins: [perFileUrls],
  logLevel: 'warning',
});
for (const bin of ['cli/main.js', 'sim/main.js']) chmodSync(join(out, bin), 0o755);
if (process.argv.includes('--verbose')) console.log(`built ${relative(root, out)}/`);
