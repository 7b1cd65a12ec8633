import type { Metadata } from '@grpc/grpc-js';
import type { PeerView } from '../cluster';
import { HttpGateway, type HttpGatewayOptions, type SelfSample } from '../http';
import type { Logger } from '../log';
import type { ConnectionLimits } from './connection-limits';
import type { ResolvedBrokerOptions } from './options';
import type { LoadedTls } from './tls';

/** What the HTTP side gets of its broker: the peer view, the caps it shares with gRPC, this node now. */
export interface HttpSideDeps {
  log: Logger;
  peers: PeerView;
  tls?: LoadedTls;
  /** The node's caps on connections and calls: HTTP ones count with gRPC ones. */
  limits: ConnectionLimits;
  /** The gate's response headers of every accepted call (`CallGate.acceptedHeaders`). */
  acceptedHeaders: Metadata;
  threshold(): number;
  self(): SelfSample;
}

/**
 * The HTTP listener the options ask for (`httpListen`), or none. It calls the same
 * gate-wrapped handlers as gRPC, so an HTTP call takes a slot like a gRPC one (and the gate
 * relays it over gRPC to a peer without an HTTP listener).
 */
export function createHttpGateway(o: ResolvedBrokerOptions, d: HttpSideDeps): HttpGateway | undefined {
  if (!o.httpListen) return undefined;
  const options: HttpGatewayOptions = {
    nodeId: o.nodeId,
    cluster: o.cluster,
    listen: o.httpListen,
    advertise: o.httpAdvertise,
    maxBodyBytes: o.httpMaxBodyBytes,
    allowOrigins: o.httpAllowOrigins,
    tls: d.tls,
    log: d.log.child({ part: 'http' }),
    peers: d.peers,
    threshold: d.threshold,
    self: d.self,
    limits: d.limits,
    sharedHeaders: d.acceptedHeaders,
  };
  return new HttpGateway(options);
}
