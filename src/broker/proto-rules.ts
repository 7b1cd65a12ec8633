import type { ServiceDefinition } from '@grpc/grpc-js';
import type { SessionRule } from '../policy';

/** Method option names as proto-loader exposes custom options. */
const SESSION_OPTION = '(peerbroker.v1.session)';
const IDLE_OPTION = '(peerbroker.v1.session_idle_ms)';

type MethodWithOptions = { path: string; options?: Record<string, unknown> };

/**
 * Session rules declared in a service's .proto with `option (peerbroker.v1.session)`:
 * one rule per ENTER method, within every WITHIN and EXIT method of the service.
 */
export function sessionRulesFromProto(service: string, definition: ServiceDefinition): SessionRule[] {
  const methods = Object.values(definition) as MethodWithOptions[];
  const name = (m: MethodWithOptions) => m.path.slice(1);
  const role = (m: MethodWithOptions) => m.options?.[SESSION_OPTION];
  const enters = methods.filter((m) => role(m) === 'ENTER');
  if (enters.length === 0) return [];
  const within = methods.filter((m) => role(m) === 'WITHIN').map(name);
  const exit = methods.filter((m) => role(m) === 'EXIT').map(name);
  if (exit.length === 0) throw new Error(`service '${service}' declares a session ENTER method but no EXIT method`);
  return enters.map((m) => {
    const idle = Number(m.options?.[IDLE_OPTION] ?? 0);
    return { enter: name(m), within: [name(m), ...within], exit, ...(idle > 0 ? { idleMs: idle } : {}) };
  });
}
