/**
 * A token bucket: up to `burst` at once, then `perSec` a second. Timed by the caller's
 * clock (monotonic ms), so it holds no timer and costs nothing between takes.
 */
export class TokenBucket {
  private tokens: number;

  constructor(
    private readonly burst: number,
    private readonly perSec: number,
    /** When the bucket was made (full), ms. */
    private at: number,
  ) {
    this.tokens = burst;
  }

  /** Takes one token at time `now` (ms); false when none is left. */
  take(now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) * this.perSec) / 1000);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}
