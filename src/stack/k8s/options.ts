/**
 * The options of `pd render k8s`: one zod schema (types by z.infer), each field named by its flag in errors.
 */
import { basename, extname } from 'node:path';
import * as z from 'zod';
import { UsageError } from '../../util/errors.js';
import { DEFAULT_HF_TOKEN_SECRET, DEFAULT_VLLM_IMAGE } from './llm-d.js';

export const ROUTERS = ['llm-d', 'none'] as const;
export type Router = (typeof ROUTERS)[number];

/** RFC 1123 label (namespaces, label-free names). */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** RFC 1035 label (Service names must start with a letter). */
export const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
/** RFC 1123 subdomain (Deployment, Secret and PersistentVolumeClaim names). */
export const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The router chart truncates the release name to 40 characters before adding -epp; pd keeps names within it. */
export const MAX_NAME = 40;

const subdomain = (what: string) =>
  z.string().max(253).regex(DNS_SUBDOMAIN, `must be a Kubernetes ${what} name (lower-case letters, digits, '-' and '.')`);

export const renderOptionsSchema = z
  .object({
    out: z.string().min(1).describe('Folder the bundle is written to.'),
    name: z
      .string()
      .max(MAX_NAME)
      .regex(DNS_1035_LABEL, "must start with a letter and hold only lower-case letters, digits and '-'")
      .optional()
      .describe('Bundle name: object name prefix, llm-d.ai/guide label, helm release (default: the config file name).'),
    namespace: z.string().max(63).regex(DNS_LABEL, "must be a namespace name (lower-case letters, digits and '-')").optional(),
    image: z.string().min(1).regex(/^\S+$/, 'must be an image reference without spaces').default(DEFAULT_VLLM_IMAGE),
    router: z.enum(ROUTERS).default('llm-d'),
    sharedStorageClaim: subdomain('PersistentVolumeClaim').optional(),
    modelVolumeClaim: subdomain('PersistentVolumeClaim').optional(),
    hfTokenSecret: subdomain('Secret').default(DEFAULT_HF_TOKEN_SECRET),
    apiKeySecret: subdomain('Secret').optional(),
    vllmVersion: z
      .string()
      .regex(/^v?\d+\.\d+(\.\d+)?\S*$/, 'must be a vLLM version such as 0.26.0')
      .optional(),
    force: z.boolean().default(false),
  })
  .strict();

export type RenderOptionsInput = z.input<typeof renderOptionsSchema>;
export type RenderOptions = z.infer<typeof renderOptionsSchema>;

const FLAGS: Record<string, string> = {
  out: '--out',
  name: '--name',
  namespace: '--namespace',
  image: '--image',
  router: '--router',
  sharedStorageClaim: '--shared-storage-claim',
  modelVolumeClaim: '--model-volume-claim',
  hfTokenSecret: '--hf-token-secret',
  apiKeySecret: '--api-key-secret',
  vllmVersion: '--vllm-version',
  force: '--force',
};

/** Parse the flags; a bad value is a UsageError naming the flag. */
export function parseRenderOptions(raw: RenderOptionsInput): RenderOptions {
  const r = renderOptionsSchema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const key = String(issue.path[0] ?? '');
  const flag = FLAGS[key] ?? key;
  const value = (raw as Record<string, unknown>)[key];
  const shown = value === undefined ? '' : ` (got ${JSON.stringify(value)})`;
  const message = issue.code === 'invalid_value' && key === 'router' ? `must be one of ${ROUTERS.join(', ')}` : issue.message;
  throw new UsageError(`${flag} ${message}${shown}`, {
    hint: key === 'name' ? `Pick a name of at most ${MAX_NAME} characters, e.g. --name pd-nixl.` : `Fix ${flag}; \`pd render k8s --help\` lists the flags.`,
  });
}

/**
 * The default bundle name: the config file's name (nixl-1p1d.json → nixl-1p1d), so bundles rendered from different
 * configs into one namespace do not select each other's pods; "pd" without a file (or for pd.config.json).
 */
export function defaultBundleName(configPath: string | null): string {
  if (configPath === null) return 'pd';
  const stem = basename(configPath, extname(configPath));
  if (stem === 'pd.config' || stem === 'pd') return 'pd';
  let name = stem
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .slice(0, MAX_NAME)
    .replace(/-+$/, '');
  if (name === '') name = 'pd';
  return name;
}
