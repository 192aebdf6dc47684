/**
 * Invariants of every rendered bundle, checked on the YAML pd writes (not on its in-memory objects): the router's
 * selector matches every pod, ports agree between sidecar, engines, pool and Services, GPUs equal TP x PP (x DP),
 * the engines run the plan's own arguments, NIXL pods are wired as llm-d wires them, and nothing local or secret
 * (CUDA_VISIBLE_DEVICES, a key) is in the bundle.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { buildClusterPlan } from '../../src/stack/k8s/cluster-plan.js';
import { parseRenderOptions, type RenderOptionsInput } from '../../src/stack/k8s/options.js';
import { KNOWN_EPP_PLUGINS, PORTS } from '../../src/stack/k8s/llm-d.js';
import type { Bundle } from '../../src/stack/k8s/bundle.js';
import { HUB_MODEL, deployments, engineContainer, flagValue, parseObjects, renderTemplate, templateConfig } from './helpers.js';

const SECRET = 'sk-pd-test-9f8e7d6c5b4a';

interface Case {
  title: string;
  template: string;
  opts: Partial<RenderOptionsInput>;
  change?: (raw: any) => void;
  /** The config sets engine.apiKey. */
  key?: boolean;
}

const CASES: Case[] = [
  { title: 'NIXL 1P1D, hub model', template: 'nixl-1p1d', opts: {}, change: (r) => (r.model = HUB_MODEL) },
  {
    title: 'NIXL, prefill TP1 x2 and decode TP2, engine key',
    template: 'nixl-1p1d',
    opts: { modelVolumeClaim: 'models' },
    key: true,
    change: (r) => {
      r.engine.apiKey = SECRET;
      r.producers = [{ gpus: [0], port: 8100 }, { gpus: [1], port: 8101 }];
      r.consumers = [{ gpus: [2, 3], port: 8200 }];
    },
  },
  { title: 'shared storage 1P1D', template: 'shared-storage-1p1d', opts: { modelVolumeClaim: 'models', sharedStorageClaim: 'pd-kv' } },
  { title: 'shared storage 2P2D', template: 'shared-storage-xpyd', opts: { modelVolumeClaim: 'models', sharedStorageClaim: 'pd-kv' } },
  { title: 'tensor parallel', template: 'tensor-parallel', opts: { modelVolumeClaim: 'models' } },
  { title: 'pipeline parallel', template: 'pipeline-parallel', opts: { modelVolumeClaim: 'models' } },
  { title: 'data parallel, llm-d router', template: 'data-parallel', opts: { modelVolumeClaim: 'models' } },
  { title: 'data parallel, no router', template: 'data-parallel', opts: { router: 'none' }, change: (r) => (r.model = HUB_MODEL) },
  {
    title: 'in-process data parallel (--data-parallel-size 2) with TP 2',
    template: 'tensor-parallel',
    opts: { modelVolumeClaim: 'models' },
    change: (r) => (r.engines = [{ gpus: [0, 1, 2, 3], port: 8100, args: ['--tensor-parallel-size', '2', '--data-parallel-size', '2'] }]),
  },
];

function args(d: any): string[] {
  return engineContainer(d).args;
}

function env(d: any, name: string): any {
  return engineContainer(d).env.find((e: any) => e.name === name);
}

function namedPort(container: any, name: string): number | undefined {
  return container.ports?.find((p: any) => p.name === name)?.containerPort;
}

function sizeOf(a: string[], long: string, short: string): number {
  return Number(flagValue(a, long) ?? flagValue(a, short) ?? 1);
}

function checkBundle(bundle: Bundle, c: Case, planArgs: Map<string, string[]>): void {
  const texts = bundle.files.map((f) => f.text);
  const objects = parseObjects(bundle.files.filter((f) => f.path !== 'kustomization.yaml' && !f.path.startsWith('router/')).map((f) => f.text));
  const deps = deployments(objects);
  assert.ok(deps.length > 0);

  for (const t of texts) {
    assert.doesNotMatch(t, /CUDA_VISIBLE_DEVICES/, 'no CUDA_VISIBLE_DEVICES: the device plugin picks GPUs');
    assert.ok(!t.includes(SECRET), 'the engine key is never written into the bundle');
  }

  // Router: its selector is a subset of every pod's labels; plugin types are router v0.10.0's.
  const valuesFile = bundle.files.find((f) => f.path === 'router/values.yaml');
  assert.equal(valuesFile !== undefined, bundle.router === 'llm-d');
  if (valuesFile) {
    const values = parse(valuesFile.text);
    const match = values.router.modelServers.matchLabels;
    assert.deepEqual(Object.keys(match), ['llm-d.ai/guide']);
    for (const d of deps) for (const [k, v] of Object.entries(match)) assert.equal(d.spec.template.metadata.labels[k], v, `${d.metadata.name} is selected by the router`);
    const file = values.router.epp.pluginsConfigFile;
    const epp = parse(values.router.epp.pluginsCustomConfig[file]);
    assert.equal(epp.apiVersion, 'llm-d.ai/v1alpha1');
    for (const p of epp.plugins) assert.ok((KNOWN_EPP_PLUGINS as readonly string[]).includes(p.type), p.type);
    assert.deepEqual(epp.schedulingProfiles.map((p: any) => p.name), bundle.topology === 'pd' ? ['prefill', 'decode'] : ['default']);
    assert.deepEqual(values.router.extraServicePorts, [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8081 }]);
  }

  for (const d of deps) {
    const labels = d.spec.template.metadata.labels;
    for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) assert.equal(labels[k], v);
    const engine = engineContainer(d);
    const a = args(d);
    const role = labels['llm-d.ai/role'];
    assert.ok(role === 'prefill' || role === 'decode');
    // GPUs = TP x PP (x in-process DP), in limits and requests.
    const gpus = String(sizeOf(a, '--tensor-parallel-size', '-tp') * sizeOf(a, '--pipeline-parallel-size', '-pp') * sizeOf(a, '--data-parallel-size', '-dp'));
    assert.equal(engine.resources.limits['nvidia.com/gpu'], gpus, d.metadata.name);
    assert.equal(engine.resources.requests['nvidia.com/gpu'], gpus, d.metadata.name);
    // The engine port: argv, container port and pool/sidecar agree.
    const port = Number(flagValue(a, '--port'));
    assert.equal(namedPort(engine, 'modelserver'), port);
    assert.equal(flagValue(a, '--host'), undefined, 'vLLM binds every interface of the pod');
    assert.equal(engine.command.join(' '), 'vllm serve');
    const init = d.spec.template.spec.initContainers ?? [];
    if (bundle.topology === 'pd' && role === 'decode') {
      const sidecar = init.find((x: any) => x.name === 'routing-proxy');
      assert.ok(sidecar, 'decode pods carry the routing sidecar');
      assert.equal(sidecar.restartPolicy, 'Always');
      assert.equal(Number(flagValue(sidecar.args, '--port')), namedPort(sidecar, 'sidecar'));
      assert.equal(Number(flagValue(sidecar.args, '--port')), PORTS.poolTarget);
      assert.equal(Number(flagValue(sidecar.args, '--vllm-port')), port);
    } else {
      assert.equal(init.length, 0);
      assert.equal(port, PORTS.poolTarget, 'prefill and single-stage engines listen on the InferencePool target port');
    }
    // Probes on the engine's named port, sized for model loading; /dev/shm in memory.
    for (const p of ['startupProbe', 'readinessProbe', 'livenessProbe']) assert.equal(engine[p].httpGet.port, 'modelserver');
    assert.ok(engine.startupProbe.failureThreshold * engine.startupProbe.periodSeconds >= 30 * 60, 'startup budget of at least 30 min');
    const shm = d.spec.template.spec.volumes.find((v: any) => v.name === 'shm');
    assert.deepEqual(shm.emptyDir, { medium: 'Memory', sizeLimit: '20Gi' });
    assert.ok(engine.volumeMounts.some((m: any) => m.name === 'shm' && m.mountPath === '/dev/shm'));
    // Credentials only by Secret reference.
    for (const e of engine.env) if (/KEY|TOKEN/.test(e.name)) assert.ok(e.valueFrom?.secretKeyRef, `${e.name} comes from a Secret`);
    const key = env(d, 'VLLM_API_KEY');
    if (c.key === true) {
      assert.equal(key.valueFrom.secretKeyRef.key, 'VLLM_API_KEY');
      for (const p of ['startupProbe', 'readinessProbe', 'livenessProbe']) assert.equal(engine[p].httpGet.path, '/health', 'vLLM guards /v1 with the key');
    } else assert.equal(key, undefined);
    // NIXL wiring.
    const kvAt = a.indexOf('--kv-transfer-config');
    const kv = kvAt >= 0 ? JSON.parse(a[kvAt + 1]!) : null;
    if (kv?.kv_connector === 'NixlConnector') {
      assert.deepEqual(env(d, 'VLLM_NIXL_SIDE_CHANNEL_HOST').valueFrom, { fieldRef: { fieldPath: 'status.podIP' } });
      assert.equal(String(namedPort(engine, 'nixl')), env(d, 'VLLM_NIXL_SIDE_CHANNEL_PORT').value);
      assert.equal(kv.kv_load_failure_policy, 'fail');
      assert.equal(kv.engine_id, undefined, 'every NIXL pod gets its own engine id');
    } else assert.equal(namedPort(engine, 'nixl'), undefined);
    // The plan's own arguments: only --host, --port's value and the NIXL keys above differ.
    const planned = planArgs.get(d.metadata.name)!;
    const normalise = (xs: string[]): string[] => {
      const out: string[] = [];
      for (let i = 0; i < xs.length; i++) {
        if (xs[i] === '--host') i++;
        else if (xs[i] === '--port') {
          out.push('--port', '<port>');
          i++;
        }
        else if (xs[i] === '--kv-transfer-config') {
          const { engine_id: _e, kv_load_failure_policy: _p, ...rest } = JSON.parse(xs[i + 1]!);
          out.push(xs[i]!, JSON.stringify(rest));
          i++;
        } else out.push(xs[i]!);
      }
      return out;
    };
    assert.deepEqual(normalise(a), normalise(planned), `${d.metadata.name} runs the plan's arguments`);
  }

  // Services: selectors reach pods whose named target port exists, on that port's number.
  for (const s of objects.filter((o) => o.kind === 'Service')) {
    const selected = deps.filter((d) => Object.entries(s.spec.selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v));
    assert.equal(selected.length, 1, `${s.metadata.name} selects one Deployment`);
    for (const p of s.spec.ports) assert.equal(namedPort(engineContainer(selected[0]), p.targetPort), p.port);
  }
}

for (const c of CASES) {
  test(`invariants: ${c.title}`, async () => {
    const bundle = await renderTemplate(c.template, c.opts, c.change);
    const config = await templateConfig(c.template, c.change);
    const { plan } = buildClusterPlan(config, `/configs/${c.template}.json`, parseRenderOptions({ out: '/unused', ...c.opts }));
    // Each Deployment's planned args: the first engine of its group (groups list their engines).
    const planArgs = new Map<string, string[]>();
    for (const g of bundle.groups) planArgs.set(g.deployment, plan.engines.find((e) => e.name === g.engines[0])!.argv.slice(plan.command.length + 1));
    checkBundle(bundle, c, planArgs);
  });
}

test('DP engines become replicas of one Deployment behind one Service; 2P2D becomes two groups of two', async () => {
  const dp = await renderTemplate('data-parallel', { modelVolumeClaim: 'models' });
  assert.deepEqual(dp.groups.map((g) => [g.deployment, g.replicas, g.engines]), [['data-parallel-engine', 2, ['engine-0', 'engine-1']]]);
  assert.equal(dp.objects.filter((o) => o.kind === 'Service').length, 1);
  const xpyd = await renderTemplate('shared-storage-xpyd', { modelVolumeClaim: 'models', sharedStorageClaim: 'pd-kv' });
  assert.deepEqual(xpyd.groups.map((g) => [g.component, g.replicas]), [['prefill', 2], ['decode', 2]]);
  const mixed = await renderTemplate('nixl-1p1d', { modelVolumeClaim: 'models' }, (r) => (r.consumers = [{ gpus: [1], port: 8200 }, { gpus: [2, 3], port: 8201 }]));
  assert.deepEqual(mixed.groups.map((g) => [g.deployment, g.gpusPerPod]), [['nixl-1p1d-prefill', 1], ['nixl-1p1d-decode-0', 1], ['nixl-1p1d-decode-1', 2]]);
});

test('shared storage: the RWX claim is mounted at kv.sharedStoragePath in every pod; the model claim read-only at its folder', async () => {
  const b = await renderTemplate('shared-storage-1p1d', { modelVolumeClaim: 'models', sharedStorageClaim: 'pd-kv' }, (r) => (r.kv.sharedStoragePath = '/kv/cache'));
  for (const d of deployments(parseObjects(b.files.map((f) => f.text)))) {
    const vols = d.spec.template.spec.volumes;
    const mounts = engineContainer(d).volumeMounts;
    assert.deepEqual(vols.find((v: any) => v.name === 'kv-shared').persistentVolumeClaim, { claimName: 'pd-kv' });
    assert.deepEqual(mounts.find((m: any) => m.name === 'kv-shared'), { name: 'kv-shared', mountPath: '/kv/cache' });
    assert.deepEqual(vols.find((v: any) => v.name === 'model').persistentVolumeClaim, { claimName: 'models', readOnly: true });
    assert.deepEqual(mounts.find((m: any) => m.name === 'model'), { name: 'model', mountPath: '/mnt/models', readOnly: true });
    assert.equal(args(d)[0], '/mnt/models/Qwen3-4B-Instruct-2507');
    assert.equal(env(d, 'HF_TOKEN'), undefined, 'a local model needs no hub token');
    const sidecar = d.spec.template.spec.initContainers?.[0];
    if (sidecar) assert.equal(flagValue(sidecar.args, '--kv-connector'), 'shared-storage');
  }
});

test('a hub model with a claim downloads into HF_HOME on it (llm-d model-cache); HF_TOKEN from the named Secret', async () => {
  const b = await renderTemplate('tensor-parallel', { modelVolumeClaim: 'hf-cache', hfTokenSecret: 'my-hf' }, (r) => (r.model = HUB_MODEL));
  const [d] = deployments(parseObjects(b.files.map((f) => f.text)));
  assert.equal(env(d, 'HF_HOME').value, '/model-cache');
  assert.deepEqual(env(d, 'HF_TOKEN').valueFrom.secretKeyRef, { name: 'my-hf', key: 'HF_TOKEN', optional: true });
  assert.ok(engineContainer(d).volumeMounts.some((m: any) => m.name === 'model-cache' && m.mountPath === '/model-cache' && m.readOnly === undefined));
  assert.equal(args(d)[0], HUB_MODEL);
});
