import type { Broker } from 'peerbroker';
import type { ClockHandlers } from './gen/app/Clock.js';
import type { GreeterHandlers } from './gen/app/Greeter.js';
import { appProto } from './proto.js';

/** What `peerbroker start --module dist/register.js` calls: adds both services (--services picks). */
export function register(broker: Broker): void {
  const pkg = appProto();
  broker.addService<GreeterHandlers>(pkg.app.Greeter.service, {
    Hello: (call, callback) => callback(null, { message: `hello ${call.request.name}`, servedBy: broker.nodeId }),
    HelloAll: (call, callback) => {
      const names: string[] = [];
      call.on('data', (req) => names.push(req.name));
      call.on('end', () => callback(null, { message: `hello ${names.join(', ')}`, servedBy: broker.nodeId }));
    },
  });
  broker.addService<ClockHandlers>(pkg.app.Clock.service, {
    Now: (_call, callback) => callback(null, { unixMs: String(Date.now()) }),
  });
}
