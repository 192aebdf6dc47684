/**
 * Refuse cache paths where deleting "everything inside" would be a disaster. `pd clear-cache` and the janitor only
 * ever touch the configured `kv.sharedStoragePath`, and only when it is a dedicated folder: never `/`, a top-level
 * system folder (`/mnt` itself is refused, `/mnt/pd_kv` — the default — is fine), anything inside the OS trees
 * (/usr, /etc, ...), a home folder or a folder that contains your home, or a relative path. Symlinks are resolved and
 * the target is checked too, so `/mnt/pd_kv -> /` is refused.
 */
import { homedir } from 'node:os';
import { isAbsolute, resolve, sep } from 'node:path';
import { realpathSync } from 'node:fs';
import { ConfigError, UsageError } from '../util/errors.js';
import { overlap, type ProtectedPath } from '../config/checks.js';

/** Folders whose contents are never a KV cache (the folder itself is refused; a dedicated subfolder is allowed). */
export const SYSTEM_FOLDERS: readonly string[] = [
  '/bin', '/boot', '/dev', '/dev/shm', '/etc', '/home', '/lib', '/lib32', '/lib64', '/libx32', '/lost+found',
  '/media', '/mnt', '/opt', '/proc', '/root', '/run', '/run/user', '/sbin', '/snap', '/srv', '/sys', '/tmp', '/usr',
  '/usr/local', '/var', '/var/cache', '/var/lib', '/var/log', '/var/tmp',
  // macOS
  '/Applications', '/Library', '/System', '/Users', '/Volumes', '/private', '/private/tmp', '/private/var',
];

/** Trees that belong to the OS: nothing inside them may be cleared. */
export const PROTECTED_TREES: readonly string[] = [
  '/bin', '/boot', '/etc', '/lib', '/lib32', '/lib64', '/libx32', '/proc', '/sbin', '/sys', '/usr',
  '/System', '/Library', '/Applications',
];

const CONFIG_HINT =
  'Set kv.sharedStoragePath (and the engines\' shared_storage_path) to a folder used only for KV files, such as /mnt/pd_kv.';

function isInside(child: string, parent: string): boolean {
  return parent === '/' ? child !== '/' : child.startsWith(parent + sep);
}

function isAncestorOrSame(path: string, of: string): boolean {
  return path === of || isInside(of, path);
}

function homes(): string[] {
  const list = [homedir(), process.env.HOME].filter((h): h is string => typeof h === 'string' && isAbsolute(h));
  return [...new Set(list.map((h) => resolve(h)))].filter((h) => h !== '/');
}

/** Why `path` (absolute, normalized) must not be cleared, or null when it is fine. */
export function dangerReason(path: string): string | null {
  if (path === '/') return 'is the filesystem root';
  if (SYSTEM_FOLDERS.includes(path)) return 'is a top-level system folder';
  const tree = PROTECTED_TREES.find((t) => isInside(path, t));
  if (tree) return `is inside the system folder ${tree}`;
  for (const home of homes()) {
    if (path === home) return 'is your home folder';
    if (isAncestorOrSame(path, home)) return `contains your home folder (${home})`;
  }
  const parts = path.split(sep).filter(Boolean);
  if (parts.length === 2 && (parts[0] === 'home' || parts[0] === 'Users')) return "is a user's home folder";
  return null;
}

function realOrNull(path: string): string | null {
  try {
    return realpathSync.native(path);
  } catch {
    return null;
  }
}

export interface SafeCachePath {
  /** The normalized path as configured/given. */
  path: string;
  /** Its real path (symlinks resolved), or null when it does not exist yet. */
  realPath: string | null;
}

/**
 * Throws unless `path` is the configured shared storage path and a dedicated folder that is safe to empty.
 * A bad configured path is a ConfigError; a `--path` that differs from the configured one is a UsageError.
 * `protect` lists pd's own folders and files (protectedPaths() of the config): the cache path may not equal,
 * contain or sit inside any of them, symlinks resolved on both sides.
 */
export function assertSafeCachePath(path: string, configuredPath: string, protect: readonly ProtectedPath[] = []): SafeCachePath {
  if (!isAbsolute(configuredPath)) {
    throw new ConfigError(`kv.sharedStoragePath ${JSON.stringify(configuredPath)} is not an absolute path`, {
      hint: 'Use an absolute path such as /mnt/pd_kv (the engines resolve it from their own working directory).',
    });
  }
  if (!isAbsolute(path)) {
    throw new UsageError(`cache path ${JSON.stringify(path)} is not an absolute path`, {
      hint: `Pass the absolute path, e.g. --path ${resolve(configuredPath)}, or leave --path out to use the configured one.`,
    });
  }
  const configured = resolve(configuredPath);
  const given = resolve(path);
  const configuredReal = realOrNull(configured);
  const givenReal = realOrNull(given);

  for (const [p, label] of [
    [configured, 'the configured kv.sharedStoragePath'],
    [configuredReal, 'the real path of kv.sharedStoragePath'],
  ] as const) {
    if (p === null) continue;
    const reason = dangerReason(p);
    if (reason) {
      const shown = p === configured ? p : `${configured} (resolves to ${p})`;
      throw new ConfigError(`refusing to clear ${shown}: ${label} ${reason}`, { hint: CONFIG_HINT });
    }
  }

  for (const p of protect) {
    const real = realOrNull(p.path) ?? p.path;
    for (const [mine, theirs] of [
      [configured, p.path],
      [configuredReal, real],
    ] as const) {
      if (mine === null) continue;
      const how = overlap(mine, theirs);
      if (how === null) continue;
      throw new ConfigError(`refusing to clear ${configured}: the KV cache path ${mine} ${how} ${p.label} (${theirs})`, {
        hint: 'Clearing the cache deletes everything inside that folder: give kv.sharedStoragePath a folder of its own, apart from pd\'s files (e.g. /mnt/pd_kv).',
      });
    }
  }

  const same = given === configured || (givenReal !== null && givenReal === configuredReal);
  if (!same) {
    const reason = dangerReason(givenReal ?? given);
    throw new UsageError(
      `refusing to clear ${given}: it is not the configured shared storage path (${configured})` +
        (reason ? ` and it ${reason}` : ''),
      {
        hint:
          'pd only deletes the folder the engines write to. Leave --path out, or point kv.sharedStoragePath at ' +
          'that folder in your config (-c) if the engines really use it.',
      },
    );
  }
  return { path: configured, realPath: configuredReal };
}
