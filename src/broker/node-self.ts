import { MAX_REPORT_ENDPOINTS, type LoadCounters, type NodeInfo, type PeerView } from '../cluster';
import type { SelfSample } from '../http';
import type { MemberInfo } from '../transport';
import type { Admission } from './admission';
import { peerMembers, statusMessage } from './broker-service';
import type { CallGate } from './call-gate';
import type { ResolvedBrokerOptions } from './options';

/** What this node's descriptions are made from. */
export interface NodeSelfDeps {
  /** The broker's options (the period is the one in force: `config set` changes it there). */
  options: Pick<ResolvedBrokerOptions, 'nodeId' | 'cluster' | 'capacity' | 'maxQueue' | 'periodMs' | 'takeover'>;
  /** Start time of this process, ms since the epoch: reports of a newer one replace ours. */
  incarnation: number;
  counters: LoadCounters;
  admission: Admission;
  gate: CallGate;
  peers: PeerView;
  /** Services hosted here. */
  services: ReadonlySet<string>;
  /** `host:port` clients reach this node at ('' before start). */
  endpoint(): string;
  /** Endpoints adopted from peers that went off-line. */
  adopted(): string[];
  /** Base URL of the HTTP listener, if there is one. */
  httpUrl(): string | undefined;
  configDropped(): Record<string, number>;
}

/**
 * This node as it describes itself: to its peers in its reports (`info`), to clients in
 * `Members` and `Status`, and to the cluster page (`sample`), each made from the same parts
 * at the moment it is asked.
 */
export class NodeSelf {
  constructor(private readonly d: NodeSelfDeps) {}

  /** This node as a member: `inFlight` is calls running, as in every member and report. */
  member(): MemberInfo {
    const d = this.d;
    const a = d.admission;
    return {
      nodeId: d.options.nodeId,
      endpoint: d.endpoint(),
      status: d.counters.status,
      load: a.load(),
      services: [...d.services],
      endpoints: this.servedEndpoints(),
      inFlight: a.running,
      queued: a.queued,
      capacity: d.options.capacity,
      reportAgeMs: 0,
      httpUrl: d.httpUrl() ?? '',
    };
  }

  /** Every node this node knows, itself first. */
  members(): MemberInfo[] {
    return [this.member(), ...peerMembers(this.d.peers, performance.now())];
  }

  /** The `Status` answer. */
  statusMessage(): ReturnType<typeof statusMessage> {
    return statusMessage(this.member(), this.d.gate.stats, this.d.peers.dropped, this.d.configDropped());
  }

  /** What the reports say of this node that changes rarely (posted to the reporter on change). */
  info(): NodeInfo {
    const d = this.d;
    const o = d.options;
    return {
      cluster: o.cluster,
      nodeId: o.nodeId,
      endpoint: d.endpoint(),
      endpoints: this.servedEndpoints(),
      services: [...d.services],
      capacity: o.capacity,
      maxQueue: o.maxQueue,
      periodMs: o.periodMs,
      incarnation: d.incarnation,
      takeover: o.takeover,
      httpUrl: d.httpUrl(),
      redirects: d.gate.counters.redirectList(),
    };
  }

  /** This node as the cluster page shows it, now. */
  sample(): SelfSample {
    const d = this.d;
    const a = d.admission;
    const stats = d.gate.stats;
    return {
      id: d.options.nodeId,
      status: d.counters.status,
      load: a.load(),
      running: a.running,
      queued: a.queued,
      capacity: d.options.capacity,
      run: stats.run,
      redirected: stats.redirected,
      httpUrl: d.httpUrl() ?? '',
      endpoint: d.endpoint(),
      services: [...d.services],
      redirects: d.gate.counters.redirectList(),
    };
  }

  // Its own endpoint first, then those it adopted (at most MAX_ADOPTED: its reports stay valid).
  private servedEndpoints(): string[] {
    const own = this.d.endpoint();
    return own ? [own, ...this.d.adopted()].slice(0, MAX_REPORT_ENDPOINTS) : [];
  }
}
