/** Where the built simulator executable lives, for spawning it (`process.execPath [simEntryPath(), 'serve', ...]`). */
import { fileURLToPath } from 'node:url';

/**
 * Absolute path of dist/sim/main.js. From dist/sim/entry.js that is the sibling main.js; from src/sim/entry.ts
 * (tsx) it is ../../dist/sim/main.js, the built file (run `npm run build` first).
 */
export function simEntryPath(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) return fileURLToPath(new URL('../../dist/sim/main.js', import.meta.url));
  return fileURLToPath(new URL('./main.js', import.meta.url));
}
