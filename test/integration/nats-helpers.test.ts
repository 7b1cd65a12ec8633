import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, Events, StringCodec, type NatsConnection } from 'nats';
import { startNatsCluster, type NatsClusterHandle } from '../helpers/nats';
import { killAllTracked } from '../helpers/processes';

const sc = StringCodec();
const SUBJECT = 'pbtest.helpers.echo';

/** Collects received messages and lets a test wait for one that matches. */
class Inbox {
  readonly received: string[] = [];
  private waiters: Array<{ match: (m: string) => boolean; resolve: (m: string) => void }> = [];

  push(message: string): void {
    this.received.push(message);
    this.waiters = this.waiters.filter((w) => {
      if (!w.match(message)) return true;
      w.resolve(message);
      return false;
    });
  }

  next(match: (m: string) => boolean, timeoutMs: number): Promise<string> {
    const seen = this.received.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(this.received)}`)), timeoutMs);
      this.waiters.push({
        match,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }
}

describe('nats test helpers', () => {
  let cluster: NatsClusterHandle;
  let subscriber: NatsConnection;
  let publisher: NatsConnection;
  const inbox = new Inbox();

  beforeAll(async () => {
    cluster = await startNatsCluster(3);
  });

  afterAll(async () => {
    await subscriber?.close().catch(() => undefined);
    await publisher?.close().catch(() => undefined);
    await cluster?.stop();
    await killAllTracked();
  });

  it('starts three routed servers on loopback ports', () => {
    expect(cluster.urls).toHaveLength(3);
    expect(new Set(cluster.urls).size).toBe(3);
    for (const url of cluster.urls) expect(url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    for (const server of cluster.servers) expect(server.running).toBe(true);
  });

  it('delivers a message published on server 2 to a subscriber on server 0', async () => {
    subscriber = await connect({
      servers: cluster.urls,
      noRandomize: true, // first server in the list: server 0
      reconnectTimeWait: 100,
      reconnectJitter: 0,
      maxReconnectAttempts: -1,
    });
    expect(subscriber.getServer()).toBe(cluster.urls[0].replace('nats://', ''));
    subscriber.subscribe(SUBJECT, { callback: (err, msg) => !err && inbox.push(sc.decode(msg.data)) });
    await subscriber.flush();

    publisher = await connect({ servers: [cluster.urls[2]] });
    // Interest crosses the route asynchronously, so publish until it arrives.
    await publishUntilReceived(publisher, inbox, 'before-failover');
  });

  it('reconnects the subscriber to another server after server 0 is killed and still delivers', async () => {
    const reconnected = waitForReconnect(subscriber);
    await cluster.servers[0].kill9();
    expect(cluster.servers[0].running).toBe(false);

    const server = await reconnected;
    expect(server).not.toBe(cluster.urls[0].replace('nats://', ''));
    expect(subscriber.getServer()).not.toBe(cluster.urls[0].replace('nats://', ''));

    await publishUntilReceived(publisher, inbox, 'after-failover');
  });

  it('restarts a killed server on the same port and it rejoins the cluster', async () => {
    const server0 = cluster.servers[0];
    const oldPid = server0.pid;
    await server0.restart();
    expect(server0.running).toBe(true);
    expect(server0.pid).not.toBe(oldPid);
    await cluster.waitForRoutes();

    const direct = await connect({ servers: [server0.url] });
    try {
      await publishUntilReceived(direct, inbox, 'via-restarted-server');
    } finally {
      await direct.close();
    }
  });
});

async function waitForReconnect(nc: NatsConnection): Promise<string> {
  for await (const status of nc.status()) {
    if (status.type === Events.Reconnect) return String(status.data);
  }
  throw new Error('connection closed before it reconnected');
}

async function publishUntilReceived(nc: NatsConnection, inbox: Inbox, prefix: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; ; i++) {
    nc.publish(SUBJECT, sc.encode(`${prefix}-${i}`));
    await nc.flush();
    try {
      await inbox.next((m) => m.startsWith(`${prefix}-`), 200);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
  }
}
