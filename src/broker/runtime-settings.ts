import { configSubject, type ConfigDropReason } from '../cluster';
import type { Logger, RateLimitedLog } from '../log';
import { CompiledRules, peerChoiceByName, type DedicatedRules, type PolicyConfig, type SessionRule } from '../policy';
import type { Admission } from './admission';
import type { CallGate } from './call-gate';
import { parseRuntimeValues, type ResolvedBrokerOptions, type RuntimeConfig } from './options';

/** The runtime values in force, every one filled in. */
export type CurrentConfig = Required<Omit<RuntimeConfig, 'sessions' | 'dedicated'>> & Pick<RuntimeConfig, 'sessions' | 'dedicated'>;

/**
 * The values `peerbroker config set` changes at run time (threshold, margin, period,
 * hops, peer choice, legacy forwarding, session and dedicated rules): checks them
 * whole, then applies them to the policy, admission and gate, so a bad change
 * alters nothing. Counts and logs config messages that were dropped.
 */
export class RuntimeSettings {
  /** The runtime values applied last. */
  private runtime: RuntimeConfig = {};
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
  ) {}

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
    return {
      threshold: this.policy.threshold,
      margin: this.policy.margin,
      periodMs: this.options.periodMs,
      maxHops: this.policy.maxHops,
      peerChoice: this.gate.choice.name,
      forwardLegacy: this.policy.forwardLegacy === true,
      sessions: this.runtime.sessions ?? this.options.sessions,
      dedicated: this.runtime.dedicated ?? this.options.dedicated,
    };
  }

  /** Applies `values`; invalid ones throw a ConfigError and change nothing. */
  apply(values: RuntimeConfig): void {
    const v = parseRuntimeValues(values);
    // A value left out keeps the one in force (set at run time earlier, else at start).
    const rules =
      v.sessions || v.dedicated
        ? this.compile(v.sessions ?? this.runtime.sessions ?? this.options.sessions, v.dedicated ?? this.runtime.dedicated ?? this.options.dedicated)
        : undefined;
    const choice = v.peerChoice ? peerChoiceByName(v.peerChoice) : undefined;
    // Everything is checked above; from here nothing can fail half-way.
    if (v.threshold !== undefined) this.policy.threshold = this.admission.threshold = v.threshold;
    if (v.margin !== undefined) this.policy.margin = v.margin;
    if (v.maxHops !== undefined) this.policy.maxHops = v.maxHops;
    if (v.forwardLegacy !== undefined) this.policy.forwardLegacy = v.forwardLegacy;
    if (rules) this.policy.rules = rules;
    if (choice) this.gate.choice = choice;
    if (v.periodMs !== undefined && v.periodMs !== this.options.periodMs) {
      this.options.periodMs = v.periodMs;
      this.periodChanged();
    }
    this.runtime = { ...this.runtime, ...v };
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
