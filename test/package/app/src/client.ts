import * as grpc from '@grpc/grpc-js';
import { createClient } from 'peerbroker';
import type { GreeterClient } from './gen/app/Greeter.js';
import type { HelloReply__Output } from './gen/app/HelloReply.js';
import { appProto } from './proto.js';

// Calls Greeter.Hello through the node given, which does not host it: the stub follows the
// redirect to the node that does. Prints one JSON line of what it saw.
const [endpoint] = process.argv.slice(2);
const pkg = appProto();

const logged: string[] = [];
const logging: grpc.Interceptor = (options, nextCall) =>
  new grpc.InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      logged.push(options.method_definition.path);
      next(metadata, listener);
    },
  });

const hello = (client: GreeterClient, name: string) =>
  new Promise<HelloReply__Output>((resolve, reject) =>
    client.Hello({ name }, (err, reply) => (err || !reply ? reject(err) : resolve(reply))),
  );

const helloAll = (client: GreeterClient, names: string[]) =>
  new Promise<HelloReply__Output>((resolve, reject) => {
    const call = client.HelloAll((err, reply) => (err || !reply ? reject(err) : resolve(reply)));
    for (const name of names) call.write({ name });
    call.end();
  });

const plain = createClient(pkg.app.Greeter, { endpoints: [endpoint] });
const intercepted = createClient(pkg.app.Greeter, { endpoints: [endpoint], interceptors: [logging] });
try {
  // The first node learns of the second from its reports: until then no node it knows hosts Greeter.
  const until = Date.now() + 15_000;
  for (;;) {
    try {
      await hello(plain, 'first');
      break;
    } catch (err) {
      if ((err as grpc.ServiceError).code !== grpc.status.UNIMPLEMENTED || Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const direct = await hello(plain, 'plain');
  const viaInterceptor = await hello(intercepted, 'intercepted');
  const session = await hello(plain.peerbroker.withSession(), 'session');
  const streamed = await helloAll(plain, ['a', 'b', 'c']);
  const streamedIntercepted = await helloAll(intercepted, ['d', 'e']);
  console.log(
    JSON.stringify({
      plain: direct.servedBy,
      intercepted: viaInterceptor.servedBy,
      logged,
      session: session.servedBy,
      streamed: [streamed.message, streamed.servedBy],
      streamedIntercepted: [streamedIntercepted.message, streamedIntercepted.servedBy],
    }),
  );
} finally {
  plain.close();
  intercepted.close();
}
