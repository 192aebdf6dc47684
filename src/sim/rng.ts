/** Small deterministic PRNG (mulberry32) and hashing helpers. */
export type Rng = () => number;

export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a over a list of integers. */
export function hashIds(ids: readonly number[], seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < ids.length; i++) {
    h ^= ids[i]! & 0xffff;
    h = Math.imul(h, 16777619) >>> 0;
    h ^= ids[i]! >>> 16;
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h >>> 0;
}
