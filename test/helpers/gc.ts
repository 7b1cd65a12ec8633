import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const runGc = vm.runInNewContext('gc') as () => void;

/**
 * Runs full garbage collections, with turns of the event loop in between (a WeakRef
 * made in this turn stays alive until it ends), so a test can check what was freed.
 */
export async function collectGarbage(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setImmediate(r));
    runGc();
  }
}

/** How many of `refs` still point at a live object. */
export function alive(refs: readonly WeakRef<object>[]): number {
  return refs.filter((r) => r.deref() !== undefined).length;
}
