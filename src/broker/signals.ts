import type { Logger } from '../log';

/** What draining on signals needs of a broker. */
interface Drainable {
  readonly log: Logger;
  drain(): Promise<void>;
  stop(): Promise<void>;
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/**
 * SIGTERM or SIGINT drains the broker, then exits the process with 0 (1 if stopping
 * failed); a second signal stops at once. A listener replaces Node's default of dying
 * at once, so the process must exit by itself: this is for processes the broker owns
 * (the CLI, `handleSignals: true`). Returns a function that removes the listeners.
 */
export function drainOnSignals(broker: Drainable): () => void {
  let draining = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (draining) {
      broker.log.warn({ signal }, 'second signal: stopping now');
      void broker.stop().finally(() => process.exit(0));
      return;
    }
    draining = true;
    broker.log.info({ signal }, 'signal received');
    broker.drain().then(
      () => process.exit(0),
      (err: unknown) => {
        broker.log.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  return () => {
    for (const s of SIGNALS) process.off(s, onSignal);
  };
}
