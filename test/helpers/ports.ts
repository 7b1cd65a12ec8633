import net from 'node:net';

/** Ports already handed out by this process, so two calls never return the same one. */
const handedOut = new Set<number>();

const MAX_ATTEMPTS = 20;

function listenOnZero(host: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => resolve(server));
  });
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Asks the kernel for `n` distinct free TCP ports on `host`, holding them all until every one is known. */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`freePorts: 'n' must be a non-negative integer, got ${n}`);
  const held: net.Server[] = [];
  const ports: number[] = [];
  try {
    for (let attempts = 0; ports.length < n; attempts++) {
      if (attempts >= n + MAX_ATTEMPTS) throw new Error(`freePorts: could not find ${n} free ports on '${host}'`);
      const server = await listenOnZero(host);
      held.push(server);
      const { port } = server.address() as net.AddressInfo;
      if (handedOut.has(port)) continue; // still held open, so the kernel moves on
      ports.push(port);
    }
  } finally {
    await Promise.all(held.map(close));
  }
  for (const port of ports) handedOut.add(port);
  return ports;
}

/** Asks the kernel for a free TCP port on `host` (listen on port 0, read it, close). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [port] = await freePorts(1, host);
  return port;
}
