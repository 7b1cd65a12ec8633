import { MAX_ADVICE_ENTRIES } from '../wire';
import { isEligible } from './decide';
import type { PeerChoice, PeerEntry, PolicyConfig, SelfState } from './types';

/** One node of a spread: where a share of a client's next calls should go. */
export interface AdviceShare {
  nodeId: string;
  endpoint: string;
  /** Share of the client's calls, 0..1; the shares of one advice add up to 1. */
  share: number;
}

/** Room counted above a full node's load: the larger, the more even and the steadier the shares. */
const ADVICE_HEADROOM = 0.5;

/**
 * How a client should spread its next calls for `service` over this node and its peers
 * (each online, fresh and hosting it): in proportion to each one's room below a common headroom,
 * times its capacity. Balanced nodes of equal capacity get equal shares; a busier node a
 * smaller one. Pure: reads the same view as the decision (peer loads with accounting).
 */
export function adviseSpread(
  self: SelfState,
  selfEndpoint: string,
  peers: readonly PeerEntry[],
  service: string,
  now: number,
  cfg: PolicyConfig,
  choice: PeerChoice,
): AdviceShare[] {
  const nodes: Array<{ nodeId: string; endpoint: string; load: number; capacity: number }> = [];
  // This node only when it runs such calls itself (a redirect for a service it does not host
  // must not send the client's next calls back here).
  if ((self.status === undefined || self.status === 'ONLINE') && self.hosts(service)) {
    nodes.push({ nodeId: self.nodeId, endpoint: selfEndpoint, load: self.load, capacity: self.capacity });
  }
  for (const p of peers) {
    if (isEligible(p, service, now, cfg)) nodes.push({ nodeId: p.nodeId, endpoint: p.endpoint, load: choice.loadOf(p), capacity: p.capacity });
  }
  if (nodes.length === 0) return [];
  // Room below a load of 1.5, or half a load above the most loaded node past 1: shares
  // follow load differences without swinging on every fluctuation (bench/sim).
  let top = 1;
  for (const n of nodes) if (n.load > top) top = n.load;
  const headroom = top + ADVICE_HEADROOM;
  nodes.sort((a, b) => (headroom - b.load) * b.capacity - (headroom - a.load) * a.capacity);
  const named = nodes.slice(0, MAX_ADVICE_ENTRIES); // the ones with the most room
  let total = 0;
  const room = named.map((n) => {
    const r = Math.max(0, headroom - n.load) * n.capacity;
    total += r;
    return r;
  });
  return named.map((n, i) => ({ nodeId: n.nodeId, endpoint: n.endpoint, share: total > 0 ? room[i] / total : 1 / named.length }));
}
