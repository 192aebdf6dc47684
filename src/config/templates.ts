/** The starting configs that `pd init --template NAME` writes (files in templates/). */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { UsageError } from '../util/errors.js';

/** Every column of the comparison sheet has a template; `bench.set` names its block. */
export const TEMPLATES: Record<string, { file: string; set: string; description: string }> = {
  'shared-storage-1p1d': {
    file: 'shared-storage-1p1d.json',
    set: 'pd-disaggregation',
    description:
      'PD, the reference setup: SharedStorage/ExampleConnector ("auto") on /mnt/pd_kv, prefill GPU 0 :8100, decode GPU 1 :8200 ' +
      '(storage speed is its cost: `pd doctor` measures it; on one machine /dev/shm/pd_kv is much faster)',
  },
  'nixl-1p1d': {
    file: 'nixl-1p1d.json',
    set: 'pd-disaggregation-nixl',
    description: 'PD over NixlConnector (GPU-to-GPU KV transfer): prefill GPU 0 :8100, decode GPU 1 :8200',
  },
  'p2p-nccl-1p1d': {
    file: 'p2p-nccl-1p1d.json',
    set: 'pd-disaggregation-p2p',
    description: 'PD over P2pNcclConnector (NCCL KV transfer, request ids name both ends): prefill GPU 0, decode GPU 1',
  },
  'tensor-parallel': {
    file: 'tensor-parallel.json',
    set: 'tensor-parallelism',
    description: 'one engine on GPUs 0,1 with --tensor-parallel-size 2 (no KV connector), behind the single-stage proxy',
  },
  'pipeline-parallel': {
    file: 'pipeline-parallel.json',
    set: 'pipeline-parallelism',
    description: 'one engine on GPUs 0,1 with --pipeline-parallel-size 2 (no KV connector), behind the single-stage proxy',
  },
  'data-parallel': {
    file: 'data-parallel.json',
    set: 'data-parallelism',
    description: 'two engines, one GPU each (no KV connector); the proxy balances whole requests between them',
  },
  'shared-storage-xpyd': {
    file: 'shared-storage-xpyd.json',
    set: 'pd-disaggregation',
    description: 'PD 2P2D: 2 producers (GPU 0,1) and 2 consumers (GPU 2,3) with SharedStorage, connector "auto" (see `pd doctor` for its storage speed)',
  },
};

export const DEFAULT_TEMPLATE = 'shared-storage-1p1d';

/** The package's templates/ folder (works from dist/ and from src/ under tsx). */
export function templatesDir(): string {
  return join(fileURLToPath(import.meta.url), '..', '..', '..', 'templates');
}

export async function readTemplate(name: string): Promise<string> {
  const t = TEMPLATES[name];
  if (!t) {
    throw new UsageError(`unknown template "${name}"`, {
      hint: `Choose one of: ${Object.keys(TEMPLATES).join(', ')}.`,
    });
  }
  return readFile(join(templatesDir(), t.file), 'utf8');
}
