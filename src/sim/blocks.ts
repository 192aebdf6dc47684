/**
 * The KV block pool of one engine and its prefix cache, as vLLM's v1 KV cache manager keeps them
 * (vllm/v1/core/kv_cache_manager.py, block_pool.py): blocks of `block_size` tokens; a full block is identified by
 * the hash of its tokens chained to its parent's hash; finished requests leave their full blocks cached (evictable,
 * least recently used first); a new request reuses the longest run of cached blocks of its prompt, at most
 * (num_tokens - 1) // block_size blocks (the last prompt token is always computed: get_computed_blocks).
 */
import { hashIds } from './rng.js';

export class BlockPool {
  /** Blocks held by running requests. */
  private used = 0;
  /** Cached full blocks not held by anyone, least recently used first (Map keeps insertion order). */
  private readonly cached = new Map<number, true>();

  constructor(
    readonly numBlocks: number,
    readonly blockSize: number,
    readonly prefixCaching: boolean,
  ) {}

  /** Blocks that can be handed out now (free + evictable cached). */
  get available(): number {
    return this.numBlocks - this.used;
  }

  /** Fraction of the pool held by running requests (vllm:kv_cache_usage_perc). */
  get usage(): number {
    return this.numBlocks > 0 ? this.used / this.numBlocks : 0;
  }

  blocksFor(tokens: number): number {
    return Math.ceil(tokens / this.blockSize);
  }

  /** Chained hashes of the prompt's full blocks. */
  blockHashes(ids: readonly number[]): number[] {
    const out: number[] = [];
    let parent = 0x811c9dc5;
    const B = this.blockSize;
    for (let i = 0; i + B <= ids.length; i += B) {
      parent = hashIds(ids.slice(i, i + B), parent);
      out.push(parent);
    }
    return out;
  }

  /** Tokens of `ids` served by the local prefix cache (block-aligned, never the last prompt token). */
  localHit(ids: readonly number[]): number {
    if (!this.prefixCaching) return 0;
    const max = Math.floor((ids.length - 1) / this.blockSize);
    const hashes = this.blockHashes(ids);
    let n = 0;
    while (n < max && n < hashes.length && this.cached.has(hashes[n]!)) n++;
    // Touch what was used so that it is evicted last.
    for (let i = 0; i < n; i++) {
      this.cached.delete(hashes[i]!);
      this.cached.set(hashes[i]!, true);
    }
    return n * this.blockSize;
  }

  /** Take `n` blocks if available (evicting cached ones as needed). */
  allocate(n: number): boolean {
    if (n > this.available) return false;
    this.used += n;
    this.evictOverflow();
    return true;
  }

  /** Give back `n` blocks; the request's full prompt blocks stay in the prefix cache. */
  release(n: number, promptIds: readonly number[] | null): void {
    this.used = Math.max(0, this.used - n);
    if (this.prefixCaching && promptIds) for (const h of this.blockHashes(promptIds)) {
      this.cached.delete(h);
      this.cached.set(h, true);
    }
    this.evictOverflow();
  }

  private evictOverflow(): void {
    let excess = this.used + this.cached.size - this.numBlocks;
    for (const h of this.cached.keys()) {
      if (excess <= 0) break;
      this.cached.delete(h);
      excess--;
    }
  }

  /** Drop the whole prefix cache (vLLM's /reset_prefix_cache). */
  reset(): void {
    this.cached.clear();
  }
}
