import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_DIR } from '../proto-path';
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
/** The generated package object of `peerbroker.v1` (Broker service: Members, Status). */
export function brokerProto(): ProtoGrpcType {
  loaded ??= grpc.loadPackageDefinition(
    protoLoader.loadSync(path.join(PROTO_DIR, 'peerbroker', 'v1', 'broker.proto'), PROTO_LOADER_OPTIONS),
  ) as unknown as ProtoGrpcType;
  return loaded;
}

/** A member as the Broker service reports it. */
export type MemberInfo = Member__Output;
