import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temp dir; call the returned cleanup in after()/finally. */
export async function tempDir(prefix = 'pd-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  // Under test/run.mjs every temp dir lives below one root that the runner sweeps afterwards.
  const dir = await mkdtemp(join(process.env.PD_TEST_TMP_ROOT ?? tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
