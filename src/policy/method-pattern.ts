/**
 * Method patterns as rules name them: `pkg.Service/Method`, `pkg.Service/*`, or `*`.
 * A leading slash is accepted (`/pkg.Service/Method`, the gRPC path form).
 */
export type MethodPattern = string;

const PATTERN = /^\/?(\*|[A-Za-z_][A-Za-z0-9_.]*\/(\*|[A-Za-z_][A-Za-z0-9_]*))$/;

/** True when `p` is a well-formed method pattern. */
export function isMethodPattern(p: string): boolean {
  return PATTERN.test(p);
}

/** A compiled pattern: matches a gRPC path `/pkg.Service/Method`. */
export function compilePattern(p: MethodPattern): (path: string) => boolean {
  if (!isMethodPattern(p)) throw new Error(`'${p}' is not a method pattern (pkg.Service/Method, pkg.Service/* or *)`);
  const body = p.startsWith('/') ? p.slice(1) : p;
  if (body === '*') return () => true;
  if (body.endsWith('/*')) {
    const prefix = `/${body.slice(0, -1)}`; // "/pkg.Service/"
    return (path) => path.startsWith(prefix) && path.indexOf('/', prefix.length) < 0;
  }
  const exact = `/${body}`;
  return (path) => path === exact;
}
