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

/** A session as handlers and `onSessionEnd` listeners see it. Times are ms since the epoch. */
export interface SessionInfo {
  /** The token the client carries (`<owner>.<random>`). */
  id: string;
  /** The node that owns it: this one. */
  owner: string;
  /** The enter method that opened it (`/pkg.Service/Method`). */
  enter: string;
  /** When it opened (in the enter handler, before the answer: now). */
  openedAt: number;
  /** When it expires unless a call of it comes first (each call restarts the idle time). */
  expiresAt: number;
  /** Its idle time, ms. */
  idleMs: number;
}

/**
 * Why a session ended: its exit call succeeded, it was idle too long, the node stopped, or
 * it never opened: its enter handler answered after the client had gone (cancel, deadline),
 * so the client never got the token, though the handler may have kept state under it.
 */
export type SessionEndReason = 'exit' | 'expired' | 'stopped' | 'aborted';

interface Entry {
  lastUsed: number;
  idleMs: number;
  openedAt: number;
  enter: string;
}

/**
 * The live sessions this node owns, with idle expiry, at most `maxSessions` of them.
 * An enter call reserves its place before its handler runs, so a call that was let in
 * always gets its session, and one past the cap is refused before anything ran.
 */
export class SessionTable {
  private readonly sessions = new Map<string, Entry>();
  /** Enter calls let in whose session is not open yet. */
  private reserved = 0;
  /** Sessions ended since start, by reason. */
  readonly ended: Record<SessionEndReason, number> = { exit: 0, expired: 0, stopped: 0, aborted: 0 };
  private readonly listeners = new Set<(session: SessionInfo, why: SessionEndReason) => void>();
  /** A listener threw (it is not removed). */
  onListenerError?: (err: unknown, why: SessionEndReason) => void;

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

  /** A new token of this node, for an enter call to issue. */
  newToken(): string {
    return `${this.nodeId}.${randomBytes(12).toString('base64url')}`;
  }

  /** Starts session `token` (from `newToken()`) in a place taken by `reserve()`. */
  open(token: string, now: number, idleMs: number, enter: string): void {
    this.unreserve();
    this.sessions.set(token, { lastUsed: now, idleMs, openedAt: now, enter });
  }

  /** True when `token` is live at `now`; a live one is touched (its idle time restarts). */
  touch(token: string, now: number): boolean {
    const s = this.sessions.get(token);
    if (!s) return false;
    if (now - s.lastUsed > s.idleMs) {
      this.end(token, s, 'expired');
      return false;
    }
    s.lastUsed = now;
    return true;
  }

  /** The live session `token`, or undefined. */
  info(token: string): SessionInfo | undefined {
    const s = this.sessions.get(token);
    return s ? this.infoOf(token, s) : undefined;
  }

  /** What a session an enter call is about to open looks like, as if it opened at `now`. */
  pending(token: string, now: number, idleMs: number, enter: string): SessionInfo {
    return this.infoOf(token, { lastUsed: now, idleMs, openedAt: now, enter });
  }

  /**
   * An enter call's handler answered `token` after its client had gone: the session is not
   * opened (nobody can use it), and the listeners hear of it at once (`aborted`).
   */
  abort(token: string, now: number, idleMs: number, enter: string): void {
    this.ended.aborted++;
    this.tell(token, { lastUsed: now, idleMs, openedAt: now, enter }, 'aborted');
  }

  /** Ends a session (its exit call succeeded). */
  close(token: string): void {
    const s = this.sessions.get(token);
    if (s) this.end(token, s, 'exit');
  }

  /** Forgets sessions idle for longer than their idle time. */
  sweep(now: number): void {
    for (const [t, s] of this.sessions) if (now - s.lastUsed > s.idleMs) this.end(t, s, 'expired');
  }

  /** Calls `listener` once for every session that ends, with why; returns a function that removes it. */
  onEnd(listener: (session: SessionInfo, why: SessionEndReason) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** Ends every session: the node stops, and their state goes with it. */
  endAll(): void {
    for (const [t, s] of this.sessions) this.end(t, s, 'stopped');
  }

  private end(token: string, s: Entry, why: SessionEndReason): void {
    this.sessions.delete(token);
    this.ended[why]++;
    this.tell(token, s, why);
  }

  private tell(token: string, s: Entry, why: SessionEndReason): void {
    if (this.listeners.size === 0) return;
    const info = this.infoOf(token, s);
    for (const listener of this.listeners) {
      try {
        listener(info, why);
      } catch (err) {
        this.onListenerError?.(err, why);
      }
    }
  }

  private infoOf(token: string, s: Entry): SessionInfo {
    return { id: token, owner: this.nodeId, enter: s.enter, openedAt: s.openedAt, expiresAt: s.lastUsed + s.idleMs, idleMs: s.idleMs };
  }
}
