/**
 * `pd render k8s` bundles on disk: golden bundles for the PD NIXL, PD shared-storage, TP and DP templates
 * (PD_UPDATE_GOLDEN=1 rewrites them), two of them through pd's command line (one per output mode: the built binary
 * for one, the same commander program in-process for the other); every template renders a bundle
 * `kubectl kustomize` builds into exactly the objects pd wrote (or is refused with a hint); writing replaces only
 * what pd wrote; the --json description and the exit codes of bad input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runPd } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { runPdInProcess } from '../cli/in-process.js';
import { TEMPLATES, readTemplate } from '../../src/config/templates.js';
import { configSchema } from '../../src/config/schema.js';
import { renderK8s } from '../../src/stack/k8s/bundle.js';
import { parseRenderOptions, type RenderOptionsInput } from '../../src/stack/k8s/options.js';
import { writeBundle } from '../../src/stack/k8s/write.js';
import { ConfigError, UsageError } from '../../src/util/errors.js';
import { HUB_MODEL, kubectlPath, kustomize, parseObjects, renderTemplate } from './helpers.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
const UPDATE = process.env.PD_UPDATE_GOLDEN === '1';

/**
 * The golden cases: template, the flags a user would pass, and how it is rendered: by the built binary, by pd's
 * commander program in-process (test/cli/in-process.ts), or by the same renderK8s + writeBundle the command calls
 * (each pd process costs about half a second of CPU; the whole suite has a budget).
 */
const GOLDEN: Record<string, { flags: string[]; cli: 'binary' | 'in-process' | false }> = {
  'nixl-1p1d': { flags: ['--model', HUB_MODEL, '--namespace', 'pd-bench', '--json'], cli: 'in-process' },
  'shared-storage-1p1d': { flags: ['--shared-storage-claim', 'pd-kv', '--model-volume-claim', 'models'], cli: false },
  'tensor-parallel': { flags: ['--model-volume-claim', 'models'], cli: false },
  'data-parallel': { flags: ['--model', HUB_MODEL, '--router', 'none'], cli: 'binary' },
};

/** Render in-process with the options the flags name (--model overrides the config's model, as the CLI does). */
async function renderInProcess(config: string, out: string, flags: string[]): Promise<void> {
  const opts: Record<string, unknown> = { out };
  const raw = JSON.parse(await readFile(config, 'utf8'));
  for (let i = 0; i < flags.length; i += 2) {
    const key = flags[i]!.slice(2).replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
    if (key === 'model') raw.model = flags[i + 1];
    else opts[key] = flags[i + 1]!;
  }
  const bundle = renderK8s(configSchema.parse(raw), config, parseRenderOptions(opts as unknown as RenderOptionsInput));
  await writeBundle(out, bundle.files, false);
}

async function filesUnder(dir: string, root = dir): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(full, root)));
    else out.push(relative(root, full));
  }
  return out.sort();
}

/** The template as `pd init -t NAME -o NAME.json` writes it (one pd process fewer per case). */
async function initTemplate(dir: string, template: string): Promise<string> {
  const path = join(dir, `${template}.json`);
  await writeFile(path, await readTemplate(template));
  return path;
}

test('golden bundles: nixl-1p1d, shared-storage-1p1d, tensor-parallel, data-parallel', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await Promise.all(
      Object.entries(GOLDEN).map(async ([template, { flags, cli }]) => {
        const config = await initTemplate(dir, template);
        const out = join(dir, `bundle-${template}`);
        if (cli) {
          const argv = ['-c', config, 'render', 'k8s', '--out', out, ...flags];
          const r = cli === 'binary' ? await runPd(argv, { cwd: dir }) : await runPdInProcess(argv, { cwd: dir });
          assert.equal(r.code, 0, `${template}: ${r.stderr}`);
          if (flags.includes('--json')) checkJson(JSON.parse(r.stdout));
          else assert.match(r.stdout, new RegExp(`✔ wrote ${out}: kustomization\\.yaml, [\\s\\S]*\\n  kubectl apply -k ${out}\\n`));
        } else await renderInProcess(config, out, flags);
        const files = await filesUnder(out);
        const golden = join(FIXTURES, template);
        if (UPDATE) {
          await rm(golden, { recursive: true, force: true });
          for (const f of files) {
            await mkdir(join(golden, f, '..'), { recursive: true });
            await writeFile(join(golden, f), await readFile(join(out, f)));
          }
        }
        assert.deepEqual(files, await filesUnder(golden), `${template}: the bundle's files`);
        for (const f of files) {
          assert.equal(await readFile(join(out, f), 'utf8'), await readFile(join(golden, f), 'utf8'), `${template}/${f} differs from the golden file`);
        }
      }),
    );
  } finally {
    await cleanup();
  }
});

/** --json describes the bundle and the commands that bring it up (the NIXL golden case). */
function checkJson(j: any): void {
  assert.equal(j.name, 'nixl-1p1d');
  assert.equal(j.namespace, 'pd-bench');
  assert.equal(j.connector, 'NixlConnector');
  assert.deepEqual(j.files, ['kustomization.yaml', 'prefill.yaml', 'decode.yaml', 'router/values.yaml']);
  assert.deepEqual(j.groups.map((g: any) => [g.deployment, g.replicas, g.gpusPerPod, g.port, g.sidecar]), [
    ['nixl-1p1d-prefill', 1, 1, 8000, false],
    ['nixl-1p1d-decode', 1, 1, 8200, true],
  ]);
  const commands: string[] = j.steps.flatMap((s: any) => s.commands);
  assert.ok(commands.some((c) => c.startsWith('helm install nixl-1p1d oci://ghcr.io/llm-d/charts/llm-d-router-standalone --version v0.10.0 -f ') && c.endsWith(' -n pd-bench')));
  assert.ok(commands.includes('kubectl port-forward svc/nixl-1p1d-epp 8000:80 -n pd-bench'));
  assert.ok(commands.some((c) => c.startsWith('pd bench run ') && c.includes('--target http://127.0.0.1:8000') && c.includes('--keep-cache')));
}

test('bad flags and refusals exit 2 with the flag and a hint, and write nothing', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const config = await initTemplate(dir, 'tensor-parallel');
    const cases: Array<[string[], RegExp, RegExp]> = [
      [['--name', 'Bad_Name'], /--name must start with a letter .*\(got "Bad_Name"\)/, /hint: Pick a name/],
      [[], /model \/mnt\/models\/Qwen3-4B-Instruct-2507 is a path on this machine/, /--model-volume-claim CLAIM/],
    ];
    for (const [flags, message, hint] of cases) {
      const r = await runPdInProcess(['-c', config, 'render', 'k8s', '--out', join(dir, 'x'), ...flags], { cwd: dir });
      assert.equal(r.code, 2, `${flags.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, message);
      assert.match(r.stderr, hint);
      assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
    }
    await assert.rejects(readdir(join(dir, 'x')), /ENOENT/);
    const missing = await runPdInProcess(['-c', config, 'render', 'k8s'], { cwd: dir });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--out/);
  } finally {
    await cleanup();
  }
});

const KUBECTL = kubectlPath();

let saidNoKubectl = false;
/** One line, once, where kubectl is absent (the machine image has it; CI may not). */
function noKubectl(): void {
  if (!saidNoKubectl) console.log('kubectl not found on PATH: the `kubectl kustomize` check did not run');
  saidNoKubectl = true;
}

test('every template renders a bundle kubectl kustomize builds, or is refused with a hint (P2P NCCL)', async () => {
  if (KUBECTL === null) noKubectl();
  const { dir, cleanup } = await tempDir();
  try {
    await Promise.all(
      Object.keys(TEMPLATES).map(async (template) => {
        const opts = { modelVolumeClaim: 'models', ...(template.startsWith('shared-storage') ? { sharedStorageClaim: 'pd-kv' } : {}), namespace: 'bench' };
        if (template === 'p2p-nccl-1p1d') {
          await assert.rejects(renderTemplate(template, opts), (e: unknown) => e instanceof ConfigError && /P2pNcclConnector cannot be rendered/.test(e.message) && /NixlConnector/.test(e.hint ?? ''));
          return;
        }
        const bundle = await renderTemplate(template, opts);
        const out = join(dir, template);
        await writeBundle(out, bundle.files, false);
        if (KUBECTL === null) return;
        const built = await kustomize(KUBECTL, out);
        assert.equal(built.code, 0, `kubectl kustomize ${template}: ${built.stderr}`);
        const objects = parseObjects([built.stdout]);
        assert.equal(objects.length, bundle.objects.length, template);
        // kustomize adds the namespace and changes nothing else: the built objects are the ones pd wrote.
        for (const o of objects) {
          assert.equal(o.metadata.namespace, 'bench');
          delete o.metadata.namespace;
          assert.deepEqual(o, bundle.objects.find((x) => x.kind === o.kind && x.metadata?.name === o.metadata.name), `${template}: ${o.kind}/${o.metadata.name}`);
        }
      }),
    );
  } finally {
    await cleanup();
  }
});

test('the golden NIXL bundle builds with kustomize and gets its namespace', async () => {
  if (KUBECTL === null) return noKubectl();
  const built = await kustomize(KUBECTL, join(FIXTURES, 'nixl-1p1d'));
  assert.equal(built.code, 0, built.stderr);
  const objects = parseObjects([built.stdout]);
  assert.deepEqual(objects.map((o) => `${o.kind}/${o.metadata.name}/${o.metadata.namespace}`).sort(), [
    'Deployment/nixl-1p1d-decode/pd-bench',
    'Deployment/nixl-1p1d-prefill/pd-bench',
    'Service/nixl-1p1d-decode/pd-bench',
    'Service/nixl-1p1d-prefill/pd-bench',
  ]);
});

test('writing a bundle replaces what pd wrote, removes its stale files and never overwrites a file of the user', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const out = join(dir, 'k8s');
    const nixl = await renderTemplate('nixl-1p1d', {}, (r) => (r.model = HUB_MODEL));
    const first = await writeBundle(out, nixl.files, false);
    assert.deepEqual(first.written, ['kustomization.yaml', 'prefill.yaml', 'decode.yaml', 'router/values.yaml']);
    await writeFile(join(out, 'notes.yaml'), 'mine: true\n');

    const tp = await renderTemplate('tensor-parallel', { router: 'none' }, (r) => (r.model = HUB_MODEL));
    const second = await writeBundle(out, tp.files, false);
    assert.deepEqual(second.removed.sort(), ['decode.yaml', 'prefill.yaml', 'router/values.yaml']);
    assert.deepEqual((await readdir(out)).sort(), ['engine.yaml', 'kustomization.yaml', 'notes.yaml', 'router']);
    assert.deepEqual(await readdir(join(out, 'router')), []);
    assert.equal(await readFile(join(out, 'notes.yaml'), 'utf8'), 'mine: true\n');

    await writeFile(join(out, 'engine.yaml'), 'kind: Mine\n');
    await assert.rejects(writeBundle(out, tp.files, false), (e: unknown) => e instanceof UsageError && /already holds engine\.yaml, which pd did not write/.test(e.message) && /--force/.test(e.hint ?? ''));
    assert.equal(await readFile(join(out, 'engine.yaml'), 'utf8'), 'kind: Mine\n');
    await writeBundle(out, tp.files, true);
    assert.match(await readFile(join(out, 'engine.yaml'), 'utf8'), /^# Rendered by `pd render k8s`/);

    await writeFile(join(dir, 'file'), '');
    await assert.rejects(writeBundle(join(dir, 'file'), tp.files, false), (e: unknown) => e instanceof UsageError && /is a file, not a folder/.test(e.message));
  } finally {
    await cleanup();
  }
});
