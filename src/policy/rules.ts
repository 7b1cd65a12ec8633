import { compilePattern, type MethodPattern } from './method-pattern';

/** A session rule (docs/design.md, Admission, slots and sessions): calls between `enter` and `exit` are pinned to one node. */
export interface SessionRule {
  /** The call that starts a session; the node that runs it owns the session. */
  enter: MethodPattern;
  /** Calls that carry the session token and match this run on the owner. */
  within: MethodPattern | MethodPattern[];
  /** Calls that end the session (after they ran on the owner). */
  exit: MethodPattern | MethodPattern[];
  /** A session unused this long is forgotten, ms. Default 60 000. */
  idleMs?: number;
}

/** Preferred homes: `{ 'bank.Securities/*': ['n2'] }`. */
export type DedicatedRules = Record<MethodPattern, string[]>;

/** Default idle time after which a session token expires. */
export const DEFAULT_SESSION_IDLE_MS = 60_000;

/** What a method is to the session rules. */
export interface SessionRole {
  enter: boolean;
  within: boolean;
  exit: boolean;
  idleMs: number;
}

/** The rules compiled once per method path, so a call looks its role up in a map. */
export class CompiledRules {
  private readonly sessionMatchers: Array<{
    enter: (p: string) => boolean;
    within: Array<(p: string) => boolean>;
    exit: Array<(p: string) => boolean>;
    idleMs: number;
  }>;
  private readonly dedicatedMatchers: Array<{ match: (p: string) => boolean; homes: ReadonlySet<string> }>;
  private readonly roleCache = new Map<string, SessionRole | null>();
  private readonly homeCache = new Map<string, ReadonlySet<string> | null>();
  /** Some session rule exists: without one, no call needs its role looked up. */
  readonly hasSessions: boolean;
  /** Some dedicated home exists: without one, no call needs its homes looked up. */
  readonly hasHomes: boolean;

  constructor(sessions: readonly SessionRule[] = [], dedicated: DedicatedRules = {}) {
    const list = (v: MethodPattern | MethodPattern[]) => (Array.isArray(v) ? v : [v]).map(compilePattern);
    this.sessionMatchers = sessions.map((r) => ({
      enter: compilePattern(r.enter),
      // The exit and enter calls are part of the session too.
      within: [...list(r.within), ...list(r.exit)],
      exit: list(r.exit),
      idleMs: r.idleMs ?? DEFAULT_SESSION_IDLE_MS,
    }));
    this.dedicatedMatchers = Object.entries(dedicated).map(([pattern, homes]) => ({
      match: compilePattern(pattern),
      homes: new Set(homes),
    }));
    this.hasSessions = this.sessionMatchers.length > 0;
    this.hasHomes = this.dedicatedMatchers.length > 0;
  }

  /** The session role of `path`, or null when no rule names it. */
  sessionRole(path: string): SessionRole | null {
    let r = this.roleCache.get(path);
    if (r === undefined) {
      r = null;
      for (const m of this.sessionMatchers) {
        const enter = m.enter(path);
        const within = m.within.some((f) => f(path));
        if (enter || within) {
          r = { enter, within, exit: m.exit.some((f) => f(path)), idleMs: m.idleMs };
          break;
        }
      }
      this.roleCache.set(path, r);
    }
    return r;
  }

  /** The preferred homes of `path`, or null when it has none. */
  homes(path: string): ReadonlySet<string> | null {
    let h = this.homeCache.get(path);
    if (h === undefined) {
      h = this.dedicatedMatchers.find((d) => d.match(path))?.homes ?? null;
      this.homeCache.set(path, h);
    }
    return h;
  }
}
