/** POSIX shell quoting so a printed command line can be pasted into bash as is. */
const SAFE = /^[A-Za-z0-9_\-+=.,/:@%^]+$/;

export function shellQuote(word: string): string {
  if (word !== '' && SAFE.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export function shellJoin(words: readonly string[]): string {
  return words.map(shellQuote).join(' ');
}

/** `A=1 B='x y' cmd arg …` */
export function shellCommandLine(env: Record<string, string>, argv: readonly string[]): string {
  const assignments = Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}`);
  return [...assignments, shellJoin(argv)].join(' ');
}
