/** Reading command-line argument lists as argparse would (vLLM's `vllm serve` flags). */

/** Split a configured command such as "vllm" or "python -m vllm.entrypoints.cli.main" into argv. */
export function splitCommand(command: string): string[] {
  return command.trim().split(/\s+/);
}

/** Value of `--flag value` or `--flag=value` in an argument list (last one wins, like argparse). */
export function argValue(args: readonly string[], flag: string): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === flag && i + 1 < args.length) found = args[i + 1];
    else if (a.startsWith(`${flag}=`)) found = a.slice(flag.length + 1);
  }
  return found;
}

/** The value of the first of several spellings of one flag that is present (e.g. --tensor-parallel-size, -tp). */
export function argValueOf(args: readonly string[], flags: readonly string[]): string | undefined {
  let found: { at: number; value: string } | undefined;
  for (const flag of flags) {
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      const value = a === flag && i + 1 < args.length ? args[i + 1] : a.startsWith(`${flag}=`) ? a.slice(flag.length + 1) : undefined;
      if (value !== undefined && (found === undefined || i > found.at)) found = { at: i, value };
    }
  }
  return found?.value;
}

export function hasArg(args: readonly string[], flag: string): boolean {
  return args.some((a) => a === flag || a.startsWith(`${flag}=`));
}
