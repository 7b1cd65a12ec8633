import { afterEach, describe, expect, it, vi } from 'vitest';
import type { NodeHealth } from '../../../src/broker/node-health';
import { NodeStatus } from '../../../src/broker/node-status';
import { LoadCounters } from '../../../src/cluster/load-counters';
import { createLogger } from '../../../src/log';
import type { SelfState } from '../../../src/policy';

const PERIOD = 100;

function setup() {
  const counters = new LoadCounters();
  const self = { nodeId: 'n1', load: 0, running: 0, queued: 0, capacity: 1, maxQueue: 0, hosts: () => true } as SelfState;
  const health = { setServing: vi.fn(), setControlPlane: vi.fn(), check: vi.fn() } as unknown as NodeHealth;
  const recheckPeers = vi.fn();
  const reportNow = vi.fn();
  const status = new NodeStatus({
    counters,
    self,
    health,
    log: createLogger({ level: 'silent' }),
    periodMs: () => PERIOD,
    offlineAfterPeriods: 3,
    loopDelayMs: () => 0,
    pressure: () => '',
    reportNow,
    recheckPeers,
  });
  return { status, counters, self, recheckPeers, reportNow };
}

describe('NodeStatus', () => {
  afterEach(() => void vi.useRealTimers());

  it('looks again at peers a few periods after the control plane came back', () => {
    vi.useFakeTimers();
    const { status, recheckPeers } = setup();
    status.onExchangeStatus('connected', '');
    status.onExchangeStatus('disconnected', '');
    status.onExchangeStatus('reconnected', '');
    expect(status.controlConnected).toBe(true);
    vi.advanceTimersByTime(3 * PERIOD);
    expect(recheckPeers).toHaveBeenCalledTimes(1);
  });

  it('clears that look on stop: a stopped node leaves no timer behind', () => {
    vi.useFakeTimers();
    const { status, recheckPeers } = setup();
    status.start();
    status.onExchangeStatus('disconnected', '');
    status.onExchangeStatus('reconnected', '');
    expect(vi.getTimerCount()).toBe(2); // the self-check and the look at peers
    status.stop();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10 * PERIOD);
    expect(recheckPeers).not.toHaveBeenCalled();
  });

  it('keeps DRAINING and LEAVING against the self-check, and reports every change at once', () => {
    const { status, counters, self, reportNow } = setup();
    status.set('UNHEALTHY');
    expect([counters.status, self.status]).toEqual(['UNHEALTHY', 'UNHEALTHY']);
    status.set('DRAINING');
    status.set('ONLINE');
    expect(counters.status).toBe('DRAINING');
    status.set('LEAVING');
    expect([counters.status, self.status]).toEqual(['LEAVING', 'DRAINING']);
    expect(reportNow).toHaveBeenCalledTimes(3);
  });
});
