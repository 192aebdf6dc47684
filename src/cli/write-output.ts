/** Write a file the user named on the command line, turning the usual mistakes into usage errors. */
import { writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { UsageError } from '../util/errors.js';

export async function writeOutput(path: string, text: string): Promise<void> {
  const abs = resolve(path);
  try {
    await writeFile(abs, text);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    const why: Record<string, string> = {
      ENOENT: `the folder ${dirname(abs)} does not exist`,
      ENOTDIR: `${dirname(abs)} is not a folder`,
      EISDIR: `${abs} is a folder`,
      EACCES: `no permission to write ${abs}`,
      EROFS: `${dirname(abs)} is on a read-only filesystem`,
    };
    throw new UsageError(`cannot write ${abs}: ${why[code] ?? code}`, { hint: 'Pick another path with -o/--out (create its folder first).' });
  }
}
