import * as net from 'node:net';
import { tryParseHostPort } from '../wire';

/** An IP address, or a CIDR range such as `10.0.5.0/24` or `fd00::/64`. */
const CIDR = /^([0-9A-Fa-f:.]+)(?:\/(\d{1,3}))?$/;

/** True when `v` is an IP address or a CIDR range (what `takeoverAddresses` takes). */
export function isCidr(v: string): boolean {
  const m = CIDR.exec(v);
  if (!m) return false;
  const family = net.isIP(m[1]);
  if (family === 0) return false;
  const prefix = m[2] === undefined ? undefined : Number(m[2]);
  return prefix === undefined || prefix <= (family === 4 ? 32 : 128);
}

/** The host of `host:port` without IPv6 brackets. */
function hostOf(endpoint: string): string | undefined {
  return tryParseHostPort(endpoint)?.ip;
}

/** The IPv6 addresses that mean every interface. */
const UNSPECIFIED_V6 = new net.BlockList();
UNSPECIFIED_V6.addAddress('::', 'ipv6');
UNSPECIFIED_V6.addAddress('::ffff:0.0.0.0', 'ipv6');

// Listening there means every interface: never adopted, whatever the ranges say.
function isUnspecified(ip: string): boolean {
  const family = net.isIP(ip);
  if (family === 4) return ip.startsWith('0.') || ip === '255.255.255.255';
  return UNSPECIFIED_V6.check(ip, 'ipv6');
}

/**
 * The endpoints a node may adopt: `host:port` whose host is an IP address inside one of
 * the ranges. Never an unspecified address (`0.0.0.0`, `::`: every interface) and never
 * a host name (what it resolves to is not the node's to choose).
 */
export class TakeoverAddresses {
  private readonly list = new net.BlockList();

  private constructor(readonly ranges: readonly string[]) {
    for (const r of ranges) {
      const [ip, prefix] = r.split('/');
      const family = net.isIP(ip) === 4 ? 'ipv4' : 'ipv6';
      this.list.addSubnet(ip, prefix === undefined ? (family === 'ipv4' ? 32 : 128) : Number(prefix), family);
    }
  }

  /** The ranges given (each checked with `isCidr`; throws on one that is not). */
  static of(ranges: readonly string[]): TakeoverAddresses {
    for (const r of ranges) if (!isCidr(r)) throw new Error(`'${r}' is not an IP address or CIDR range`);
    return new TakeoverAddresses(ranges);
  }

  /**
   * The default for a node advertised at `endpoint`: loopback of its own family when it
   * is on loopback (addresses on one machine, as in tests and demos); nothing elsewhere,
   * where the addresses a node may take must be configured.
   */
  static defaultFor(endpoint: string): TakeoverAddresses {
    const host = hostOf(endpoint);
    if (host === 'localhost' || (host !== undefined && net.isIP(host) === 4 && host.startsWith('127.'))) return new TakeoverAddresses(['127.0.0.0/8']);
    const loopback6 = new TakeoverAddresses(['::1/128']);
    if (host !== undefined && net.isIP(host) === 6 && loopback6.allows(`[${host}]:1`)) return loopback6;
    return new TakeoverAddresses([]);
  }

  /** True when `endpoint` may be adopted. */
  allows(endpoint: string): boolean {
    const host = hostOf(endpoint);
    if (host === undefined) return false;
    const family = net.isIP(host);
    if (family === 0 || isUnspecified(host)) return false;
    return this.list.check(host, family === 4 ? 'ipv4' : 'ipv6');
  }

  /** For logs: the ranges, or `none`. */
  describe(): string {
    return this.ranges.length ? this.ranges.join(',') : 'none';
  }
}
