import * as grpc from '@grpc/grpc-js';
import type { Broker } from '../../src/broker';

const raw = (b: Buffer) => b;

/**
 * `bench.Echo/Echo`: raw bytes in, the same bytes out. No protobuf on either side,
 * so the payload scenario measures transport, not serialization.
 */
export const echoService: grpc.ServiceDefinition<grpc.UntypedServiceImplementation> = {
  Echo: {
    path: '/bench.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
    originalName: 'Echo',
  },
};

/** Handlers of `bench.Echo`. */
export const echoImplementation: grpc.UntypedServiceImplementation = {
  Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request),
};

/** A grpc-js client constructor of `bench.Echo`. */
export const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');

/** `--module` entry point: hosts `bench.Echo` on a broker. */
export function register(broker: Broker): void {
  broker.addService(echoService, echoImplementation);
}
