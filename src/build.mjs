#!/usr/bin/env node
// The build: every src/**/*.ts transpiled to dist/ (ES modules for Node 20, source maps) with esbuild, in well
// under a second. Type checking is its own step (`npm run typecheck`, run by CI and by lint's typed rules), so
// tests and `npm start` do not wait for tsc. The bin entry points are made executable.
import { build } from 'esbuild';
import { chmodSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src');
const out = join(root, 'dist');

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? walk(full) : name.endsWith('.ts') && !name.endsWith('.d.ts') ? [full] : [];
  });
}

rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: walk(src),
  outdir: out,
  outbase: src,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
});
for (const bin of ['cli/main.js', 'sim/main.js']) chmodSync(join(out, bin), 0o755);
if (process.argv.includes('--verbose')) console.log(`built ${relative(root, out)}/`);
