/** The starting configs that `pd init --template NAME` writes (files in templates/). */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { UsageError } from '../util/errors.js';

export const TEMPLATES: Record<string, { file: string; description: string }> = {
  'shared-storage-1p1d': {
    file: 'shared-storage-1p1d.json',
    description: 'the reference setup: SharedStorageConnector on /mnt/pd_kv, producer GPU 0 :8100, consumer GPU 1 :8200',
  },
  'nixl-1p1d': { file: 'nixl-1p1d.json', description: 'NixlConnector, producer GPU 0 :8100, consumer GPU 1 :8200' },
  'shared-storage-xpyd': {
    file: 'shared-storage-xpyd.json',
    description: '2 producers (GPU 0,1) and 2 consumers (GPU 2,3) with SharedStorage, connector "auto"',
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
