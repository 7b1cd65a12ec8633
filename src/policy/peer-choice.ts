import type { PeerChoice, PeerEntry } from './types';

/** Reported load only: the patent's rule. Herds when reports are old. */
export const leastLoaded: PeerChoice = {
  name: 'least-loaded',
  loadOf: (p) => p.occupancy,
  select: (c) => minBy(c, (p) => p.occupancy),
};

/** Reported load plus the redirects this node sent since that report. */
export const leastLoadedAccounted: PeerChoice = {
  name: 'least-loaded-accounted',
  loadOf: accountedLoad,
  select: (c) => minBy(c, accountedLoad),
};

/** Two random choices among the candidates, the less loaded (with accounting) wins. */
export function twoChoices(random: () => number = Math.random): PeerChoice {
  return {
    name: 'two-choices',
    loadOf: accountedLoad,
    select(c) {
      if (c.length === 1) return c[0];
      const i = Math.floor(random() * c.length);
      let j = Math.floor(random() * (c.length - 1));
      if (j >= i) j++;
      return accountedLoad(c[i]) <= accountedLoad(c[j]) ? c[i] : c[j];
    },
  };
}

// `extra` may be negative (this node's calls there finished since the report).
function accountedLoad(p: PeerEntry): number {
  const l = p.occupancy + p.extra;
  return l > 0 ? l : 0;
}

function minBy(c: readonly PeerEntry[], f: (p: PeerEntry) => number): PeerEntry {
  let best = c[0];
  let bestLoad = f(best);
  for (let i = 1; i < c.length; i++) {
    const l = f(c[i]);
    if (l < bestLoad) {
      best = c[i];
      bestLoad = l;
    }
  }
  return best;
}

const registry = new Map<string, () => PeerChoice>([
  [leastLoaded.name, () => leastLoaded],
  [leastLoadedAccounted.name, () => leastLoadedAccounted],
  ['two-choices', () => twoChoices()],
]);

/** Names of the peer-choice rules `peerChoiceByName` knows. */
export function peerChoiceNames(): string[] {
  return [...registry.keys()];
}

/** The rule registered under `name`; an unknown name lists the known ones. */
export function peerChoiceByName(name: string): PeerChoice {
  const make = registry.get(name);
  if (!make) throw new Error(`unknown peer choice '${name}' (known: ${peerChoiceNames().join(', ')})`);
  return make();
}

/** Registers a rule under its name (a plugin point, as grpc-js load balancers). */
export function registerPeerChoice(name: string, make: () => PeerChoice): void {
  registry.set(name, make);
}
