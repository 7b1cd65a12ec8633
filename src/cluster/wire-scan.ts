/**
 * A check of protobuf wire format without decoding: every tag, varint and length in
 * bounds. protobufjs throws on malformed input, and building an exception costs tens of
 * microseconds; garbage on the load subjects is turned away here for about one.
 */

// Reads a varint of at most `maxBytes` at `i`; returns its value and the next offset, or -1 when cut off or too long.
function varint(b: Uint8Array, i: number, maxBytes: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (let k = 0; k < maxBytes; k++) {
    if (i >= b.length) return [0, -1];
    const byte = b[i++];
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) return [value, i];
    scale *= 128;
  }
  return [0, -1];
}

/** True when `b` parses as protobuf wire format (unknown fields allowed); never throws. */
export function isWireFormat(b: Uint8Array): boolean {
  let i = 0;
  while (i < b.length) {
    const [tag, afterTag] = varint(b, i, 5);
    if (afterTag < 0 || tag < 8) return false;
    i = afterTag;
    switch (tag % 8) {
      case 0: {
        const [, next] = varint(b, i, 10);
        if (next < 0) return false;
        i = next;
        break;
      }
      case 1:
        i += 8;
        break;
      case 2: {
        const [length, next] = varint(b, i, 5);
        if (next < 0) return false;
        i = next + length;
        break;
      }
      case 5:
        i += 4;
        break;
      default:
        return false; // groups (3, 4) are not used; 6 and 7 do not exist
    }
    if (i > b.length) return false;
  }
  return true;
}
