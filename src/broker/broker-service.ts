import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_DIR } from '../proto-path';
import type { PeerView } from '../cluster/peer-view';
import type { Member__Output } from '../generated/peerbroker/v1/Member';
import type { ProtoGrpcType } from '../generated/broker';

/** Options proto-loader is used with throughout peerbroker (and in the examples). */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

let loaded: ProtoGrpcType | undefined;
/** The generated package object of `peerbroker.v1` (Broker service). */
export function brokerProto(): ProtoGrpcType {
  loaded ??= grpc.loadPackageDefinition(
    protoLoader.loadSync(path.join(PROTO_DIR, 'peerbroker', 'v1', 'broker.proto'), PROTO_LOADER_OPTIONS),
  ) as unknown as ProtoGrpcType;
  return loaded;
}

/** A member as the Broker service reports it. */
export type MemberInfo = Member__Output;

/** The peers as `Members` lists them, at local time `now` (monotonic ms). */
export function peerMembers(peers: PeerView, now: number): MemberInfo[] {
  return peers.peers.map((p) => ({
    nodeId: p.nodeId,
    endpoint: p.endpoint,
    status: peers.displayStatus(p, now),
    load: p.load,
    services: [...p.services],
    endpoints: p.endpoints,
    inFlight: p.inFlight,
    capacity: p.capacity,
    reportAgeMs: Math.round(now - p.receivedAt),
  }));
}

/** The `Status` answer: this node, its call counters and what it dropped (counts as strings: uint64). */
export function statusMessage(
  self: MemberInfo,
  calls: { run: number; redirected: number; rejected: number },
  reportsDropped: Record<string, number>,
  configDropped: Record<string, number>,
) {
  const asStrings = (r: Record<string, number>) =>
    Object.fromEntries(Object.entries(r).filter(([, n]) => n > 0).map(([k, n]) => [k, String(n)]));
  return {
    self,
    callsRun: String(calls.run),
    callsRedirected: String(calls.redirected),
    callsRejected: String(calls.rejected),
    reportsDropped: String(Object.values(reportsDropped).reduce((a, b) => a + b, 0)),
    reportsDroppedByReason: asStrings(reportsDropped),
    configDropped: asStrings(configDropped),
  };
}
