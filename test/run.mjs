#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's own test runner.
// Usage: node test/run.mjs [--unit] [substring filter ...]
//   --unit  only the tests that need no build (no pd or simulator process): the fast loop; dist/ is not built.
// Otherwise the sources are built first (src/build.mjs, esbuild: about a second) and every test runs.
//
// The test files are bundled by esbuild into .test-dist/ (about a second; node_modules stay external, shared code
// split into chunks) instead of being compiled on load by tsx in every test process: that costs half a CPU second
// per file. `import.meta.url` keeps pointing at the source file, so paths resolve as they do from the sources.
// The unit files (no pd or simulator process) run together in one process; the others in a few groups.
//
// Safety net for processes a killed or timed-out test could not clean up: the runner lives in its own process
// group (killed as a whole at the end), every temp dir is created under one root, and any pd stack whose state
// file is still under that root is stopped with `pd down` (detached supervisors leave the process group).
import { readdirSync, readFileSync, statSync, mkdtempSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { tmpdir } from 'node:os';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const filters = args.filter((a) => a !== '--unit');
const t0 = Date.now();

/** A test needs the built pd or simulator when it starts them (through the helpers, or dist/ directly). */
function needsBuild(file) {
  return /helpers\/(cli|sim|stack)\.[jt]s|dist\/|simEntryPath/.test(readFileSync(join(root, file), 'utf8'));
}

function walk(dir, match) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    let st;
    try { st = statSync(full); } catch { continue; }
    if (st.isDirectory()) out.push(...walk(full, match));
    else if (match(name)) out.push(full);
  }
  return out;
}

const files = walk(join(root, 'test'), (n) => n.endsWith('.test.ts'))
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .filter((f) => !unitOnly || !needsBuild(f))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}

if (!unitOnly && process.env.PD_TEST_NO_BUILD !== '1') {
  const built = spawnSync(process.execPath, [join(root, 'src/build.mjs')], { stdio: 'inherit' });
  if (built.status !== 0) process.exit(built.status ?? 1);
}

/** Keep import.meta.url on the source file: fixtures, templates and dist/ are found relative to it. */
const sourceUrls = {
  name: 'source-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.[cm]?ts$/ }, (args) => ({
      contents: readFileSync(args.path, 'utf8').replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)),
      loader: 'ts',
    }));
  },
};

const outDir = join(root, '.test-dist');
rmSync(outDir, { recursive: true, force: true });
await build({
  entryPoints: files.map((f) => join(root, f)),
  outdir: outDir,
  outbase: root,
  bundle: true,
  splitting: true,
  packages: 'external',
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  outExtension: { '.js': '.mjs' },
  plugins: [sourceUrls],
  logLevel: 'warning',
});
const bundled = (f) => join(outDir, f.replace(/\.ts$/, '.mjs'));
const units = files.filter((f) => !needsBuild(f));
/**
 * Longest first, so that no long file starts last and runs alone: a file's weight is the processes it starts
 * (stacks, simulators, pd commands, benchmark runs), read from its text.
 */
function weight(file) {
  const text = readFileSync(join(root, file), 'utf8');
  const count = (re) => (text.match(re) ?? []).length;
  return 8 * count(/'up'|bench', 'matrix'/g) + 3 * count(/startSim\(|startSims\(|spawnPd\(/g) + count(/runPd\(|s\.pd\(|spawn\(/g);
}
const own = files.filter((f) => needsBuild(f)).map((f) => [f, weight(f) + 1]).sort((a, b) => b[1] - a[1]);

/** One process for several files: an entry that imports their bundles (their tests then run one after another). */
function entryFor(name, members) {
  const entry = join(outDir, `${name}.test.mjs`);
  writeFileSync(entry, members.map((f) => `import ${JSON.stringify('./' + relative(outDir, bundled(f)))};`).join('\n') + '\n');
  return entry;
}

// The files that start processes share a few test processes too (a node process and its bundle cost about half a
// CPU second): PD_TEST_GROUPS groups, filled longest file first into the lightest group.
const groupCount = Math.max(1, Math.min(own.length, Number(process.env.PD_TEST_GROUPS ?? 4)));
const groups = Array.from({ length: groupCount }, () => ({ load: 0, members: [] }));
for (const [f, w] of own) {
  const g = groups.reduce((a, b) => (b.load < a.load ? b : a));
  g.members.push(f);
  g.load += w;
}
const runList = groups.filter((g) => g.members.length > 0).map((g, i) => entryFor(`e2e-group-${i + 1}`, g.members));
if (units.length > 0) runList.unshift(entryFor('unit-files', units));

const tmpRoot = mkdtempSync(join(tmpdir(), 'pd-tests-'));
// Three files at a time on two cores: e2e files spend part of their time waiting on child processes and sockets.
const concurrency = process.env.PD_TEST_CONCURRENCY ?? '3';
const child = spawn(
  process.execPath,
  ['--enable-source-maps', '--test', `--test-concurrency=${concurrency}`, '--test-timeout=600000', ...runList],
  {
    cwd: root,
    stdio: 'inherit',
    detached: true,
    env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1', PD_TEST_TMP_ROOT: tmpRoot },
  },
);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));

function sweep() {
  try { process.kill(-child.pid, 'SIGKILL'); } catch { /* group already gone */ }
  const states = existsSync(tmpRoot) ? walk(tmpRoot, (n) => n === 'state.json') : [];
  for (const state of states) {
    const stateDir = join(state, '..');
    console.error(`test runner: stopping a stack a test left behind (${stateDir})`);
    spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), 'down', '--grace', '2'], {
      env: { ...process.env, PD_STATE_DIR: stateDir },
      cwd: tmpRoot,
      stdio: 'inherit',
    });
  }
  rmSync(tmpRoot, { recursive: true, force: true });
  if (process.env.PD_TEST_KEEP_BUNDLES !== '1') rmSync(outDir, { recursive: true, force: true });
}

child.on('exit', (code, signal) => {
  sweep();
  console.error(`test run: ${files.length} files in ${((Date.now() - t0) / 1000).toFixed(1)} s${unitOnly ? ' (unit only, no build)' : ''}`);
  process.exit(signal ? 1 : (code ?? 1));
});
