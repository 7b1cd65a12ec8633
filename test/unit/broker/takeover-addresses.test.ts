import { describe, expect, it } from 'vitest';
import { isCidr, TakeoverAddresses } from '../../../src/broker/takeover-addresses';

describe('TakeoverAddresses', () => {
  it('allows IP addresses inside its ranges only', () => {
    const a = TakeoverAddresses.of(['10.0.5.0/24', '192.168.1.7', 'fd00::/64']);
    expect(['10.0.5.1:7001', '192.168.1.7:1', '[fd00::1]:7001'].map((e) => a.allows(e))).toEqual([true, true, true]);
    expect(['10.0.6.1:7001', '192.168.1.8:1', '[fd01::1]:7001', '127.0.0.1:1'].map((e) => a.allows(e))).toEqual([false, false, false, false]);
  });

  it('never allows an unspecified address or a host name, whatever the ranges say', () => {
    const all = TakeoverAddresses.of(['0.0.0.0/0', '::/0']);
    expect(['0.0.0.0:1', '[::]:1', '[::ffff:0.0.0.0]:1', 'localhost:1', 'db.example:5432', 'not an endpoint'].map((e) => all.allows(e))).toEqual([
      false,
      false,
      false,
      false,
      false,
      false,
    ]);
    expect(all.allows('10.1.2.3:1')).toBe(true);
  });

  it('defaults to loopback of its own family on loopback, and to nothing elsewhere', () => {
    expect(TakeoverAddresses.defaultFor('127.0.0.1:7001').allows('127.0.0.3:7001')).toBe(true);
    expect(TakeoverAddresses.defaultFor('127.0.0.1:7001').allows('10.0.0.3:7001')).toBe(false);
    expect(TakeoverAddresses.defaultFor('[::1]:7001').allows('[::1]:7002')).toBe(true);
    expect(TakeoverAddresses.defaultFor('10.0.0.2:7001').describe()).toBe('none');
    expect(TakeoverAddresses.defaultFor('node1.example:7001').allows('10.0.0.3:7001')).toBe(false);
  });

  it('takes IP addresses and CIDR ranges only', () => {
    expect(['10.0.0.0/8', '10.1.2.3', '::1', 'fd00::/64'].every(isCidr)).toBe(true);
    expect(['10.0.0.0/33', 'fd00::/129', 'example.com', '10.0.0/8', ''].some(isCidr)).toBe(false);
  });
});
