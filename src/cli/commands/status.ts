import type { Command } from 'commander';
import { action } from '../run-command.js';
import { out, printJson } from '../output.js';
import { loadForCommand } from '../context.js';
import { stackStatus } from '../../stack/status.js';

const dur = (s: number | null | undefined): string =>
  s === null || s === undefined ? '-' : s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${s % 60}s` : `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

export function register(program: Command): void {
  const cmd = program
    .command('status')
    .description('show each engine (role, GPUs, port, pid, uptime, health, restarts, cache hits) and the proxy')
    .option('--json', 'print the status as JSON');
  cmd.action(
    action(async (flags: { json?: boolean }) => {
      const { config } = await loadForCommand(cmd);
      const s = await stackStatus(config.stateDir);
      if (flags.json) return printJson(s);
      if (!s.running) {
        process.stdout.write(
          s.stale
            ? `no stack is running, but ${config.stateDir} has state from a dead one: run \`pd down\` to clean up\n`
            : `no stack is running from ${config.stateDir} (start one with \`pd up\`)\n`,
        );
        return;
      }
      if (s.supervisorAlive === false) {
        process.stdout.write(
          `${out.red('the supervisor (pid ' + s.supervisorPid + ') is gone')}: its engines are running unsupervised and the proxy is down.\n` +
            `Run \`pd down\` to stop them (then \`pd up\` again).\n\n`,
        );
      } else process.stdout.write(
        `stack ${s.phase} for ${dur(s.uptimeSeconds)} · supervisor pid ${s.supervisorPid} · ${s.connector}${s.simulate ? ' · simulated' : ''} · ${s.model}\n\n`,
      );
      const rows = [['ENGINE', 'ROLE', 'GPUS', 'PORT', 'PID', 'UPTIME', 'HEALTH', 'RESTARTS', 'CACHE HITS']];
      for (const e of s.engines) {
        rows.push([e.name, e.role, e.gpus.join(','), String(e.port), String(e.pid ?? '-'), dur(e.uptimeSeconds), e.healthy ? 'healthy' : e.status, String(e.restarts), String(e.cacheHits)]);
      }
      process.stdout.write(table(rows).replace(/\bhealthy\b/g, out.green('healthy')));
      if (s.proxy) {
        process.stdout.write(
          `\nproxy ${s.proxy.url} · ${s.proxy.healthy ? out.green('healthy') : out.red('unhealthy')} · in-flight ${s.proxy.inFlight} · queued ${s.proxy.queued} · ${s.proxy.reqPerSec.toFixed(1)} req/s · ${s.proxy.requestsTotal} requests · ${s.proxy.rejected} rejected\n`,
        );
      }
    }),
  );
}
