/**
 * What `pd render k8s` refuses, each with a hint: PD without a router, connectors a cluster cannot run, model paths
 * pods cannot see, credentials that would land in the bundle, NIXL prefill wider than decode, and a connector name
 * the image's vLLM rejects; how "auto" resolves from the image. Then the offline validation of rendered objects:
 * the Kubernetes schemas (kubernetes-models) report the object and the field, and pd's own checks catch what the
 * schemas do not (names, port ranges and names, references between objects).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IService } from 'kubernetes-models/v1/Service';
import { ConfigError, RuntimeError, UsageError } from '../../src/util/errors.js';
import { defaultBundleName, parseRenderOptions } from '../../src/stack/k8s/options.js';
import { imageVllmVersion } from '../../src/stack/k8s/cluster-plan.js';
import { assertBundleValid, bundleErrors, schemaErrors, type KubeObject } from '../../src/stack/k8s/validate.js';
import { HUB_MODEL, renderTemplate } from './helpers.js';

type ErrorClass = typeof UsageError | typeof ConfigError;

async function refused(p: Promise<unknown>, kind: ErrorClass, message: RegExp, hint: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof kind, `expected ${kind.name}, got ${String(e)}`);
    assert.match(e.message, message);
    assert.match(e.hint ?? '', hint);
    return true;
  });
}

const hub = (r: any): void => {
  r.model = HUB_MODEL;
};

test('PD with --router none is refused: nothing would do the prefill hop', async () => {
  await refused(renderTemplate('nixl-1p1d', { router: 'none' }, hub), UsageError, /PD stack needs a router/, /--router llm-d/);
});

test('connectors that cannot cross nodes or that llm-d cannot drive are refused', async () => {
  await refused(renderTemplate('p2p-nccl-1p1d', {}, hub), ConfigError, /P2pNcclConnector cannot be rendered/, /NixlConnector/);
  await refused(renderTemplate('nixl-1p1d', {}, (r) => (hub(r), (r.kv.connector = 'LMCacheConnectorV1'))), ConfigError, /LMCacheConnectorV1 cannot be rendered/, /ReadWriteMany/);
  await refused(renderTemplate('shared-storage-1p1d', {}, hub), UsageError, /ExampleConnector keeps KV in a folder/, /--shared-storage-claim CLAIM.*\/mnt\/pd_kv/);
  await refused(
    renderTemplate('shared-storage-1p1d', { sharedStorageClaim: 'kv' }, (r) => (hub(r), (r.kv.sharedStoragePath = '/dev/shm'))),
    ConfigError,
    /is a folder of the image itself/,
    /\/mnt\/pd_kv/,
  );
});

test('a local model needs a claim the user names; relative paths and system folders are refused', async () => {
  await refused(renderTemplate('tensor-parallel', {}), UsageError, /is a path on this machine/, /--model-volume-claim CLAIM.*mounted read-only at \/mnt\/models/);
  await refused(renderTemplate('tensor-parallel', { modelVolumeClaim: 'm' }, (r) => (r.model = './models/x')), UsageError, /relative local path/, /--model ORG\/NAME/);
  await refused(renderTemplate('tensor-parallel', { modelVolumeClaim: 'm' }, (r) => (r.model = '/usr/qwen')), UsageError, /over \/usr/, /one folder deeper/);
  const ok = await renderTemplate('tensor-parallel', { modelVolumeClaim: 'models' });
  assert.deepEqual(ok.model, { kind: 'local', path: '/mnt/models/Qwen3-4B-Instruct-2507', claim: 'models', mountPath: '/mnt/models' });
});

test('credentials never go into the bundle: --api-key in args and secret-looking env are refused', async () => {
  await refused(renderTemplate('tensor-parallel', {}, (r) => (hub(r), r.engine.args.push('--api-key', 'abc'))), ConfigError, /--api-key is in the args of engine-0/, /engine\.apiKey/);
  await refused(renderTemplate('tensor-parallel', {}, (r) => (hub(r), (r.engine.env.HF_TOKEN = 'hf_x'))), ConfigError, /HF_TOKEN in the env of engine-0 looks like a credential/, /--hf-token-secret/);
  await refused(renderTemplate('nixl-1p1d', {}, (r) => (hub(r), (r.consumers[0].env = { AWS_SECRET_ACCESS_KEY: 'x' }))), ConfigError, /AWS_SECRET_ACCESS_KEY in the env of consumer-0/, /Secret/);
  const keyed = await renderTemplate('nixl-1p1d', { apiKeySecret: 'engine-key' }, (r) => (hub(r), (r.engine.apiKey = 'sk-1')));
  assert.deepEqual(keyed.secrets.map((s) => [s.name, s.key, s.optional]), [['llm-d-hf-token', 'HF_TOKEN', true], ['engine-key', 'VLLM_API_KEY', false]]);
  const defaultName = await renderTemplate('nixl-1p1d', {}, (r) => (hub(r), (r.engine.apiKey = 'sk-1')));
  assert.equal(defaultName.secrets[1]!.name, 'nixl-1p1d-engine-api-key');
});

test('NixlConnector with prefill TP above decode TP is refused (vLLM asserts decode TP >= prefill TP)', async () => {
  await refused(
    renderTemplate('nixl-1p1d', {}, (r) => (hub(r), (r.producers = [{ gpus: [0, 1], port: 8100 }]))),
    ConfigError,
    /producers\[0\] \(prefill\) has tensor parallel size 2 but consumers\[0\] \(decode\) has 1/,
    /decode at least the tensor parallel size of prefill/,
  );
  const wider = await renderTemplate('nixl-1p1d', {}, (r) => (hub(r), (r.consumers = [{ gpus: [1, 2], port: 8200 }])));
  assert.deepEqual(wider.groups.map((g) => g.parallel.tensor), [1, 2]);
});

test('kv.connector "auto" resolves from the image tag or --vllm-version; an unknown image asks for the version', async () => {
  assert.equal(imageVllmVersion('docker.io/vllm/vllm-openai:v0.26.0'), '0.26.0');
  assert.equal(imageVllmVersion('vllm/vllm-openai:v0.11.2'), '0.11.2');
  assert.equal(imageVllmVersion('ghcr.io/me/vllm:v0.26.0'), null);
  const opts = { sharedStorageClaim: 'kv' };
  assert.equal((await renderTemplate('shared-storage-1p1d', opts, hub)).connector, 'ExampleConnector');
  assert.equal((await renderTemplate('shared-storage-1p1d', { ...opts, image: 'vllm/vllm-openai:v0.11.2' }, hub)).connector, 'SharedStorageConnector');
  assert.equal((await renderTemplate('shared-storage-1p1d', { ...opts, image: 'me/vllm:dev', vllmVersion: '0.12.0' }, hub)).connector, 'SharedStorageConnector');
  await refused(renderTemplate('shared-storage-1p1d', { ...opts, image: 'me/vllm:dev' }, hub), UsageError, /vLLM version of image me\/vllm:dev is unknown/, /--vllm-version/);
  await refused(
    renderTemplate('shared-storage-1p1d', opts, (r) => (hub(r), (r.kv.connector = 'SharedStorageConnector'))),
    ConfigError,
    /vLLM 0\.26\.0 does not accept SharedStorageConnector/,
    /"auto"/,
  );
  // Single-stage stacks have no connector: an unknown image is fine.
  assert.equal((await renderTemplate('tensor-parallel', { image: 'me/vllm:dev' }, hub)).connector, null);
});

test('local-machine plan problems do not block a cluster render, cluster-relevant ones do', async () => {
  // Shared GPU ids and clashing host ports are one machine's problems; pods have their own.
  const shared = await renderTemplate('data-parallel', {}, (r) => (hub(r), (r.engines = [{ gpus: [0], port: 8100 }, { gpus: [0], port: 8100 }])));
  assert.equal(shared.groups[0]!.replicas, 2);
  await assert.rejects(
    renderTemplate('tensor-parallel', {}, (r) => (hub(r), (r.engines[0].args = ['--tensor-parallel-size', '4']))),
    (e: unknown) => e instanceof ConfigError && /--tensor-parallel-size 4 needs 4 GPU/.test(e.message),
  );
});

test('render options: names are checked and the default name comes from the config file', () => {
  assert.throws(() => parseRenderOptions({ out: 'x', name: 'Bad_Name' }), (e: unknown) => e instanceof UsageError && /^--name must start with a letter/.test(e.message));
  assert.throws(() => parseRenderOptions({ out: 'x', name: 'a'.repeat(41) }), (e: unknown) => e instanceof UsageError && /^--name /.test(e.message));
  assert.throws(() => parseRenderOptions({ out: 'x', namespace: 'UPPER' }), (e: unknown) => e instanceof UsageError && /^--namespace /.test(e.message));
  assert.throws(() => parseRenderOptions({ out: 'x', sharedStorageClaim: 'My Claim' }), (e: unknown) => e instanceof UsageError && /^--shared-storage-claim /.test(e.message));
  assert.throws(() => parseRenderOptions({ out: 'x', vllmVersion: 'latest' }), (e: unknown) => e instanceof UsageError && /^--vllm-version /.test(e.message));
  assert.throws(() => parseRenderOptions({ out: 'x', router: 'istio' as never }), (e: unknown) => e instanceof UsageError && e.message === '--router must be one of llm-d, none (got "istio")');
  assert.equal(parseRenderOptions({ out: 'x' }).router, 'llm-d');
  assert.equal(defaultBundleName('/a/nixl-1p1d.json'), 'nixl-1p1d');
  assert.equal(defaultBundleName('/a/pd.config.json'), 'pd');
  assert.equal(defaultBundleName(null), 'pd');
  assert.equal(defaultBundleName('/a/1st_Try.JSON'), 'st-try');
  assert.equal(defaultBundleName('/a/123.json'), 'pd');
});

function deployment(): IDeployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'pd-decode', labels: { app: 'pd' } },
    spec: {
      selector: { matchLabels: { app: 'pd' } },
      template: {
        metadata: { labels: { app: 'pd' } },
        spec: {
          containers: [
            {
              name: 'modelserver',
              image: 'vllm',
              ports: [{ name: 'modelserver', containerPort: 8200 }],
              readinessProbe: { httpGet: { path: '/health', port: 'modelserver' } },
              volumeMounts: [{ name: 'shm', mountPath: '/dev/shm' }],
            },
          ],
          volumes: [{ name: 'shm', emptyDir: { medium: 'Memory' } }],
        },
      },
    },
  };
}

function service(): IService {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name: 'pd-decode' }, spec: { selector: { app: 'pd' }, ports: [{ port: 8200, targetPort: 'modelserver' }] } };
}

/** Break a copy of an object; the cast lets a test write what the types (rightly) forbid. */
function broken<T>(o: T, change: (x: any) => void): T {
  const copy = structuredClone(o);
  change(copy);
  return copy;
}

test('valid objects pass; every rendered bundle passes', async () => {
  assert.deepEqual(bundleErrors([deployment(), service()]), []);
  const b = await renderTemplate('nixl-1p1d', {}, (r) => (r.model = HUB_MODEL));
  assert.deepEqual(bundleErrors(b.objects), []);
});

test('schema errors name the object and the field', () => {
  const d = broken(deployment(), (x) => (x.spec.template.spec.containers[0].ports[0].containerPort = '8200'));
  assert.deepEqual(schemaErrors(d), ['Deployment/pd-decode: /spec/template/spec/containers/0/ports/0/containerPort must be integer']);
  const noSelector = broken(deployment(), (x) => delete x.spec.selector);
  assert.deepEqual(schemaErrors(noSelector), ['Deployment/pd-decode: /spec must have required property selector']);
  const svc = broken(service(), (x) => (x.spec.ports[0].port = 'http'));
  assert.match(schemaErrors(svc)[0]!, /^Service\/pd-decode: \/spec\/ports\/0\/port must be integer$/);
  assert.throws(
    () => assertBundleValid([d, service()]),
    (e: unknown) =>
      e instanceof RuntimeError && e.message === 'the rendered bundle is invalid: Deployment/pd-decode: /spec/template/spec/containers/0/ports/0/containerPort must be integer',
  );
});

test("pd's checks catch what the schemas let through", () => {
  const cases: Array<[KubeObject[], RegExp]> = [
    [[broken(deployment(), (x) => (x.metadata.name = 'Bad_Name')), service()], /Deployment\/Bad_Name: metadata\.name is not an RFC 1123 subdomain/],
    [[deployment(), broken(service(), (x) => (x.metadata.name = '1-decode'))], /Service\/1-decode: metadata\.name is not an RFC 1035 label/],
    [[broken(deployment(), (x) => (x.spec.template.spec.containers[0].name = 'Model_Server')), service()], /container name "Model_Server" is not an RFC 1123 label/],
    [[broken(deployment(), (x) => (x.spec.template.spec.containers[0].ports[0].containerPort = 70000)), service()], /port modelserver 70000 is not a port \(1-65535\)/],
    [[broken(deployment(), (x) => x.spec.template.spec.containers[0].ports.push({ name: 'nixl-side-channel', containerPort: 5600 })), service()], /port name "nixl-side-channel" is not an IANA service name/],
    [[deployment(), broken(service(), (x) => (x.spec.ports[0].targetPort = 'sidecar'))], /Service\/pd-decode: targetPort sidecar is not a named port of the pods it selects/],
    [[deployment(), broken(service(), (x) => (x.spec.selector = { app: 'other' }))], /Service\/pd-decode: spec\.selector matches no pod of the bundle/],
    [[broken(deployment(), (x) => (x.spec.selector.matchLabels = { app: 'other' })), service()], /spec\.selector app=other does not match the pod template labels/],
    [[broken(deployment(), (x) => (x.spec.template.spec.containers[0].readinessProbe.httpGet.port = 'http')), service()], /probe \/health names port http, which the container does not declare/],
    [[broken(deployment(), (x) => (x.spec.template.spec.containers[0].volumeMounts[0].name = 'cache')), service()], /volumeMount cache names no volume of the pod/],
    [[broken(deployment(), (x) => (x.metadata.labels['llm-d.ai/model'] = 'Qwen/Qwen3')), service()], /label llm-d\.ai\/model value "Qwen\/Qwen3" is not a valid label value/],
    [[broken(deployment(), (x) => (x.spec.template.spec.containers[0].env = [{ name: 'A=B', value: '1' }])), service()], /env name "A=B" is not a valid variable name/],
    [[deployment(), deployment(), service()], /Deployment\/pd-decode: two objects have this kind and name/],
  ];
  for (const [objects, expected] of cases) {
    const errors = bundleErrors(objects);
    assert.ok(errors.some((e) => expected.test(e)), `${expected}: got ${JSON.stringify(errors)}`);
  }
});
