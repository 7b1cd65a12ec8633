import type * as grpc from '@grpc/grpc-js';
import { FollowingCall, type Call } from './following-call';
import type { StubContext } from './stub-context';

/**
 * The channel a stub's grpc-js client runs on (`channelOverride`): each call it creates is a
 * `FollowingCall`, below grpc-js's interceptors and stream objects. So the application's
 * interceptors run on every call kind, once per call (not per attempt), and the stub sees
 * only serialized messages. Connectivity questions go to the origin's pooled channel.
 */
export class StubChannel implements grpc.ChannelInterface {
  constructor(
    private readonly ctx: StubContext,
    /** `requestStream` of each method path of the service; an unknown path counts as streaming (its copies are dropped once accepted). */
    private readonly requestStreams: ReadonlyMap<string, boolean>,
    private readonly onClose: () => void,
  ) {}

  /** What `client.close()` does: the root client's closes the pool and stops the member refresh. */
  close(): void {
    this.onClose();
  }

  getTarget(): string {
    return this.ctx.origin;
  }

  getConnectivityState(tryToConnect: boolean): grpc.connectivityState {
    return this.origin().getConnectivityState(tryToConnect);
  }

  watchConnectivityState(currentState: grpc.connectivityState, deadline: Date | number, callback: (error?: Error) => void): void {
    this.origin().watchConnectivityState(currentState, deadline, callback);
  }

  getChannelzRef(): ReturnType<grpc.ChannelInterface['getChannelzRef']> {
    return this.origin().getChannelzRef();
  }

  createCall(...[path, deadline, host, parent, flags]: Parameters<grpc.ChannelInterface['createCall']>): Call {
    return new FollowingCall(this.ctx, { path, deadline, host, parent, flags, requestStream: this.requestStreams.get(path) ?? true });
  }

  private origin(): grpc.Channel {
    return this.ctx.pool.channel(this.ctx.origin);
  }
}
