import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_DIR } from '../proto-path';
import type { BrokerClient, BrokerDefinition } from '../generated/peerbroker/v1/Broker';
import type { Member__Output } from '../generated/peerbroker/v1/Member';

/** Options proto-loader is used with throughout peerbroker (and in the examples). */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/**
 * The package object of `peerbroker.v1` as `brokerProto()` gives it: the Broker service's client
 * constructor. Declared here rather than as the generated `ProtoGrpcType`, whose message entries
 * use a type that is generic only from proto-loader 0.8: the package's declarations then check
 * against every proto-loader of the peer range.
 */
export interface BrokerPackage {
  peerbroker: { v1: { Broker: (new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions) => BrokerClient) & { service: BrokerDefinition } } };
}

let loaded: BrokerPackage | undefined;
/** The package object of `peerbroker.v1` (Broker service: Members, Status). */
export function brokerProto(): BrokerPackage {
  loaded ??= grpc.loadPackageDefinition(
    protoLoader.loadSync(path.join(PROTO_DIR, 'peerbroker', 'v1', 'broker.proto'), PROTO_LOADER_OPTIONS),
  ) as unknown as BrokerPackage;
  return loaded;
}

/** A member as the Broker service reports it. */
export type MemberInfo = Member__Output;
