import { configSubject, type ConfigDropReason } from '../cluster';
import type { Logger, RateLimitedLog } from '../log';
import { CompiledRules, peerChoiceByName, type DedicatedRules, type PolicyConfig, type SessionRule } from '../policy';
import type { Admission } from './admission';
import type { CallGate } from './call-gate';
import { parseRuntimeValues, RUNTIME_KEYS, type ResolvedBrokerOptions, type RuntimeConfig, type RuntimeKey } from './options';

/** The runtime values in force, every one filled in. */
export type CurrentConfig = Pick<ResolvedBrokerOptions, RuntimeKey>;

/**
 * The values `peerbroker config set` changes at run time (the options marked
 * `runtime` in the options schema): checks them whole, then applies them to the
 * policy, admission and gate, so a bad change alters nothing. Counts and logs config
 * messages that were dropped.
 */
export class RuntimeSettings {
  /** The values in force: those of the start options, then each change merged in. */
  private inForce: CurrentConfig;
  /** Session rules declared in the services' .proto files. */
  readonly protoSessionRules: SessionRule[] = [];
  /** Config changes dropped, by reason (unsigned, bad-signature, replay, ...). */
  readonly dropped: Partial<Record<ConfigDropReason, number>> = {};

  constructor(
    private readonly options: ResolvedBrokerOptions,
    private readonly policy: PolicyConfig,
    private readonly admission: Admission,
    private readonly gate: CallGate,
    private readonly log: Logger,
    private readonly dropLog: RateLimitedLog,
    /** Called after the reporting period changed. */
    private readonly periodChanged: () => void,
  ) {
    this.inForce = Object.fromEntries(RUNTIME_KEYS.map((k) => [k, options[k]])) as CurrentConfig;
  }

  /** The rules of the options plus those of the .proto files (at start). */
  startRules(): void {
    if (this.protoSessionRules.length > 0) this.policy.rules = this.compile(this.options.sessions, this.options.dedicated);
  }

  // The given session rules plus those of the .proto files, and the dedicated homes.
  private compile(sessions: SessionRule[], dedicated: DedicatedRules): CompiledRules {
    return new CompiledRules([...sessions, ...this.protoSessionRules], dedicated);
  }

  /** The values in force now. */
  current(): CurrentConfig {
    return { ...this.inForce };
  }

  /** Applies `values`; invalid ones throw a ConfigError and change nothing. */
  apply(values: RuntimeConfig): void {
    const v = parseRuntimeValues(values);
    // A value left out keeps the one in force (set at run time earlier, else at start).
    const next = { ...this.inForce, ...v };
    const rules = v.sessions || v.dedicated ? this.compile(next.sessions, next.dedicated) : undefined;
    const choice = v.peerChoice ? peerChoiceByName(v.peerChoice) : undefined;
    // Everything is checked above; from here nothing can fail half-way. Each runtime
    // option says here what it changes (the type asks for every one).
    const apply: { [K in RuntimeKey]: (value: CurrentConfig[K]) => void } = {
      threshold: (x) => (this.policy.threshold = this.admission.threshold = x),
      margin: (x) => (this.policy.margin = x),
      maxHops: (x) => (this.policy.maxHops = x),
      forwardLegacy: (x) => (this.policy.forwardLegacy = x),
      peerChoice: () => (this.gate.choice = choice!),
      sessions: () => (this.policy.rules = rules!),
      dedicated: () => (this.policy.rules = rules!),
      periodMs: (x) => {
        if (x === this.options.periodMs) return;
        this.options.periodMs = x;
        this.periodChanged();
      },
    };
    for (const k of Object.keys(v) as RuntimeKey[]) if (v[k] !== undefined) (apply[k] as (x: unknown) => void)(next[k]);
    this.inForce = next;
  }

  /** A change that came over the control plane: applied, or refused keeping the last good one. */
  applyMessage(values: unknown, version: string): void {
    try {
      this.apply(values as RuntimeConfig);
      this.log.info({ version, config: this.current() }, 'config applied');
    } catch (err) {
      this.log.warn({ version, reason: (err as Error).message }, 'config refused; keeping the last good one');
    }
  }

  /** A config message dropped (counted by reason), or the store unavailable; logged rate-limited. */
  onError(reason: string, drop?: ConfigDropReason): void {
    if (drop) this.dropped[drop] = (this.dropped[drop] ?? 0) + 1;
    const subject = configSubject(this.options.cluster);
    this.dropLog.maybe(`config-${drop ?? 'store'}`, performance.now(), (suppressed) =>
      this.log.warn({ subject, reason, drop, suppressed }, drop ? 'config change dropped' : 'config store unavailable'),
    );
  }
}
