import * as fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_DIR } from '../../src/proto-path';
import { PROTO_LOADER_OPTIONS } from '../../src/transport';
import type { Broker } from '../../src/broker';
import type { ProtoGrpcType } from '../../src/generated/bank';

/** The bank package loaded from proto/examples/bank.proto. */
export function bankProto(): ProtoGrpcType {
  // includeDirs lets bank.proto import peerbroker/v1/options.proto (the session options).
  const def = protoLoader.loadSync('examples/bank.proto', { ...PROTO_LOADER_OPTIONS, includeDirs: [PROTO_DIR] });
  return grpc.loadPackageDefinition(def) as unknown as ProtoGrpcType;
}

/** Simulated work per call, ms, from BANK_WORK_MS (default 1): load without burning CPU. */
export function workMs(): number {
  const v = Number(process.env.BANK_WORK_MS ?? '1');
  return Number.isFinite(v) && v >= 0 ? v : 1;
}

const wait = (ms: number) => new Promise<void>((r) => (ms > 0 ? setTimeout(r, ms) : setImmediate(r)));
const nextTurn = () => new Promise<void>((r) => setImmediate(r));

/**
 * With BANK_WORK_CPU=1 the work is spent on the CPU instead of waiting (the benchmark's CPU-bound
 * workload): in slices of at most 1 ms with a turn of the event loop between them, as a handler
 * that computes in steps would, so calls share the CPU and each holds its slot until done.
 */
async function burn(ms: number): Promise<void> {
  for (let left = ms; left > 0; left -= 1) {
    const until = performance.now() + Math.min(1, left);
    while (performance.now() < until);
    await nextTurn();
  }
}

/** What `hold` sleeps on: a value nobody changes, so each wait runs to its timeout. */
const HELD = new Int32Array(new SharedArrayBuffer(4));

/**
 * With BANK_WORK_CPU=hold the work holds the event loop as `burn` does, in slices of at most
 * 1 ms, but sleeps instead of spending CPU (`Atomics.wait`): the node is busy as if it had a
 * core of its own, and the processes of a cluster on one machine do not compete for cores.
 */
export async function hold(ms: number): Promise<void> {
  for (let left = ms; left > 0; left -= 1) {
    Atomics.wait(HELD, 0, 0, Math.min(1, left));
    await nextTurn();
  }
}

const WORK_MODES: Record<string, (ms: number) => Promise<void>> = { '1': burn, hold };
const work = WORK_MODES[process.env.BANK_WORK_CPU ?? ''];
const sleep = work ? (ms: number) => (ms > 0 ? work(ms) : nextTurn()) : wait;

interface AccountState {
  owner: string;
  balance: number;
}

/** Handlers of bank.Banking and bank.Securities; each call spends `work` ms. */
export function bankImplementations(nodeId: string, work = workMs()) {
  const accounts = new Map<string, AccountState>();
  const transactions = new Map<string, string>();
  const fail = (cb: grpc.sendUnaryData<unknown>, code: grpc.status, details: string) => cb({ code, details }, null);
  const account = (id: string) => accounts.get(id);

  // With BANK_EXEC_LOG set, every executed call appends "<node> <method> <account or symbol>"
  // to that file, so a test can count how often each call really ran.
  const execLog = process.env.BANK_EXEC_LOG;
  const unary =
    <Req, Res>(fn: (req: Req, cb: grpc.sendUnaryData<unknown>) => Res | undefined) =>
    (call: grpc.ServerUnaryCall<Req, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      void sleep(work).then(() => {
        if (execLog) {
          const req = call.request as { accountId?: string; symbol?: string; transactionId?: string };
          const key = req.accountId ?? req.symbol ?? req.transactionId ?? '';
          fs.appendFileSync(execLog, `${nodeId} ${call.getPath().split('/').pop()} ${key}\n`);
        }
        const res = fn(call.request, cb);
        if (res !== undefined) cb(null, res);
      });
    };

  const banking = {
    OpenAccount: unary((req: { owner: string; initialCents: string }, cb) => {
      const initial = Number(req.initialCents);
      if (!req.owner) return void fail(cb, grpc.status.INVALID_ARGUMENT, "'owner' is empty");
      if (!(initial >= 0)) return void fail(cb, grpc.status.INVALID_ARGUMENT, "'initial_cents' is negative");
      const accountId = `${nodeId}-${randomUUID().slice(0, 8)}`;
      accounts.set(accountId, { owner: req.owner, balance: initial });
      return { accountId, owner: req.owner, balanceCents: initial };
    }),
    Deposit: unary((req: { accountId: string; amountCents: string }, cb) => {
      const a = account(req.accountId);
      const amount = Number(req.amountCents);
      if (!(amount > 0)) return void fail(cb, grpc.status.INVALID_ARGUMENT, "'amount_cents' must be positive");
      if (a) a.balance += amount;
      return { accountId: req.accountId, balanceCents: a?.balance ?? amount, servedBy: nodeId };
    }),
    Withdraw: unary((req: { accountId: string; amountCents: string }, cb) => {
      const a = account(req.accountId);
      const amount = Number(req.amountCents);
      if (!(amount > 0)) return void fail(cb, grpc.status.INVALID_ARGUMENT, "'amount_cents' must be positive");
      if (a && a.balance < amount) return void fail(cb, grpc.status.FAILED_PRECONDITION, 'insufficient funds');
      if (a) a.balance -= amount;
      return { accountId: req.accountId, balanceCents: a?.balance ?? 0, servedBy: nodeId };
    }),
    GetBalance: unary((req: { accountId: string }) => ({
      accountId: req.accountId,
      balanceCents: account(req.accountId)?.balance ?? 0,
      servedBy: nodeId,
    })),
    BeginTransaction: unary((req: { accountId: string }) => {
      const transactionId = `${nodeId}-tx-${randomUUID().slice(0, 8)}`;
      transactions.set(transactionId, req.accountId);
      return { transactionId, accountId: req.accountId };
    }),
    Commit: unary((req: { transactionId: string }) => ({
      transactionId: req.transactionId,
      committed: transactions.delete(req.transactionId),
    })),
    Abort: unary((req: { transactionId: string }) => {
      transactions.delete(req.transactionId);
      return { transactionId: req.transactionId, committed: false };
    }),
    StreamStatements: (call: grpc.ServerWritableStream<{ accountId: string; count: number }, unknown>) => {
      void (async () => {
        const n = Math.min(call.request.count || 3, 10_000);
        for (let i = 0; i < n && !call.cancelled; i++) {
          await sleep(work);
          call.write({ accountId: call.request.accountId, index: i, amountCents: (i + 1) * 100, servedBy: nodeId });
        }
        call.end();
      })();
    },
    DepositBatch: (
      call: grpc.ServerReadableStream<{ accountId: string; amountCents: string }, unknown>,
      cb: grpc.sendUnaryData<unknown>,
    ) => {
      let count = 0;
      let total = 0;
      call.on('data', (item: { accountId: string; amountCents: string }) => {
        const amount = Number(item.amountCents);
        const a = account(item.accountId);
        if (a && amount > 0) a.balance += amount;
        count++;
        total += amount;
      });
      let answered = false;
      const answer = (err: grpc.ServiceError | null, value: unknown) => {
        if (answered) return;
        answered = true;
        cb(err, value);
      };
      call.on('end', () => void sleep(work).then(() => answer(null, { count, totalCents: String(total), servedBy: nodeId })));
      // A cancelled stream never emits 'end': answer anyway (grpc-js drops it), so the call ends and its slot frees.
      call.on('cancelled', () => answer({ code: grpc.status.CANCELLED, details: 'cancelled' } as grpc.ServiceError, null));
    },
  };

  const price = (symbol: string) => {
    let h = 0;
    for (const c of symbol) h = (h * 31 + c.charCodeAt(0)) % 100_000;
    return 10 + h / 100 + Math.sin(Date.now() / 10_000);
  };
  const securities = {
    Audit: (call: grpc.ServerUnaryCall<{ busyMs: number }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      // Deliberately synchronous: the event loop is blocked for the whole time.
      const busyMs = Math.min(call.request.busyMs, 60_000);
      const until = Date.now() + busyMs;
      while (Date.now() < until);
      cb(null, { busyMs, servedBy: nodeId });
    },
    GetQuote: unary((req: { symbol: string }) => ({ symbol: req.symbol, price: price(req.symbol), atMs: String(Date.now()), servedBy: nodeId })),
    Trade: (call: grpc.ServerDuplexStream<{ orderId: string; symbol: string; quantity: string }, unknown>) => {
      // Fills go out in order: each waits for the previous one.
      let chain = Promise.resolve();
      call.on('data', (o: { orderId: string; symbol: string; quantity: string }) => {
        chain = chain.then(() => sleep(work)).then(() => {
          if (!call.cancelled) call.write({ orderId: o.orderId, symbol: o.symbol, quantity: o.quantity, price: price(o.symbol), servedBy: nodeId });
        });
      });
      call.on('end', () => void chain.then(() => call.end()));
      // A cancelled stream never emits 'end': end our side, so the call ends and its slot frees.
      call.on('cancelled', () => {
        if (!call.writableEnded) call.end();
      });
    },
    WatchQuotes: (call: grpc.ServerWritableStream<{ symbols: string[]; count: number }, unknown>) => {
      void (async () => {
        const symbols = call.request.symbols.length > 0 ? call.request.symbols : ['ACME'];
        const n = Math.min(call.request.count || 3, 10_000);
        for (let i = 0; i < n && !call.cancelled; i++) {
          await sleep(work);
          const symbol = symbols[i % symbols.length];
          call.write({ symbol, price: price(symbol), atMs: String(Date.now()), servedBy: nodeId });
        }
        call.end();
      })();
    },
  };
  return { banking, securities };
}

/**
 * Adds bank.Banking and bank.Securities, answering as node `nodeId`, to `target`: a Broker
 * or a plain grpc.Server. Each call spends `work` ms (default: $BANK_WORK_MS, else 1).
 */
export function addBank(
  target: { addService(definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void },
  nodeId: string,
  work?: number,
): void {
  const proto = bankProto();
  const impl = bankImplementations(nodeId, work);
  target.addService(proto.bank.Banking.service, impl.banking as unknown as grpc.UntypedServiceImplementation);
  target.addService(proto.bank.Securities.service, impl.securities as unknown as grpc.UntypedServiceImplementation);
}

/** Registers bank.Banking and bank.Securities on `broker` (the `--module` entry point). */
export function register(broker: Broker): void {
  addBank(broker, broker.nodeId);
}
