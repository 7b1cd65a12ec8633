import { ServerInterceptingCall, type ServerInterceptor } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { parseBrokerOptions, type BrokerOptions } from '../../../src/broker/options';
import { openFileLimit, ResourcePressure, type Resource } from '../../../src/broker/resource-pressure';
import { grpcServerOptions } from '../../../src/broker/server-options';
import { configErrorOf } from '../../helpers/errors';

const resolved = (o: Partial<BrokerOptions> = {}) => parseBrokerOptions({ nodeId: 'n1', ...o });

describe('server options', () => {
  it('gives grpc-js the documented defaults: streams per connection, keepalive, idle time, message size, session memory', () => {
    expect(grpcServerOptions(resolved())).toEqual({
      'grpc.max_concurrent_streams': 1000,
      'grpc.keepalive_time_ms': 60_000,
      'grpc.keepalive_timeout_ms': 20_000,
      'grpc.max_connection_idle_ms': 300_000,
      'grpc.max_receive_message_length': 4 * 1024 * 1024,
      'grpc-node.max_session_memory': 64,
    });
  });

  it('maps each named option to its grpc-js key, and reads an idle time of 0 as never', () => {
    const o = grpcServerOptions(
      resolved({ maxConnectionIdleMs: 0, maxConnectionAgeMs: 60_000, maxConnectionAgeGraceMs: 5_000, maxSendMessageBytes: 1024, keepaliveTimeMs: 0 }),
    );
    expect(o['grpc.max_connection_idle_ms']).toBeUndefined();
    expect(o).toMatchObject({ 'grpc.max_connection_age_ms': 60_000, 'grpc.max_connection_age_grace_ms': 5_000, 'grpc.max_send_message_length': 1024, 'grpc.keepalive_time_ms': 0 });
  });

  it('applies serverOptions over the named options, interceptors included', () => {
    const interceptor: ServerInterceptor = (_method, call) => new ServerInterceptingCall(call);
    const o = grpcServerOptions(resolved({ maxConcurrentStreams: 10, serverOptions: { 'grpc.max_concurrent_streams': 20, interceptors: [interceptor] } }));
    expect(o['grpc.max_concurrent_streams']).toBe(20);
    expect(o.interceptors).toEqual([interceptor]);
  });

  it('refuses serverOptions that grpc-js would not read, naming the option', () => {
    expect(configErrorOf(() => resolved({ serverOptions: { maxConcurrentStreams: 5 } as never })).field).toBe('serverOptions');
    expect(configErrorOf(() => resolved({ serverOptions: { interceptors: ['auth'] } as never })).field).toBe('serverOptions');
  });

  it('caps connections at 10 000 or 3/4 of the open-file limit, and open calls by capacity and queue', () => {
    const files = openFileLimit();
    expect(resolved().maxConnections).toBe(Math.min(10_000, files === undefined ? Infinity : Math.floor(files * 0.75)));
    expect(resolved().maxStreams).toBe(10_000);
    expect(resolved({ capacity: 10_000 }).maxStreams).toBe(2 * (10_000 + 40_000));
    expect(resolved({ maxConnections: 50, maxStreams: 20 })).toMatchObject({ maxConnections: 50, maxStreams: 20 });
  });
});

describe('resource pressure', () => {
  const resource = (limit: number | undefined): Resource & { n: number } => ({ name: 'connections', option: 'max-connections', n: 0, used() { return this.n; }, limit: () => limit });

  it('says a node is under pressure from 90% of a limit, naming the resource and its option', () => {
    const r = resource(50);
    const p = new ResourcePressure([r]);
    r.n = 44;
    expect(p.check()).toBe('');
    r.n = 45;
    expect(p.check()).toBe('connections 45 of 50 (max-connections)');
  });

  it('stays under pressure until every resource is below 80%, so it does not flap', () => {
    const r = resource(50);
    const p = new ResourcePressure([r]);
    r.n = 50;
    expect(p.check()).not.toBe('');
    r.n = 42;
    expect(p.check()).toBe('connections 42 of 50 (max-connections)');
    r.n = 39;
    expect(p.check()).toBe('');
    r.n = 42;
    expect(p.check()).toBe('');
  });

  it('ignores a resource whose limit is unknown', () => {
    const r = resource(undefined);
    r.n = 1e9;
    expect(new ResourcePressure([r]).check()).toBe('');
  });
});
