/** pd's own package: its root folder (the checkout or the installed package) and version. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The package root: two folders up from this file in both src/util/ (tsx) and dist/util/ (built). */
export function packageRoot(): string {
  return fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
}

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
