import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { FileDescriptorProto } from 'protobufjs/ext/descriptor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src';
import { startBroker, startBrokerProcess, type BrokerProcess } from '../helpers/brokers';
import { natsForSuite } from '../helpers/suite';

/** The reflection API as grpcurl speaks it, loaded from the .proto @grpc/reflection ships. */
const REFLECTION_PROTO = path.join(path.dirname(require.resolve('@grpc/reflection/package.json')), 'build', 'proto', 'grpc', 'reflection', 'v1', 'reflection.proto');

interface ReflectionResponse {
  listServicesResponse?: { service: { name: string }[] };
  fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
  errorResponse?: { errorCode: number; errorMessage: string };
}

type ReflectionStream = grpc.ClientDuplexStream<object, ReflectionResponse>;

/** Sends one request on `grpc.reflection.v1.ServerReflection/ServerReflectionInfo` and resolves with the answer. */
function reflect(endpoint: string, request: object): Promise<ReflectionResponse> {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(REFLECTION_PROTO, { keepCase: false, defaults: true, oneofs: true })) as any;
  const client = new pkg.grpc.reflection.v1.ServerReflection(endpoint, grpc.credentials.createInsecure()) as grpc.Client & {
    ServerReflectionInfo(options: grpc.CallOptions): ReflectionStream;
  };
  return new Promise<ReflectionResponse>((resolve, reject) => {
    const call = client.ServerReflectionInfo({ deadline: Date.now() + 5_000 });
    call.once('data', (res: ReflectionResponse) => {
      resolve(res);
      call.end();
    });
    call.once('error', reject);
    call.write(request);
  }).finally(() => client.close());
}

describe('gRPC server reflection', () => {
  const nats = natsForSuite();
  let withReflection: BrokerProcess;
  let without: Broker;

  beforeAll(async () => {
    [withReflection, without] = await Promise.all([
      startBrokerProcess({ nodeId: 'r1', nats: [nats().url], cluster: 'reflection', extraArgs: ['--reflection'] }),
      startBroker({ nodeId: 'r2', nats: [nats().url], cluster: 'reflection' }),
    ]);
  });

  afterAll(async () => {
    await withReflection?.kill9();
  });

  it('lists the services of a node started with --reflection', async () => {
    const res = await reflect(withReflection.endpoint, { listServices: '*' });
    const names = res.listServicesResponse?.service.map((s) => s.name).sort();
    expect(names).toEqual(['bank.Banking', 'bank.Securities', 'grpc.health.v1.Health', 'peerbroker.v1.Broker']);
  });

  it('describes a service by name with the descriptor of its .proto', async () => {
    const res = await reflect(withReflection.endpoint, { fileContainingSymbol: 'bank.Banking' });
    const files = (res.fileDescriptorResponse?.fileDescriptorProto ?? []).map(
      (b) => FileDescriptorProto.decode(b) as unknown as { package: string; service: { name: string; method: { name: string }[] }[] },
    );
    const banking = files.find((f) => f.package === 'bank')?.service.find((s) => s.name === 'Banking');
    expect(banking?.method.map((m) => m.name)).toContain('GetBalance');
  });

  it('is off by default: the reflection service is not there', async () => {
    const err = await reflect(without.endpoint, { listServices: '*' }).then(
      () => undefined,
      (e: grpc.ServiceError) => e,
    );
    expect(err?.code).toBe(grpc.status.UNIMPLEMENTED);
  });
});
