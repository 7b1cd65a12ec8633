/** Raw TCP connections, for tests of what a server does with connections before any protocol. */
import * as net from 'node:net';

/** A raw TCP connection and whether the server closed it. */
export interface RawSocket {
  socket: net.Socket;
  closed(): boolean;
}

/** A raw TCP connection to `endpoint`, resolved once connected. */
export function rawSocket(endpoint: string): Promise<RawSocket> {
  const [host, port] = endpoint.split(':');
  return new Promise((resolve, reject) => {
    let closed = false;
    const socket = net.connect(Number(port), host);
    // Read what the server sends (HTTP/2: its SETTINGS): a socket left with unread data never sees the close.
    socket.resume();
    socket.on('close', () => (closed = true));
    socket.on('error', () => {});
    socket.once('connect', () => resolve({ socket, closed: () => closed }));
    socket.once('error', reject);
  });
}

/** Opens `n` raw connections one after the other (each connected before the next). */
export async function rawSockets(endpoint: string, n: number): Promise<RawSocket[]> {
  const out: RawSocket[] = [];
  for (let i = 0; i < n; i++) out.push(await rawSocket(endpoint));
  return out;
}
