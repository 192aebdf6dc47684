/**
 * `--engine vllm`: run `vllm bench serve` with the same parameters as the built-in generator, then read the
 * JSON it saved with --save-result --save-detailed (never its stdout) and turn it into a RunResult.
 * vLLM's stdout/stderr are passed through to our stderr so `--json` output stays clean.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { RuntimeError, UsageError } from '../util/errors.js';
import { describeDataset, isSynthetic } from './dataset.js';
import { rateLabel, runName as defaultRunName, type RunOptions, type RunOutput } from './run.js';
import { runResultSchema, type RequestRecord } from './result.js';
import { firstServedModel } from './target.js';
import { pdVersion, vllmDate, writeRunFiles } from './write.js';
import { withP99 } from './stats.js';
import { endpointPath } from './request.js';

export interface VllmEngineOptions extends RunOptions {
  /** The vLLM executable (config engine.command). */
  command?: string;
  /** Extra arguments appended to `vllm bench serve`. */
  extraArgs?: string[];
}

export function vllmBenchArgs(o: VllmEngineOptions, served: { name: string; root: string }, resultDir: string, fileName: string): string[] {
  const args = [
    'bench',
    'serve',
    '--backend',
    o.endpoint === 'chat' ? 'openai-chat' : 'openai',
    '--base-url',
    o.target,
    '--endpoint',
    endpointPath(o.endpoint),
    '--model',
    served.root,
    '--served-model-name',
    served.name,
    '--num-prompts',
    String(o.count),
    '--request-rate',
    rateLabel(o.rate),
    '--burstiness',
    String(o.burstiness ?? 1),
    '--seed',
    String(o.seed ?? 0),
    '--percentile-metrics',
    'ttft,tpot,itl,e2el',
    '--metric-percentiles',
    withP99(o.percentiles ?? [50, 90, 95, 99]).join(','),
    '--save-result',
    '--save-detailed',
    '--result-dir',
    resultDir,
    '--result-filename',
    fileName,
  ];
  const d = o.dataset;
  if (isSynthetic(d)) {
    if (d.kind === 'prefix-sharing') {
      // vLLM's prefix_repetition dataset: K prefixes, each request one of them plus a suffix.
      args.push('--dataset-name', 'prefix_repetition', '--prefix-repetition-prefix-len', String(d.prefixLen ?? 256));
      args.push('--prefix-repetition-suffix-len', String(d.inputLen), '--prefix-repetition-num-prefixes', String(d.numPrefixes ?? 10));
      args.push('--prefix-repetition-output-len', String(d.outputLen));
    } else {
      if (d.kind === 'multi-turn') throw new UsageError('--engine vllm has no multi-turn dataset', { hint: 'use the built-in engine for --dataset multi-turn' });
      args.push('--dataset-name', 'random', '--random-input-len', String(d.inputLen), '--random-output-len', String(d.outputLen));
      if (d.rangeRatio) args.push('--random-range-ratio', String(d.rangeRatio));
      if (d.prefixLen) args.push('--random-prefix-len', String(d.prefixLen));
    }
  } else if (d.kind === 'sharegpt') {
    args.push('--dataset-name', 'sharegpt', '--dataset-path', d.path);
    if (d.outputLen) args.push('--sharegpt-output-len', String(d.outputLen));
  } else {
    args.push('--dataset-name', 'custom', '--dataset-path', d.path);
    if (d.outputLen) args.push('--custom-output-len', String(d.outputLen));
  }
  if (o.ignoreEos ?? true) args.push('--ignore-eos');
  if (o.maxConcurrency) args.push('--max-concurrency', String(o.maxConcurrency));
  if (o.numWarmups) args.push('--num-warmups', String(o.numWarmups));
  const r = o.request;
  if (r?.label) args.push('--label', r.label);
  if (r?.requestIdPrefix) args.push('--request-id-prefix', r.requestIdPrefix);
  if (r?.headers) args.push('--header', ...Object.entries(r.headers).map(([k, v]) => `${k}=${v}`));
  if (r?.metadata) args.push('--metadata', ...Object.entries(r.metadata).map(([k, v]) => `${k}=${v}`));
  if (r?.extraBody) args.push('--extra-body', JSON.stringify(r.extraBody));
  if (o.slos && Object.keys(o.slos).length) {
    args.push('--goodput', ...Object.entries(o.slos).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}:${v}`));
  }
  return [...args, ...(o.extraArgs ?? [])];
}

export async function runWithVllm(o: VllmEngineOptions): Promise<RunOutput> {
  const startedAt = new Date();
  const served = o.model ? { name: o.model, root: o.modelPath ?? o.model } : await firstServedModel(o.target, o.apiKey);
  const tmp = await mkdtemp(join(tmpdir(), 'pd-vllm-bench-'));
  const fileName = 'result.json';
  const command = o.command ?? 'vllm';
  try {
    const args = vllmBenchArgs(o, served, tmp, fileName);
    const env = o.apiKey ? { OPENAI_API_KEY: o.apiKey } : {};
    const proc = execa(command, args, { stdout: process.stderr, stderr: process.stderr, env, reject: false, cancelSignal: o.stopSignal, forceKillAfterDelay: 30_000 });
    const res = await proc;
    if (res.failed && !o.stopSignal?.aborted) {
      const why = (res as { code?: string }).code === 'ENOENT' ? `\`${command}\` was not found on PATH` : `\`${command} bench serve\` exited with ${res.exitCode ?? res.signal}`;
      throw new RuntimeError(why, { hint: 'install vLLM on this machine, set engine.command in the config, or drop --engine vllm to use the built-in generator' });
    }
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(await readFile(join(tmp, fileName), 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new RuntimeError(`\`${command} bench serve\` did not save a readable result JSON (${(e as Error).message})`, {
        hint: 'check its output above; pd needs --save-result support (vLLM ≥ 0.10)',
      });
    }
    return await fromVllmJson(raw, o, startedAt);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Convert a `vllm bench serve --save-result` JSON to a RunResult (and per-request records when detailed). */
export async function fromVllmJson(raw: Record<string, unknown>, o: RunOptions, startedAt = new Date()): Promise<RunOutput> {
  const num = (k: string): number => (typeof raw[k] === 'number' ? (raw[k]) : 0);
  const errors = Array.isArray(raw.errors) ? (raw.errors as unknown[]).map((e) => (typeof e === 'string' ? e : e == null ? '' : JSON.stringify(e))) : undefined;
  const completed = num('completed');
  const failed = typeof raw.failed === 'number' ? raw.failed : errors ? errors.filter((e) => e !== '').length : Math.max(0, num('num_prompts') - completed);
  const sent = completed + failed;
  const errorKinds: Record<string, number> = {};
  if (errors) {
    for (const e of errors) if (e !== '') errorKinds.vllm_error = (errorKinds.vllm_error ?? 0) + 1;
  } else if (failed > 0) errorKinds.vllm_error = failed;
  const percentiles = withP99(o.percentiles ?? [50, 90, 95, 99]);
  const name = o.runName ?? defaultRunName(o.kind, o.rate, o.count, vllmDate(startedAt));
  const result = runResultSchema.parse({
    ...raw,
    failed,
    pd_version: pdVersion(),
    pd_started_at: startedAt.toISOString(),
    pd_set: o.set,
    pd_run_name: name,
    pd_run_kind: o.kind,
    pd_target: o.target,
    pd_endpoint: o.endpoint,
    pd_engine: 'vllm',
    pd_offered_rate: o.rate === Infinity ? null : o.rate,
    pd_good_request_fraction: sent ? (typeof raw.request_goodput === 'number' && num('duration') > 0 ? (raw.request_goodput * num('duration')) / sent : completed / sent) : 0,
    pd_goodput_slos: o.slos && Object.keys(o.slos).length ? o.slos : null,
    pd_error_kinds: errorKinds,
    pd_usage_source: 'server',
    pd_send_lateness_ms: null,
    pd_stage_split: null,
    pd_kv_cache: null,
    pd_partial: Boolean(o.stopSignal?.aborted),
    pd_percentiles: percentiles,
    pd_input_len: isSynthetic(o.dataset) ? o.dataset.inputLen : null,
    pd_output_len: isSynthetic(o.dataset) ? o.dataset.outputLen : (o.dataset.outputLen ?? null),
    pd_ignore_eos: o.ignoreEos ?? true,
    pd_num_warmups: o.numWarmups ?? 0,
    pd_request_id_prefix: o.request?.requestIdPrefix ?? null,
    pd_metadata: o.request?.metadata ?? null,
    pd_extra_body: o.request?.extraBody ?? null,
    pd_failed: completed === 0 && sent > 0,
    pd_error: completed === 0 && sent > 0 ? `every request failed: ${errors?.find((e) => e !== '') ?? 'see the vLLM output'}` : null,
    pd_dataset: describeDataset(o.dataset),
    pd_seed: o.seed ?? 0,
    pd_sent: sent,
  });
  const records: RequestRecord[] = [];
  const ttfts = result.ttfts ?? [];
  for (let i = 0; i < ttfts.length; i++) {
    const ok = (errors?.[i] ?? '') === '';
    const itl = (result.itls?.[i] ?? []).map((s) => s * 1000);
    const lat = result.latencies?.[i];
    const outLen = result.output_lens?.[i] ?? 0;
    const ttftMs = ok ? ttfts[i]! * 1000 : null;
    const e2el = ok && typeof lat === 'number' ? lat * 1000 : null;
    records.push({
      index: i,
      scheduled_ms: 0,
      sent_ms: typeof result.start_times?.[i] === 'number' ? result.start_times[i]! * 1000 : null,
      lateness_ms: 0,
      queue_ms: 0,
      success: ok,
      status: null,
      error: errors?.[i] ?? '',
      error_kind: ok ? null : 'vllm_error',
      input_len: result.input_lens?.[i] ?? 0,
      output_len: outLen,
      usage_source: ok ? 'server' : null,
      ttft_ms: ttftMs,
      e2el_ms: e2el,
      tpot_ms: ok && e2el !== null && ttftMs !== null && outLen > 1 ? (e2el - ttftMs) / (outLen - 1) : null,
      itl_ms: itl,
      prefill_ms: null,
      decode_ttfb_ms: null,
      server_timing: null,
    });
  }
  const files = o.write === false ? null : await writeRunFiles(o.resultsDir, result, records);
  return { result, records, files };
}
