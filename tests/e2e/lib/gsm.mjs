// GSM 03.38 default alphabet (unpacked, one septet per octet) and the helpers
// the tests use to check what kaskad put on the wire. Written from the table
// in the standard, independently of the daemon's own tables.

// Basic table, code point 0x00..0x7F. 0x1B is the escape to the extension table.
const BASIC = [
  '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
  'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\x1b', 'Æ', 'æ', 'ß', 'É',
  ' ', '!', '"', '#', '¤', '%', '&', "'", '(', ')', '*', '+', ',', '-', '.', '/',
  '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
  '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
  'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
  '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
  'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
];

// Extension table: septet after ESC -> character.
const EXT = {
  0x0a: '\f', 0x14: '^', 0x28: '{', 0x29: '}', 0x2f: '\\',
  0x3c: '[', 0x3d: '~', 0x3e: ']', 0x40: '|', 0x65: '€',
};

const ENC_BASIC = new Map();
BASIC.forEach((ch, i) => { if (i !== 0x1b) ENC_BASIC.set(ch, i); });
const ENC_EXT = new Map(Object.entries(EXT).map(([k, v]) => [v, Number(k)]));

/** Unpacked GSM-7 octets for text; throws when a character is not in GSM 03.38. */
export function gsmEncode(text) {
  const out = [];
  for (const ch of text) {
    if (ENC_BASIC.has(ch)) out.push(ENC_BASIC.get(ch));
    else if (ENC_EXT.has(ch)) out.push(0x1b, ENC_EXT.get(ch));
    else throw new Error(`not a GSM 03.38 character: ${JSON.stringify(ch)}`);
  }
  return Buffer.from(out);
}

/** Text of unpacked GSM-7 octets. Unknown escapes decode as U+FFFD. */
export function gsmDecode(buf) {
  let s = '';
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i] & 0x7f;
    if (b === 0x1b && i + 1 < buf.length) {
      s += EXT[buf[++i] & 0x7f] ?? '\ufffd';
    } else {
      s += BASIC[b];
    }
  }
  return s;
}

/** True when every character of text is in the basic or extension table. */
export function isGsm(text) {
  for (const ch of text) if (!ENC_BASIC.has(ch) && !ENC_EXT.has(ch)) return false;
  return true;
}

/** Text of UTF-16BE octets. */
export function ucs2Decode(buf) {
  if (buf.length % 2) throw new Error(`odd UCS-2 length ${buf.length}`);
  const le = Buffer.from(buf);
  le.swap16();
  return le.toString('utf16le');
}
