import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_LOADER_OPTIONS } from 'peerbroker';
import type { ProtoGrpcType } from './gen/greeter.js';

/** The app package, loaded the way the generated types describe it. */
export function appProto(): ProtoGrpcType {
  const file = new URL('../protos/greeter.proto', import.meta.url).pathname;
  return grpc.loadPackageDefinition(protoLoader.loadSync(file, PROTO_LOADER_OPTIONS)) as unknown as ProtoGrpcType;
}
