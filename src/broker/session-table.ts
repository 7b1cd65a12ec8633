import { randomBytes } from 'node:crypto';

/** A session token: `<nodeId>.<random>`, as the wire contract says. */
const TOKEN = /^([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{8,64})$/;

/** Longest token accepted; longer ones are malformed. */
export const MAX_TOKEN_LENGTH = 129;

/** Splits a token into its owner node id; null when malformed or oversized. */
export function tokenOwner(token: string): string | null {
  if (token.length > MAX_TOKEN_LENGTH) return null;
  const m = TOKEN.exec(token);
  return m ? m[1] : null;
}

/** The live sessions this node owns, with idle expiry. */
export class SessionTable {
  private readonly sessions = new Map<string, { lastUsed: number; idleMs: number }>();

  constructor(private readonly nodeId: string) {}

  /** Starts a session and returns its token. */
  open(now: number, idleMs: number): string {
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
