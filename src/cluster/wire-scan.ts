// A check of protobuf wire format without decoding: every tag, varint and length in
// bounds. protobufjs throws on malformed input, and building an exception costs tens of
// microseconds; garbage on the load subjects is turned away here for about one.

/** The value of the varint `varint()` read last (kept here so a read allocates nothing). */
let varintValue = 0;

// Reads a varint of at most `maxBytes` at `i` into `varintValue`; returns the next offset, or -1 when cut off or too long.
function varint(b: Uint8Array, i: number, maxBytes: number): number {
  let value = 0;
  let scale = 1;
  for (let k = 0; k < maxBytes; k++) {
    if (i >= b.length) return -1;
    const byte = b[i++];
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) {
      varintValue = value;
      return i;
    }
    scale *= 128;
  }
  return -1;
}

/** True when `b` parses as protobuf wire format (unknown fields allowed); never throws. */
export function isWireFormat(b: Uint8Array): boolean {
  let i = 0;
  while (i < b.length) {
    i = varint(b, i, 5);
    if (i < 0 || varintValue < 8) return false;
    switch (varintValue % 8) {
      case 0:
        i = varint(b, i, 10);
        if (i < 0) return false;
        break;
      case 1:
        i += 8;
        break;
      case 2:
        i = varint(b, i, 5);
        if (i < 0) return false;
        i += varintValue;
        break;
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
