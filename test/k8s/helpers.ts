/** Rendering templates in-process, and reading bundles back, for the `pd render k8s` tests. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { configSchema, type PdConfig } from '../../src/config/schema.js';
import { readTemplate } from '../../src/config/templates.js';
import { renderK8s, type Bundle } from '../../src/stack/k8s/bundle.js';
import { parseRenderOptions, type RenderOptionsInput } from '../../src/stack/k8s/options.js';

export const HUB_MODEL = 'Qwen/Qwen3-4B-Instruct-2507';

/** A template's config, optionally changed, as `pd` would load it. */
export async function templateConfig(name: string, change?: (raw: any) => void): Promise<PdConfig> {
  const raw = JSON.parse(await readTemplate(name));
  delete raw.$schema;
  change?.(raw);
  return configSchema.parse(raw);
}

export async function renderTemplate(name: string, opts: Partial<RenderOptionsInput>, change?: (raw: any) => void): Promise<Bundle> {
  const config = await templateConfig(name, change);
  return renderK8s(config, `/configs/${name}.json`, parseRenderOptions({ out: '/unused', ...opts }));
}

/** Every Kubernetes object of a set of YAML texts (comments dropped). */
export function parseObjects(texts: readonly string[]): any[] {
  return texts.flatMap((t) => parseAllDocuments(t).map((d) => d.toJS())).filter((o) => o !== null && o !== undefined);
}

export async function readBundleFile(dir: string, path: string): Promise<string> {
  return readFile(join(dir, path), 'utf8');
}

/** kubectl on PATH (the machine image has /usr/bin/kubectl), or null. */
export function kubectlPath(): string | null {
  for (const d of (process.env.PATH ?? '').split(':')) if (d && existsSync(join(d, 'kubectl'))) return join(d, 'kubectl');
  return null;
}

/** `kubectl kustomize DIR`: exit code, stdout and stderr. */
export function kustomize(kubectl: string, dir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(kubectl, ['kustomize', dir], { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

export function deployments(objects: readonly any[]): any[] {
  return objects.filter((o) => o.kind === 'Deployment');
}

export function engineContainer(d: any): any {
  return d.spec.template.spec.containers.find((c: any) => c.name === 'modelserver');
}

/** The value of `--flag V` or `--flag=V` in an argument list. */
export function flagValue(args: readonly string[], flag: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === flag) return args[i + 1];
    if (args[i]!.startsWith(`${flag}=`)) return args[i]!.slice(flag.length + 1);
  }
  return undefined;
}
