import type { PeerView } from '../cluster';
import { HttpGateway, type HttpGatewayOptions, type SelfSample } from '../http';
import type { Logger } from '../log';
import type { Forwarder } from './forwarder';
import type { ResolvedBrokerOptions } from './options';
import type { LoadedTls } from './tls';

/** What the HTTP side gets of its broker: the peer view, the forwarder, this node now. */
export interface HttpSideDeps {
  log: Logger;
  peers: PeerView;
  tls?: LoadedTls;
  forwarder: Forwarder;
  threshold(): number;
  self(): SelfSample;
}

/**
 * The HTTP listener the options ask for (`httpListen`), or none. It calls the same
 * gate-wrapped handlers as gRPC, so an HTTP call takes a slot like a gRPC one.
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
    forward: (method, call, endpoint, done) => d.forwarder.forward(method, call as never, endpoint, done),
  };
  return new HttpGateway(options);
}
