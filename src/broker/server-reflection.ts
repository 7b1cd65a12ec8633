import * as path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { service as healthService } from 'grpc-health-check';
import { PROTO_DIR } from '../proto-path';
import { PROTO_LOADER_OPTIONS } from '../transport';

/** A method as proto-loader makes it: its message types carry the descriptors of their .proto files. */
type DescribedMethod = grpc.MethodDefinition<unknown, unknown> & { requestType?: Partial<protoLoader.ProtobufTypeDefinition> };

/**
 * gRPC server reflection (`grpc.reflection.v1` and `v1alpha`, from @grpc/reflection) for the
 * services a broker serves, so grpcurl and similar tools can list, describe and call them
 * without the .proto files. Opt-in (`reflection: true`): it tells anyone who can reach the
 * port every method and message the node serves.
 */
export class ServerReflection {
  private readonly services = new Map<string, grpc.ServiceDefinition>();

  /** Records a service served on this node (`name` is its full name, `pkg.Service`). */
  add(name: string, definition: grpc.ServiceDefinition): void {
    this.services.set(name, definition);
  }

  /**
   * Serves reflection on `server` for the recorded services, peerbroker's Broker service and
   * health. Returns the names it describes: a service whose definition was not made by
   * proto-loader (no file descriptors) cannot be described and is left out.
   */
  async addToServer(server: grpc.Server): Promise<string[]> {
    // Loaded only when asked for: most nodes never serve reflection.
    const { ReflectionService } = await import('@grpc/reflection');
    // proto-loader describes a package as one file (`peerbroker_v1.proto`) and reflection keeps
    // the first file of a name: ours goes first, loaded whole (Broker and the session options
    // an application's .proto imports), so it holds everything the other copies have.
    const own = protoLoader.loadSync(
      ['broker.proto', 'options.proto'].map((f) => path.join('peerbroker', 'v1', f)),
      { ...PROTO_LOADER_OPTIONS, includeDirs: [PROTO_DIR] },
    );
    const all = new Map<string, grpc.ServiceDefinition>([
      ['peerbroker.v1.Broker', own['peerbroker.v1.Broker'] as grpc.ServiceDefinition],
      ['grpc.health.v1.Health', healthService as unknown as grpc.ServiceDefinition],
      ...this.services,
    ]);
    // @grpc/reflection reads only the descriptors of a package definition's entries: one
    // request type per service brings in its file and, through it, every import.
    const files: Record<string, unknown> = {};
    const described: string[] = [];
    for (const [name, definition] of all) {
      const method = Object.values(definition)[0] as DescribedMethod | undefined;
      const type = method?.requestType;
      if (!type?.fileDescriptorProtos?.length) continue;
      files[name] = type;
      described.push(name);
    }
    type Root = ConstructorParameters<typeof ReflectionService>[0];
    new ReflectionService(files as Root, { services: described }).addToServer(server);
    return described;
  }
}
