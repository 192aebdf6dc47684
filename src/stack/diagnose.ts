/** Plain-language causes for the common ways an engine fails to start, read from the tail of its log. */

export interface Diagnosis {
  cause: string;
  hint: string;
}

const RULES: Array<{ test: RegExp; diagnose: (m: RegExpMatchArray, ctx: DiagnoseContext) => Diagnosis }> = [
  {
    test: /Address already in use|\[Errno 98\]/,
    diagnose: (_m, ctx) => ({
      cause: `port ${ctx.port} is already in use`,
      hint: `Stop whatever listens on ${ctx.port} (\`ss -ltnp 'sport = :${ctx.port}'\`), or give ${ctx.name} another port in the config.`,
    }),
  },
  {
    test: /Unsupported connector type: (\w+)/,
    diagnose: (m) =>
      m[1] === 'SharedStorageConnector'
        ? {
            cause: 'this vLLM does not know SharedStorageConnector: vLLM 0.13.0 renamed it to ExampleConnector (PR 30201)',
            hint: 'Set "kv": { "connector": "ExampleConnector" } (or "auto", which asks `vllm --version`).',
          }
        : m[1] === 'ExampleConnector'
          ? {
              cause: 'this vLLM predates the ExampleConnector name (before 0.13.0 it is SharedStorageConnector)',
              hint: 'Set "kv": { "connector": "SharedStorageConnector" } (or "auto").',
            }
          : { cause: `vLLM does not know the KV connector ${m[1]}`, hint: 'Check kv.connector against your vLLM version.' },
  },
  {
    // argparse (vllm/entrypoints/cli/main.py's parser): exit 2 before any log line.
    test: /error: unrecognized arguments: (.+)/,
    diagnose: (m, ctx) => ({
      cause: `this vLLM does not know the argument(s) ${m[1]!.trim()}`,
      hint: `Remove them from engine.args / the ${ctx.name.replace(/-\d+$/, '')} args in the config, or use a vLLM release that has them (\`vllm serve --help\` lists what it knows).`,
    }),
  },
  {
    test: /validation errors? for KVTransferConfig/,
    diagnose: () => ({
      cause: 'vLLM refused the --kv-transfer-config pd passed (KVTransferConfig validation)',
      hint: 'Check kv.extra and kv.extraConfig in the config: a key or value this vLLM does not accept (the log above names it).',
    }),
  },
  {
    test: /CUDA out of memory|OutOfMemoryError|No available memory for the cache blocks|insufficient GPU memory|Free memory on device/i,
    diagnose: (_m, ctx) => ({
      cause: `CUDA out of memory on GPU ${ctx.gpus.join(',')}`,
      hint: 'Free the GPU (see `nvidia-smi` for leftover processes), lower --gpu-memory-utilization or --max-model-len, or use a smaller model.',
    }),
  },
  {
    test: /invalid device ordinal|No CUDA GPUs are available|CUDA_VISIBLE_DEVICES.*(invalid|out of range)|Device index .* out of range/i,
    diagnose: (_m, ctx) => ({
      cause: `GPU ${ctx.gpus.join(',')} is not present on this machine`,
      hint: 'Check the GPU ids in the config against `nvidia-smi -L` (CUDA_VISIBLE_DEVICES is set from gpus).',
    }),
  },
  {
    test: /(does not appear to have a file named config\.json|Repo id must be|Invalid repository ID or local directory|is not a local folder and is not a valid model identifier|No such file or directory: '[^']*config\.json'|Repository Not Found|model path .* (does not exist|not found))/i,
    diagnose: (_m, ctx) => ({
      cause: `the model ${ctx.model} was not found`,
      hint: 'Check `model` in the config: a local folder with config.json and weights, or a hub id that is already downloaded.',
    }),
  },
  {
    test: /(command not found|ENOENT.*spawn|No such file or directory.*vllm)/,
    diagnose: () => ({
      cause: 'the vLLM command could not be run',
      hint: 'Install vLLM in this environment or set engine.command to its path (or use --simulate).',
    }),
  },
];

export interface DiagnoseContext {
  name: string;
  port: number;
  gpus: number[];
  model: string;
}

export function diagnose(logTail: string, ctx: DiagnoseContext): Diagnosis | null {
  for (const rule of RULES) {
    const m = logTail.match(rule.test);
    if (m) return rule.diagnose(m, ctx);
  }
  return null;
}
