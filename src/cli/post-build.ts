// Runs after tsc: make the bin entry points executable (npm does it on install, not for a local build).
import { chmodSync, existsSync } from 'node:fs';
for (const rel of ['./main.js', '../sim/main.js']) {
  const url = new URL(rel, import.meta.url);
  if (existsSync(url)) chmodSync(url, 0o755);
}
