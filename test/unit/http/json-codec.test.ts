import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { HttpCallError } from '../../../src/http/connect-errors';
import { methodCodec } from '../../../src/http/json-codec';
import { PROTO_LOADER_OPTIONS } from '../../../src/transport';
import { thrownBy } from '../../helpers/errors';

const FIXTURE = path.join(__dirname, '..', '..', 'fixtures', 'json-mapping.proto');
const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(FIXTURE, PROTO_LOADER_OPTIONS)) as any;
const echo = pkg.jsontest.v1.Mapping.service.Echo as grpc.MethodDefinition<unknown, unknown>;
const codec = methodCodec(echo);

/** The message of the error `fn` throws, with its status. */
function refusal(fn: () => unknown): { code: number; message: string } {
  const err = thrownBy(fn, HttpCallError);
  return { code: err.code, message: err.message };
}

describe('proto3 JSON mapping of a method', () => {
  it('hands the handler the same object a gRPC call would, from camelCase or proto names', () => {
    const json = JSON.stringify({
      counts: { a: '5', b: 7 },
      text: 'hi',
      color: 'RED',
      inners: [{ firstName: 'Ada' }, { first_name: 'Bo' }],
      blob: Buffer.from([0, 1, 255]).toString('base64'),
      at: '2026-01-02T03:04:05.5+01:00',
      wait: '-1.25s',
      maybeCount: '9007199254740993',
      extra: { k: [1, 'a', null, { deep: true }] },
      nested: { big: '18446744073709551615' },
      opt: 0,
      ratio: 'NaN',
      byId: { '7': { firstName: 'Cy' } },
      mask: 'firstName,nested.big',
    });
    const req = codec.requestFromJson(json) as any;
    const viaGrpc = echo.requestDeserialize(echo.requestSerialize(req));
    expect(req).toEqual(viaGrpc);
    expect(req.counts).toEqual({ a: '5', b: '7' });
    expect(req.inners.map((i: any) => i.firstName)).toEqual(['Ada', 'Bo']);
    expect(req.color).toBe('RED');
    expect(req.pick).toBe('text');
    expect(req.at).toEqual({ seconds: String(Date.UTC(2026, 0, 2, 2, 4, 5) / 1000), nanos: 500_000_000 });
    expect(req.wait).toEqual({ seconds: '-1', nanos: -250_000_000 });
    expect(req.maybeCount).toEqual({ value: '9007199254740993' });
    expect(req.nested.big).toBe('18446744073709551615');
    expect(req.opt).toBe(0);
    expect(Number.isNaN(req.ratio)).toBe(true);
    expect(req.byId['7'].firstName).toBe('Cy');
    expect(req.mask.paths).toEqual(['first_name', 'nested.big']);
  });

  it('writes answers in proto3 JSON: lowerCamelCase, 64-bit integers as strings, enums by name, well-known types in their own form', () => {
    const req = codec.requestFromJson(
      JSON.stringify({ counts: { a: '5' }, number: 3, at: '2026-01-02T03:04:05.123Z', wait: '90s', extra: { k: [1, 'a', null] }, nested: { big: '12' }, blob: 'AAH/', mask: 'firstName' }),
    );
    const out = JSON.parse(codec.responseToJson(req));
    expect(out).toMatchObject({
      counts: { a: '5' },
      number: 3,
      color: 'COLOR_UNSPECIFIED',
      at: '2026-01-02T03:04:05.123Z',
      wait: '90s',
      extra: { k: [1, 'a', null] },
      nested: { big: '12' },
      blob: 'AAH/',
      mask: 'firstName',
      inners: [],
      flag: false,
      small: 0,
      ratio: 0,
    });
    // Unset oneof members, optional fields and messages are left out.
    expect(out).not.toHaveProperty('text');
    expect(out).not.toHaveProperty('opt');
    expect(out).not.toHaveProperty('maybeCount');
    // What it writes, it reads back to the same object.
    expect(codec.requestFromJson(JSON.stringify(out))).toEqual(req);
  });

  it('refuses bad input with INVALID_ARGUMENT naming the field and what was expected', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ small: 'abc' }, /'small': expected an integer .*got "abc"/],
      [{ small: -1 }, /'small': -1 is out of range for uint32/],
      [{ nested: { big: '-1' } }, /'nested\.big': -1 is out of range for uint64/],
      [{ color: 'BLUE' }, /'color': expected one of COLOR_UNSPECIFIED, RED, GREEN, got "BLUE"/],
      [{ color: 'toString' }, /'color': expected one of COLOR_UNSPECIFIED, RED, GREEN, got "toString"/],
      [{ color: 2 ** 31 }, /'color': expected one of .*got 2147483648/],
      [{ small: 2 ** 32 }, /'small': 4294967296 is out of range for uint32/],
      [{ counts: { a: 1e21 } }, /'counts\.a': 1000000000000000000000 is out of range for int64/],
      [{ nested: { big: 2 ** 64 } }, /'nested\.big': 18446744073709551616 is out of range for uint64/],
      [{ text: 'a', number: 1 }, /'text' and 'number' are both set, but only one of oneof 'pick' may be/],
      [{ inners: {} }, /'inners': expected an array, got an object/],
      [{ inners: [{ nickname: 'x' }] }, /'inners\[0\]': unknown field 'nickname' \(jsontest\.v1\.Inner has: firstName\)/],
      [{ at: 'yesterday' }, /'at': expected an RFC 3339 time/],
      [{ wait: '5m' }, /'wait': expected a duration such as "1.5s"/],
      [{ flag: 'yes' }, /'flag': expected true or false/],
      [{ blob: 'not base64!' }, /'blob': expected base64 text/],
      [{ byId: { x: {} } }, /'byId\.x': map key 'x' is not a int32/],
      [[1, 2], /expected an object, got an array/],
    ];
    for (const [input, expected] of cases) {
      const r = refusal(() => codec.requestFromJson(JSON.stringify(input)));
      expect(r.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(r.message).toMatch(/^peerbroker: invalid jsontest\.v1\.Everything: /);
      expect(r.message).toMatch(expected);
    }
  });

  it('keeps a map or Struct key named __proto__ as a key like any other', () => {
    const req = codec.requestFromJson('{"counts":{"__proto__":"3","a":"1"},"extra":{"__proto__":{"x":1}}}') as any;
    expect(Object.keys(req.counts)).toEqual(['__proto__', 'a']);
    expect(Object.getOwnPropertyDescriptor(req.counts, '__proto__')?.value).toBe('3');
    const out = codec.responseToJson(req);
    expect(out).toContain('"counts":{"__proto__":"3","a":"1"}');
    expect(out).toContain('"extra":{"__proto__":{"x":1}}');
  });

  it('reads an enum by number within 32 bits, and integers at the edges of their ranges', () => {
    const req = codec.requestFromJson(JSON.stringify({ color: -(2 ** 31), small: 2 ** 32 - 1, number: -(2 ** 31), counts: { a: Number.MAX_SAFE_INTEGER, b: '-9223372036854775808' } })) as any;
    expect(req.color).toBe(-(2 ** 31));
    expect(req.small).toBe(2 ** 32 - 1);
    expect(req.number).toBe(-(2 ** 31));
    expect(req.counts).toEqual({ a: String(Number.MAX_SAFE_INTEGER), b: '-9223372036854775808' });
  });

  it('says when the body is not JSON at all', () => {
    const r = refusal(() => codec.requestFromJson('{"text": '));
    expect(r.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(r.message).toMatch(/^peerbroker: the body is not JSON: /);
  });

  it('reads an empty body as the empty message, and null as a field left at its default', () => {
    expect(codec.requestFromJson('')).toEqual(codec.requestFromJson('{}'));
    expect(codec.requestFromJson('{"text": null, "inners": null}')).toEqual(codec.requestFromJson('{}'));
  });

  it('serves binary only for a definition without descriptors, and says why JSON is refused', () => {
    const bare = { ...echo } as any;
    delete bare.requestType;
    const c = methodCodec(bare);
    expect(c.json).toBe(false);
    const bytes = echo.requestSerialize({ text: 'x' });
    expect(c.requestFromBinary(bytes)).toEqual(echo.requestDeserialize(bytes));
    const r = refusal(() => c.requestFromJson('{}'));
    expect(r.message).toMatch(/was not loaded with @grpc\/proto-loader.*send application\/proto/);
  });
});
