import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start nats-server clusters and broker processes.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Forks, not threads: each test file gets its own process, so the
    // process-exit hook in test/helpers/processes.ts can kill what it spawned.
    pool: 'forks',
    // The CI machine has 2 cores; each integration file runs several servers.
    maxWorkers: 2,
  },
});
