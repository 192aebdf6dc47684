/** A counting semaphore: at most `n` of the wrapped async calls run at once (keeps the libuv pool fed, memory flat). */
export type Limiter = <T>(fn: () => Promise<T>) => Promise<T>;

export function createLimiter(n: number): Limiter {
  const max = Math.max(1, Math.floor(n));
  let active = 0;
  // A FIFO with a moving head: Array#shift is O(n) on large arrays and 100k queued calls are normal here.
  let queue: Array<() => void> = [];
  let head = 0;
  const release = (): void => {
    active--;
    if (head < queue.length) {
      const next = queue[head++]!;
      if (head > 1024 && head * 2 > queue.length) {
        queue = queue.slice(head);
        head = 0;
      }
      next();
    }
  };
  return <T>(fn: () => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const run = (): void => {
        active++;
        fn().then(resolve, reject).finally(release);
      };
      if (active < max) run();
      else queue.push(run);
    });
}
