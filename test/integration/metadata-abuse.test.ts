import * as grpc from '@grpc/grpc-js';
import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bankProto } from '../../examples/bank';
import { inProcessBus, MD_FOLLOW, MD_HOPS, MD_SESSION, type Broker } from '../../src';
import { cleanupBrokers, holdSlots, plainBankClient, startBroker, unary, waitForLoad, type SlotHold } from '../helpers/brokers';

/** Metadata of a following client with `extra` entries set as given. */
function md(extra: Record<string, string>, follows = true): grpc.Metadata {
  const m = new grpc.Metadata();
  if (follows) m.set(MD_FOLLOW, '1');
  for (const [k, v] of Object.entries(extra)) m.set(k, v);
  return m;
}

let securities: grpc.Client | undefined;

async function outcome(bank: grpc.Client, method: string, metadata: grpc.Metadata) {
  const client = method === 'GetQuote' ? securities! : bank;
  return unary(client, method, method === 'GetQuote' ? { symbol: 'ACME' } : { accountId: 'm' }, { metadata, timeoutMs: 3_000 }).then(
    (r) => ({ servedBy: r.servedBy }),
    (e: ServiceError) => ({ code: e.code, details: e.details, location: e.metadata?.get('peerbroker-location-node')[0] }),
  );
}

describe('hostile metadata (README, Security)', () => {
  let n1: Broker;
  let n2: Broker;
  let hold: SlotHold;
  let raw: grpc.Client;

  beforeAll(async () => {
    // n1 over threshold, n2 idle: a well-formed following call at n1 is redirected.
    const bus = inProcessBus();
    const common = { cluster: 'md', capacity: 4, periodMs: 100, workMs: 1 };
    n1 = await startBroker({ nodeId: 'n1', exchange: bus.exchange(), ...common });
    n2 = await startBroker({ nodeId: 'n2', exchange: bus.exchange(), ...common });
    hold = holdSlots(n1.endpoint, 3);
    await waitForLoad(n2, n1, 0.75);
    await waitForLoad(n1, n2, 0);
    raw = plainBankClient(n1.endpoint);
    securities = new (bankProto().bank.Securities)(n1.endpoint, grpc.credentials.createInsecure());
  });

  afterAll(async () => {
    hold?.release();
    securities?.close();
    await cleanupBrokers();
  });

  it('redirects a well-formed following call (the control)', async () => {
    expect(await outcome(raw, 'GetBalance', md({ [MD_HOPS]: '0' }))).toMatchObject({ code: status.RESOURCE_EXHAUSTED, location: 'n2' });
  });

  // (HTTP/2 trims white space around a value, and grpc-js sends ASCII only: ' 0' arrives as '0'.)
  it.each(['-1', '99999999999999999999', '1e9', 'abc', '0x0', '+0', '0.5', '2', '7'])(
    "treats peerbroker-hops %j (negative, huge, not a number or at the limit) as the hop limit: runs here, never redirected",
    async (hops) => {
      const before = n1.stats;
      expect(await outcome(raw, 'GetBalance', md({ [MD_HOPS]: hops }))).toEqual({ servedBy: 'n1' });
      expect(n1.stats.redirected).toBe(before.redirected);
    },
  );

  it.each([
    ['without a dot', 'n2AAAAAAAAAAAA'],
    ['with a random part under 8 characters', 'n2.AAAA'],
    ['with two dots', 'n2.AAAAAAAA.BBBB'],
    ['with a space in the node id', 'n 2.AAAAAAAAAAAA'],
    ['of 130 characters (over 129)', `n2.${'A'.repeat(127)}`],
    ['of 4000 characters', `n2.${'A'.repeat(3997)}`],
    ['with characters outside the token alphabet', 'n2.AAAA%41AAAA'],
  ])('rejects a session token %s with INVALID_ARGUMENT, on any method; nothing runs', async (_what, token) => {
    const before = n1.stats;
    for (const method of ['GetBalance', 'GetQuote']) {
      const r = await outcome(raw, method, md({ [MD_SESSION]: token }));
      expect(r).toMatchObject({ code: status.INVALID_ARGUMENT });
      expect((r as { details: string }).details).toContain("malformed 'peerbroker-session' token");
    }
    expect(n1.stats.run).toBe(before.run);
  });

  it("rejects a session call whose token names a node that is not a member with FAILED_PRECONDITION, naming it", async () => {
    const r = await outcome(raw, 'GetBalance', md({ [MD_SESSION]: 'ghost.AAAAAAAAAAAA' }));
    expect(r).toMatchObject({ code: status.FAILED_PRECONDITION });
    expect((r as { details: string }).details).toContain("session owner 'ghost' is off-line");
  });

  it('rejects a session call with a well-formed token this node never issued with FAILED_PRECONDITION', async () => {
    const r = await outcome(raw, 'GetBalance', md({ [MD_SESSION]: 'n1.AAAAAAAAAAAAAAAA' }));
    expect(r).toMatchObject({ code: status.FAILED_PRECONDITION });
    expect((r as { details: string }).details).toContain('unknown or expired');
  });

  it("sends a session call with a token naming a member to that member only, which refuses a token it never issued", async () => {
    const r = await outcome(raw, 'GetBalance', md({ [MD_SESSION]: 'n2.AAAAAAAAAAAAAAAA' }));
    expect(r).toMatchObject({ code: status.RESOURCE_EXHAUSTED, location: 'n2' });
    const atN2 = await outcome(plainBankClient(n2.endpoint), 'GetBalance', md({ [MD_SESSION]: 'n2.AAAAAAAAAAAAAAAA', [MD_HOPS]: '1' }));
    expect(atN2).toMatchObject({ code: status.FAILED_PRECONDITION });
  });

  it('ignores a well-formed token on a method outside sessions', async () => {
    expect(await outcome(raw, 'GetQuote', md({ [MD_SESSION]: 'ghost.AAAAAAAAAAAA', [MD_HOPS]: '2' }))).toEqual({ servedBy: 'n1' });
  });

  it('never redirects a client that does not follow, whatever it sends', async () => {
    const before = n1.stats;
    const r = await outcome(raw, 'GetBalance', md({ [MD_HOPS]: '-5', [MD_FOLLOW]: 'yes' }, false));
    expect(r).toEqual({ servedBy: 'n1' });
    expect(n1.stats.redirected).toBe(before.redirected);
  });
});
