import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, symlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { assertSafeCachePath, dangerReason } from '../../src/cache/safety.js';
import { clearCache } from '../../src/cache/clear.js';
import { ConfigError, UsageError } from '../../src/util/errors.js';
import { tempDir } from '../helpers/tmp.js';

const isConfigError = (re: RegExp) => (e: unknown) => e instanceof ConfigError && re.test(e.message) && !!e.hint;
const isUsageError = (re: RegExp) => (e: unknown) => e instanceof UsageError && re.test(e.message) && !!e.hint;

describe('assertSafeCachePath', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir('pd-cache-safety-')));
  after(() => cleanup());

  test('refuses the filesystem root', () => {
    assert.throws(() => assertSafeCachePath('/', '/'), isConfigError(/filesystem root/));
    assert.throws(() => assertSafeCachePath('/', '/mnt/pd_kv'), isUsageError(/not the configured/));
  });

  test('refuses top-level system folders, including /mnt itself', () => {
    for (const p of ['/usr', '/etc', '/bin', '/boot', '/dev', '/proc', '/sys', '/var', '/lib', '/opt', '/home', '/root', '/mnt', '/tmp', '/mnt/']) {
      assert.throws(() => assertSafeCachePath(p, p), isConfigError(/system folder/), p);
    }
  });

  test('refuses anything inside the OS trees', () => {
    for (const p of ['/usr/lib/pd_kv', '/etc/pd', '/boot/kv', '/proc/sys/x', '/sys/kernel', '/bin/x']) {
      assert.throws(() => assertSafeCachePath(p, p), isConfigError(/inside the system folder/), p);
    }
  });

  test('refuses the home folder, a folder containing it, and other users\' homes', () => {
    const home = homedir();
    assert.throws(() => assertSafeCachePath(home, home), isConfigError(/home folder|system folder/));
    assert.throws(() => assertSafeCachePath(dirname(home), dirname(home)), isConfigError(/home|system folder|root/));
    assert.throws(() => assertSafeCachePath('/home/alice', '/home/alice'), isConfigError(/home folder/));
    assert.equal(dangerReason(join(home, 'pd_kv')), null, 'a dedicated folder inside home is fine');
  });

  test('refuses relative paths (flag and config)', () => {
    assert.throws(() => assertSafeCachePath('pd_kv', '/mnt/pd_kv'), isUsageError(/not an absolute path/));
    assert.throws(() => assertSafeCachePath('./pd_kv', './pd_kv'), isConfigError(/kv.sharedStoragePath .* not an absolute path/));
  });

  test('refuses a path that is not the configured one, even a harmless one', async () => {
    const other = join(dir, 'other');
    await mkdir(other);
    assert.throws(() => assertSafeCachePath(other, join(dir, 'kv')), isUsageError(/not the configured shared storage path/));
  });

  test('allows the default /mnt/pd_kv and a dedicated temp folder, normalizing slashes', () => {
    assert.equal(assertSafeCachePath('/mnt/pd_kv', '/mnt/pd_kv').path, '/mnt/pd_kv');
    assert.equal(assertSafeCachePath('/mnt/pd_kv/', '/mnt//pd_kv').path, '/mnt/pd_kv');
    assert.equal(assertSafeCachePath('/dev/shm/pd_kv', '/dev/shm/pd_kv').path, '/dev/shm/pd_kv');
    assert.equal(assertSafeCachePath(join(dir, 'kv'), join(dir, 'kv')).realPath, null, 'a missing folder is fine');
  });

  test('checks where a symlinked cache path really points', async () => {
    const link = join(dir, 'kv-link-to-root');
    await symlink('/', link);
    assert.throws(() => assertSafeCachePath(link, link), isConfigError(/resolves to \/.*filesystem root/));
    const real = join(dir, 'real-kv');
    await mkdir(real);
    const good = join(dir, 'kv-link');
    await symlink(real, good);
    const safe = assertSafeCachePath(good, good);
    assert.equal(safe.realPath, real);
    // --path may name the real folder behind the configured link.
    assert.equal(assertSafeCachePath(real, good).path, good);
  });

  test('clearCache refuses before touching anything', async () => {
    await assert.rejects(clearCache({ path: '/', configuredPath: '/' }), ConfigError);
    await assert.rejects(clearCache({ path: '/usr', configuredPath: '/usr' }), ConfigError);
    await assert.rejects(clearCache({ path: '/etc', configuredPath: join(dir, 'kv') }), UsageError);
  });
});
