import { randomBytes } from 'node:crypto';

/** A session token: `<nodeId>.<random>`, as the wire contract says. */
const TOKEN = /^([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{8,64})$/;

/** Longest token accepted; longer ones are malformed. */
export const MAX_TOKEN_LENGTH = 129;

/** Default cap on the live sessions one node owns. */
export const DEFAULT_MAX_SESSIONS = 100_000;

/** Splits a token into its owner node id; null when malformed or oversized. */
export function tokenOwner(token: string): string | null {
  if (token.length > MAX_TOKEN_LENGTH) return null;
  const m = TOKEN.exec(token);
  return m ? m[1] : null;
}

/**
 * The live sessions this node owns, with idle expiry, at most `maxSessions` of them.
 * An enter call reserves its place before its handler runs, so a call that was let in
 * always gets its session, and one past the cap is refused before anything ran.
 */
export class SessionTable {
  private readonly sessions = new Map<string, { lastUsed: number; idleMs: number }>();
  /** Enter calls let in whose session is not open yet. */
  private reserved = 0;

  constructor(
    private readonly nodeId: string,
    /** Live sessions plus reserved places, at most. */
    public maxSessions = DEFAULT_MAX_SESSIONS,
  ) {}

  /** Live sessions (expired ones count until the next sweep or touch). */
  get size(): number {
    return this.sessions.size;
  }

  /** Takes a place for a session an enter call will open; false when the table is full. */
  reserve(): boolean {
    if (this.sessions.size + this.reserved >= this.maxSessions) return false;
    this.reserved++;
    return true;
  }

  /** Gives back a place taken by `reserve()` whose session was not opened. */
  unreserve(): void {
    if (this.reserved > 0) this.reserved--;
  }

  /** Starts a session in a place taken by `reserve()` and returns its token. */
  open(now: number, idleMs: number): string {
    this.unreserve();
    const token = `${this.nodeId}.${randomBytes(12).toString('base64url')}`;
    this.sessions.set(token, { lastUsed: now, idleMs });
    return token;
  }

  /** True when `token` is live at `now`; a live one is touched (its idle time restarts). */
  touch(token: string, now: number): boolean {
    const s = this.sessions.get(token);
    if (!s) return false;
    if (now - s.lastUsed > s.idleMs) {
      this.sessions.delete(token);
      return false;
    }
    s.lastUsed = now;
    return true;
  }

  /** Ends a session. */
  close(token: string): void {
    this.sessions.delete(token);
  }

  /** Forgets sessions idle for longer than their idle time. */
  sweep(now: number): void {
    for (const [t, s] of this.sessions) if (now - s.lastUsed > s.idleMs) this.sessions.delete(t);
  }
}
