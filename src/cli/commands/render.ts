import type { Command } from 'commander';
import { action } from '../run-command.js';
import { out, printJson, warn } from '../output.js';
import { loadForCommand } from '../context.js';
import { renderK8s } from '../../stack/k8s/bundle.js';
import { writeBundle } from '../../stack/k8s/write.js';
import { nextSteps } from '../../stack/k8s/next-steps.js';
import { parseRenderOptions, ROUTERS } from '../../stack/k8s/options.js';
import { DEFAULT_HF_TOKEN_SECRET, DEFAULT_VLLM_IMAGE, LLMD_RELEASE, ROUTER_CHART_VERSION, SIDECAR_IMAGE } from '../../stack/k8s/llm-d.js';

interface RenderFlags {
  out: string;
  name?: string;
  namespace?: string;
  image?: string;
  router?: string;
  sharedStorageClaim?: string;
  modelVolumeClaim?: string;
  hfTokenSecret?: string;
  apiKeySecret?: string;
  vllmVersion?: string;
  model?: string;
  force?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  const render = program.command('render').description('render the stack for a cluster: `pd render k8s` writes a kustomize bundle for Kubernetes and llm-d');
  const k8s = render
    .command('k8s')
    .description('write a kustomize bundle (Deployments, Services, llm-d router values) that runs the same `vllm serve` engines on Kubernetes')
    .requiredOption('--out <dir>', 'folder to write the bundle to (created when missing)')
    .option('--name <name>', 'bundle name: object prefix, llm-d.ai/guide label, helm release (default: the config file name)')
    .option('--namespace <ns>', 'namespace written into kustomization.yaml (default: none, the current kubectl namespace)')
    .option('--image <image>', `vLLM image (default: ${DEFAULT_VLLM_IMAGE}, llm-d ${LLMD_RELEASE}'s)`)
    .option('--router <router>', `${ROUTERS.join(' | ')}: llm-d's router chart values (+ the decode sidecar for PD), or Services only`, 'llm-d')
    .option('--shared-storage-claim <claim>', 'ReadWriteMany PVC for SharedStorage/ExampleConnector, mounted at kv.sharedStoragePath')
    .option('--model-volume-claim <claim>', "PVC for the model: a local model path's folder (read-only), or the hub cache (HF_HOME)")
    .option('--model <id>', 'model to serve (overrides model; e.g. a hub id instead of a local path)')
    .option('--hf-token-secret <name>', `Secret with HF_TOKEN for hub models (default: ${DEFAULT_HF_TOKEN_SECRET})`)
    .option('--api-key-secret <name>', 'Secret with VLLM_API_KEY when engine.apiKey is set (default: <name>-engine-api-key)')
    .option('--vllm-version <x.y.z>', "the image's vLLM version, to resolve kv.connector \"auto\" (default: from a vllm/vllm-openai:vX.Y.Z tag)")
    .option('--force', 'overwrite files in --out that pd did not write')
    .option('--json', 'print what was written as JSON');
  k8s.action(
    action(async (flags: RenderFlags) => {
      const opts = parseRenderOptions({
        out: flags.out,
        name: flags.name,
        namespace: flags.namespace,
        image: flags.image,
        router: flags.router as never,
        sharedStorageClaim: flags.sharedStorageClaim,
        modelVolumeClaim: flags.modelVolumeClaim,
        hfTokenSecret: flags.hfTokenSecret,
        apiKeySecret: flags.apiKeySecret,
        vllmVersion: flags.vllmVersion,
        force: flags.force === true,
      });
      const { config, path } = await loadForCommand(k8s, { model: flags.model });
      const bundle = renderK8s(config, path, opts);
      const written = await writeBundle(opts.out, bundle.files, opts.force);
      const steps = nextSteps(bundle, opts.out, path);
      if (flags.json) {
        printJson({
          dir: written.dir,
          files: written.written,
          removed: written.removed,
          name: bundle.name,
          namespace: bundle.namespace,
          topology: bundle.topology,
          connector: bundle.connector,
          router: bundle.router,
          image: bundle.image,
          vllmVersion: bundle.vllmVersion,
          llmd: { release: LLMD_RELEASE, routerChart: ROUTER_CHART_VERSION, sidecarImage: SIDECAR_IMAGE },
          groups: bundle.groups,
          secrets: bundle.secrets,
          warnings: bundle.warnings,
          steps,
        });
        return;
      }
      for (const w of bundle.warnings) warn(w);
      const lines = [`${out.green('✔')} wrote ${written.dir}: ${written.written.join(', ')}`];
      if (written.removed.length > 0) lines.push(`  removed stale ${written.removed.join(', ')}`);
      const kind = bundle.topology === 'pd' ? `PD over ${bundle.connector}` : 'single-stage';
      lines.push(`  ${out.bold(bundle.name)}: ${kind}, ${bundle.objects.length} objects valid against the Kubernetes 1.33 schemas`);
      for (const g of bundle.groups) {
        const sidecar = g.sidecar ? ' behind routing-proxy :8000' : '';
        lines.push(`    ${g.component.padEnd(10)} ${String(g.replicas).padStart(2)} x ${g.gpusPerPod} GPU  Deployment/${g.deployment} :${g.port}${sidecar}`);
      }
      const version = bundle.vllmVersion === null ? 'version unknown' : `vLLM ${bundle.vllmVersion}`;
      lines.push(`  image ${bundle.image} (${version})`);
      if (bundle.router === 'llm-d') lines.push(`  llm-d ${LLMD_RELEASE}: router chart ${ROUTER_CHART_VERSION}${bundle.topology === 'pd' ? `, sidecar ${SIDECAR_IMAGE}` : ''}`);
      lines.push('', out.bold('next:'));
      for (const s of steps) {
        lines.push(out.dim(`  # ${s.title}`));
        for (const c of s.commands) lines.push(`  ${c}`);
      }
      process.stdout.write(lines.join('\n') + '\n');
    }),
  );
}
