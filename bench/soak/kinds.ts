/**
 * The calls of the soak's mix, one `Step` per kind: a step makes one call (a session: its few
 * calls; an episode: a node's worth of held slots and the calls that wait behind them),
 * records how each ended, then says it is done. The bulk kinds (plain and following unary
 * calls) come from the bench's callers (`bench/load/callers.ts`).
 *
 * Every call a client cancels, or whose deadline passes, sends an RST_STREAM, and a Node HTTP/2
 * server (nghttp2's rapid-reset guard, CVE-2023-44487) allows a connection 1,000 of them plus
 * 33 a second: past that it closes the connection with GOAWAY(INTERNAL_ERROR) and every call
 * on it fails INTERNAL. grpc-js clients of one target share one connection, so the cancelling
 * kinds are paced to stay well under that (see `MIX` in run.ts).
 */
import * as grpc from '@grpc/grpc-js';
import { bankProto } from '../../examples/bank';
import { createClient, MD_FOLLOW, MD_HOPS, type BrokeredClient } from '../../src';
import type { BankingClient } from '../../src/generated/bank/Banking';
import type { SecuritiesClient } from '../../src/generated/bank/Securities';
import { makeCaller, type Caller } from '../load/callers';
import type { LoadConfig } from '../load/protocol';
import type { SoakTarget } from './protocol';

/** Records how a call ended: `OK` or a gRPC status name, and the status details. */
export type End = (outcome: string, details?: string) => void;
/** Starts counting one call of `kind`; the function it returns records its outcome, once. */
export type StartCall = (kind: string) => End;
/** One turn of a lane: its calls, each started with `start`, then `done()`. */
export type Step = (start: StartCall, done: () => void) => void;

/** Messages each streaming call sends or receives. */
const STREAM_MESSAGES = 8;
/** Deadline of the calls meant to expire in a held node's queue, ms. */
const EXPIRE_DEADLINE_MS = 250;
/** When the calls meant to be cancelled in a held node's queue are cancelled, ms. */
const CANCEL_QUEUED_AFTER_MS = 100;
/** How long an episode waits for every hold to be accepted, ms; past it, it goes on with those it has. */
const HOLD_ACCEPT_MS = 3_000;

const noop = () => {};

/** Records a call's end from its error or status (none: OK). */
function report(end: End, s: { code: number; details?: string } | null | undefined): void {
  if (!s || s.code === grpc.status.OK) end('OK');
  else end(grpc.status[s.code] ?? `code ${s.code}`, s.details);
}

/** The outcome of a streaming call: its final status, once it comes. */
function onStatus(call: grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>, end: End): void {
  call.on('error', noop); // the status below says the same
  call.on('status', (s: grpc.StatusObject) => report(end, s));
}

/** Every client a generator uses, made once, so no step opens a connection of its own. */
export class SoakClients {
  readonly stubSecurities: BrokeredClient<SecuritiesClient>;
  readonly stubBanking: BrokeredClient<BankingClient>;
  /** Plain clients per node: for calls pinned to that node (episodes), and plain calls cancelled there. */
  readonly nodeSecurities: SecuritiesClient[];
  readonly nodeBanking: BankingClient[];
  private callers: Caller[] = [];
  /** Plain grpc-js `GetQuote`, round-robin over the nodes (set by `open()`). */
  plain!: Caller;
  /** The stub's `GetQuote` (set by `open()`). */
  follow!: Caller;

  constructor(
    readonly target: SoakTarget,
    readonly deadlineMs: number,
  ) {
    const bank = bankProto().bank;
    this.stubSecurities = createClient(bank.Securities, { endpoints: target.endpoints });
    this.stubBanking = createClient(bank.Banking, { endpoints: target.endpoints });
    const creds = grpc.credentials.createInsecure();
    this.nodeSecurities = target.endpoints.map((ep) => new bank.Securities(ep, creds));
    this.nodeBanking = target.endpoints.map((ep) => new bank.Banking(ep, creds));
  }

  /** Makes the bulk callers: plain grpc-js round-robin over the nodes, and the stub. */
  async open(): Promise<void> {
    // A caller reads only the target, the call and the deadline of its brief; the rest is the driver's.
    const cfg = (kind: 'grpc-rr' | 'stub'): LoadConfig => ({
      id: `soak-${this.target.name}-${kind}`,
      target: { kind, endpoints: this.target.endpoints },
      call: { kind: 'quote' },
      mode: { kind: 'closed', concurrency: 1 },
      warmupMs: 0,
      durationMs: 0,
      maxCalls: 0,
      deadlineMs: this.deadlineMs,
      bucketMs: 1_000,
    });
    this.plain = await makeCaller(cfg('grpc-rr'));
    this.follow = await makeCaller(cfg('stub'));
    this.callers = [this.plain, this.follow];
  }

  /** Call options with a deadline `ms` from now (default: the brief's). */
  deadline(ms = this.deadlineMs): grpc.CallOptions {
    return { deadline: Date.now() + ms };
  }

  /** Closes every channel (the calls are over by then). */
  async close(): Promise<void> {
    await Promise.all(this.callers.map((c) => c.close()));
    for (const c of [this.stubSecurities, this.stubBanking, ...this.nodeSecurities, ...this.nodeBanking]) c.close();
  }
}

/** Metadata that makes a node run the call itself: it followed `maxHops` (2) redirects already. */
function pinned(): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set(MD_FOLLOW, '1');
  md.set(MD_HOPS, '2');
  return md;
}

/** A bulk unary call through one of the bench's callers. */
export function bulkStep(kind: string, caller: () => Caller): Step {
  return (start, done) => {
    const end = start(kind);
    caller().call((err, _node, details) => {
      end(err ?? 'OK', details);
      done();
    });
  };
}

/** Server-, client-streaming and bidi calls through the stub, in turn. */
export function streamStep(c: SoakClients, which: 'server' | 'client' | 'bidi'): Step {
  return (start, done) => {
    const end = start(`stream-${which}`);
    const finish: End = (o, details) => {
      end(o, details);
      done();
    };
    if (which === 'server') {
      const s = c.stubSecurities.WatchQuotes({ symbols: ['ACME', 'INIT'], count: STREAM_MESSAGES }, c.deadline());
      s.on('data', noop);
      onStatus(s, finish);
    } else if (which === 'client') {
      const w = c.stubBanking.DepositBatch(c.deadline(), (err) => report(finish, err));
      for (let i = 0; i < STREAM_MESSAGES; i++) w.write({ accountId: 'soak', amountCents: 100 });
      w.end();
    } else {
      const t = c.stubSecurities.Trade(c.deadline());
      t.on('data', noop);
      onStatus(t, finish);
      for (let i = 0; i < STREAM_MESSAGES; i++) t.write({ orderId: `o${i}`, symbol: 'ACME', quantity: 1 });
      t.end();
    }
  };
}

/**
 * A call cancelled by the client, five ways in turn: a unary call through the stub on the next
 * turn (it may have ended: then OK), a server stream after its first message, a bidi stream
 * after its first fill, a client stream before its end (its handler is running, waiting for
 * 'end'), and a plain client's unary call on the next turn (in the cluster a loaded node may
 * be relaying it: the forwarder passes the cancel on).
 */
export function cancelStep(c: SoakClients): Step {
  let turn = 0;
  return (start, done) => {
    const end = start('cancel');
    const finish: End = (o, details) => {
      end(o, details);
      done();
    };
    const way = turn++ % 5;
    if (way === 4) {
      const call = c.nodeSecurities[turn % c.nodeSecurities.length].GetQuote({ symbol: 'ACME' }, c.deadline(), (err) => report(finish, err));
      setImmediate(() => call.cancel());
    } else if (way === 0) {
      const call = c.stubSecurities.GetQuote({ symbol: 'ACME' }, c.deadline(), (err) => report(finish, err));
      setImmediate(() => call.cancel());
    } else if (way === 1) {
      const s = c.stubSecurities.WatchQuotes({ symbols: ['ACME'], count: 10_000 }, c.deadline());
      s.once('data', () => s.cancel());
      onStatus(s, finish);
    } else if (way === 2) {
      const t = c.stubSecurities.Trade(c.deadline());
      t.once('data', () => t.cancel());
      onStatus(t, finish);
      for (let i = 0; i < STREAM_MESSAGES; i++) t.write({ orderId: `c${i}`, symbol: 'ACME', quantity: 1 });
    } else {
      const w = c.stubBanking.DepositBatch(c.deadline(), (err) => report(finish, err));
      w.write({ accountId: 'soak', amountCents: 100 });
      w.once('metadata', () => setImmediate(() => w.cancel()));
    }
  };
}

/**
 * A session through its own `withSession()` client: enter, a call within, then either the
 * exit call (`commit`) or nothing more (`abandon`: the node forgets it after its idle time).
 */
export function sessionStep(c: SoakClients, how: 'commit' | 'abandon'): Step {
  const kind = `session-${how}`;
  let n = 0;
  return (start, done) => {
    const s = c.stubBanking.peerbroker.withSession() as unknown as BankingClient;
    const accountId = `soak-${how}-${n++ % 1000}`;
    const step = (call: (cb: (err: grpc.ServiceError | null, res?: unknown) => void) => void, then: (res: unknown) => void) => {
      const end = start(kind);
      call((err, res) => {
        report(end, err);
        if (err) done();
        else then(res);
      });
    };
    step(
      (cb) => s.BeginTransaction({ accountId }, c.deadline(), cb),
      (tx) =>
        step(
          (cb) => s.Deposit({ accountId, amountCents: 100 }, c.deadline(), cb),
          () =>
            how === 'abandon'
              ? done()
              : step((cb) => s.Commit({ transactionId: (tx as { transactionId: string }).transactionId }, c.deadline(), cb), () => done()),
        ),
    );
  };
}

/**
 * An episode on one node (the next one each time): every slot is taken by a client-streaming
 * or bidi call pinned to it (handlers that wait for the client), then `queued` unary calls
 * pinned to it wait in its queue: half until their deadline passes there, half until they are
 * cancelled there. Then three holds in four end normally and the others are cancelled.
 */
export function episodeStep(c: SoakClients, queued: number): Step {
  let nodeIndex = 0;
  return (start, done) => {
    const i = nodeIndex++ % c.target.endpoints.length;
    const holds: Array<{ release(cancel: boolean): void }> = [];
    let accepted = 0;
    let holdsLeft = c.target.capacity;
    let allAccepted!: () => void;
    const accepting = new Promise<void>((r) => (allAccepted = r));
    const holdsEnded = new Promise<void>((resolve) => {
      const ended = (end: End): End => (o, details) => {
        end(o, details);
        if (--holdsLeft === 0) resolve();
      };
      const onAccepted = () => {
        if (++accepted === c.target.capacity) allAccepted();
      };
      // Longer than the episode can take: a hold ends when released, never by its deadline.
      const holdOpts = c.deadline(c.deadlineMs + 20_000);
      for (let k = 0; k < c.target.capacity; k++) {
        const end = ended(start('hold'));
        if (k % 2 === 0) {
          const w = c.nodeBanking[i].DepositBatch(pinned(), holdOpts, (err) => report(end, err));
          w.once('metadata', onAccepted);
          w.write({ accountId: 'soak-hold', amountCents: 1 });
          holds.push({ release: (cancel) => (cancel ? w.cancel() : w.end()) });
        } else {
          const t = c.nodeSecurities[i].Trade(pinned(), holdOpts);
          t.once('metadata', onAccepted);
          t.on('data', noop);
          onStatus(t, end);
          holds.push({ release: (cancel) => (cancel ? t.cancel() : t.end()) });
        }
      }
    });
    const waiting = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
    void Promise.race([accepting, waiting(HOLD_ACCEPT_MS)])
      .then(() =>
        Promise.all(
          Array.from(
            { length: queued },
            (_, k) =>
              new Promise<void>((resolve) => {
                const expire = k % 2 === 0;
                const end = start(expire ? 'expire-in-queue' : 'cancel-in-queue');
                const opts = c.deadline(expire ? EXPIRE_DEADLINE_MS : c.deadlineMs);
                const call = c.nodeSecurities[i].GetQuote({ symbol: 'ACME' }, pinned(), opts, (err) => {
                  report(end, err);
                  resolve();
                });
                if (!expire) setTimeout(() => call.cancel(), CANCEL_QUEUED_AFTER_MS);
              }),
          ),
        ),
      )
      .then(() => {
        // A quarter cancelled, of both kinds: cancels cost RST_STREAMs, which a server allows 33/s (kinds.ts, top).
        holds.forEach((h, k) => h.release(k % 8 >= 6));
        return holdsEnded;
      })
      .then(done);
  };
}
