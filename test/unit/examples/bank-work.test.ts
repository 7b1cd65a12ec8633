import { describe, expect, it } from 'vitest';
import { hold } from '../../../examples/bank';

describe("the bank's held work (BANK_WORK_CPU=hold, the saturation bench's `hold` workload)", () => {
  it('keeps the event loop busy for the time asked while spending little CPU', async () => {
    const cpu = process.cpuUsage();
    const start = performance.now();
    // A timer due at once can only fire at a turn between slices, so it measures how long the
    // loop is held in one go.
    let longestMs = 0;
    let last = performance.now();
    const probe = setInterval(() => {
      const now = performance.now();
      longestMs = Math.max(longestMs, now - last);
      last = now;
    }, 0);
    await hold(100);
    clearInterval(probe);
    longestMs = Math.max(longestMs, performance.now() - last); // the stretch since the probe's last turn
    const wallMs = performance.now() - start;
    const used = process.cpuUsage(cpu);
    const cpuMs = (used.user + used.system) / 1000;
    expect(wallMs).toBeGreaterThanOrEqual(99);
    // A busy loop would spend about the whole 100 ms on the CPU.
    expect(cpuMs).toBeLessThan(wallMs / 2);
    // It yields between slices of at most 1 ms: other work is not held for the whole 100 ms
    // (the bound leaves room for the machine stalling this process now and then).
    expect(longestMs).toBeLessThan(60);
  });
});
