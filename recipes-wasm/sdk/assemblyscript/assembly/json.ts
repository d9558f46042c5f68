// json.ts — the small JSON reader and writer of the slapnode AssemblyScript SDK.
//
// Everything that crosses the slapnode ABI is UTF-8 JSON (docs/wasm-abi.md §2).
// The reader works on raw bytes in linear memory, bounds every access, limits
// nesting and checks escapes and numbers; the writer produces UTF-8, escapes
// strings, replaces lone surrogates and never emits NaN or infinities.

/** Nesting the reader accepts; deeper input is rejected, not recursed into. */
export const MAX_DEPTH: i32 = 128;
/** The writer allows a little more, so any parsed value can be written back
 *  inside a result. */
export const WRITER_MAX_DEPTH: i32 = MAX_DEPTH + 8;

export enum Kind {
  Missing = 0, // the value does not exist (kindOf(null))
  Null,
  Bool,
  Number,
  String,
  Array,
  Object,
}

/** One parsed JSON value. Arrays keep their elements in `items`; objects keep
 *  member values in `items` and names in `keys`, in document order. */
export class Value {
  kind: Kind = Kind.Null;
  b: bool = false;
  n: f64 = 0;
  s: string = "";
  items: Value[] = [];
  keys: string[] = [];

  /** Elements of an array or members of an object; 0 otherwise. */
  get count(): i32 {
    return this.kind == Kind.Array || this.kind == Kind.Object ? this.items.length : 0;
  }

  /** The member named key (the last one when repeated, as in Go's
   *  encoding/json on the host side), or null. */
  member(key: string): Value | null {
    if (this.kind != Kind.Object) return null;
    for (let i = this.keys.length - 1; i >= 0; i--) {
      if (this.keys[i] == key) return this.items[i];
    }
    return null;
  }

  /** The i-th element of an array, or null. */
  at(i: i32): Value | null {
    if (this.kind != Kind.Array || i < 0 || i >= this.items.length) return null;
    return this.items[i];
  }

  /** Follows a dot-separated path: "context.partition.path"; an all-digit
   *  segment indexes an array ("installed.0"). "" is this value. Use member
   *  for names containing dots. */
  get(path: string): Value | null {
    let v: Value | null = this;
    let start = 0;
    while (v != null && start < path.length) {
      let dot = path.indexOf(".", start);
      if (dot < 0) dot = path.length;
      const seg = path.substring(start, dot);
      const cur: Value = v;
      if (cur.kind == Kind.Array && isIndex(seg)) {
        v = seg.length > 9 ? null : cur.at(<i32>I32.parseInt(seg));
      } else {
        v = cur.member(seg);
      }
      start = dot + 1;
    }
    return v;
  }

  /** The string at path, or def when missing or not a string. */
  getString(path: string, def: string = ""): string {
    const v = this.get(path);
    return v != null && v.kind == Kind.String ? v.s : def;
  }

  getNumber(path: string, def: f64 = 0): f64 {
    const v = this.get(path);
    return v != null && v.kind == Kind.Number ? v.n : def;
  }

  /** The integer at path; def when missing, not a number, fractional or
   *  beyond int64. */
  getInt(path: string, def: i64 = 0): i64 {
    const v = this.get(path);
    if (v == null || v.kind != Kind.Number) return def;
    const n = v.n;
    if (n != Math.floor(n) || n < -9223372036854775808.0 || n >= 9223372036854775808.0) return def;
    return <i64>n;
  }

  getBool(path: string, def: bool = false): bool {
    const v = this.get(path);
    return v != null && v.kind == Kind.Bool ? v.b : def;
  }
}

/** The kind of a possibly missing value. */
export function kindOf(v: Value | null): Kind {
  return v == null ? Kind.Missing : v.kind;
}

function isIndex(s: string): bool {
  if (s.length == 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

// ---- reader -----------------------------------------------------------------

/** The result of parse: a value, or an error naming the byte offset. */
export class Parsed {
  value: Value | null = null;
  error: string = "";
}

/** Parses len bytes of UTF-8 JSON at ptr. */
export function parseBytes(ptr: usize, len: usize): Parsed {
  const p = new Parser(ptr, len);
  const v = new Value();
  const res = new Parsed();
  if (p.value(v)) {
    p.ws();
    if (p.p == p.end) {
      res.value = v;
      return res;
    }
    p.fail("trailing data");
  }
  res.error = p.err;
  return res;
}

/** Parses a JSON text (e.g. an options schema). */
export function parse(text: string): Parsed {
  const buf = String.UTF8.encode(text);
  return parseBytes(changetype<usize>(buf), <usize>buf.byteLength);
}

// UTF-16 scratch space for decoding strings, grown on demand.
let scratch = new ArrayBuffer(256);

function scratchFor(units: usize): usize {
  if (<usize>scratch.byteLength < units << 1) scratch = new ArrayBuffer(<i32>(units << 1));
  return changetype<usize>(scratch);
}

class Parser {
  p: usize;
  start: usize;
  end: usize;
  err: string = "";
  depth: i32 = 0;

  constructor(ptr: usize, len: usize) {
    this.p = ptr;
    this.start = ptr;
    this.end = ptr + len;
  }

  fail(what: string): bool {
    if (this.err.length == 0) this.err = `invalid JSON at byte ${this.p - this.start}: ${what}`;
    return false;
  }

  ws(): void {
    while (this.p < this.end) {
      const c = load<u8>(this.p);
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
      this.p++;
    }
  }

  literal(word: string): bool {
    const n = <usize>word.length;
    if (this.end - this.p < n) return this.fail("unexpected token");
    for (let i: usize = 0; i < n; i++) {
      if (<i32>load<u8>(this.p + i) != word.charCodeAt(<i32>i)) return this.fail("unexpected token");
    }
    this.p += n;
    return true;
  }

  value(v: Value): bool {
    this.ws();
    if (this.p >= this.end) return this.fail("unexpected end of input");
    const c = load<u8>(this.p);
    if (c == 0x7b) return this.container(v, true); // {
    if (c == 0x5b) return this.container(v, false); // [
    if (c == 0x22) {
      v.kind = Kind.String;
      return this.str(v);
    }
    if (c == 0x74) {
      v.kind = Kind.Bool;
      v.b = true;
      return this.literal("true");
    }
    if (c == 0x66) {
      v.kind = Kind.Bool;
      return this.literal("false");
    }
    if (c == 0x6e) {
      v.kind = Kind.Null;
      return this.literal("null");
    }
    return this.number(v);
  }

  container(v: Value, object: bool): bool {
    const close: u8 = object ? 0x7d : 0x5d;
    if (++this.depth > MAX_DEPTH) return this.fail("nesting too deep");
    v.kind = object ? Kind.Object : Kind.Array;
    this.p++;
    this.ws();
    if (this.p < this.end && load<u8>(this.p) == close) {
      this.p++;
      this.depth--;
      return true;
    }
    while (true) {
      const child = new Value();
      this.ws();
      if (object) {
        if (this.p >= this.end || load<u8>(this.p) != 0x22) return this.fail("expected member name");
        const k = new Value();
        if (!this.str(k)) return false;
        this.ws();
        if (this.p >= this.end || load<u8>(this.p) != 0x3a) return this.fail("expected ':'");
        this.p++;
        v.keys.push(k.s);
      }
      if (!this.value(child)) return false;
      v.items.push(child);
      this.ws();
      if (this.p < this.end && load<u8>(this.p) == 0x2c) {
        this.p++;
        continue;
      }
      if (this.p < this.end && load<u8>(this.p) == close) {
        this.p++;
        this.depth--;
        return true;
      }
      return this.fail(object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    return false;
  }

  hex4(): i32 {
    if (this.end - this.p < 4) {
      this.fail("short \\u escape");
      return -1;
    }
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const c = <i32>load<u8>(this.p + i);
      let h = -1;
      if (c >= 48 && c <= 57) h = c - 48;
      else if (c >= 97 && c <= 102) h = c - 87;
      else if (c >= 65 && c <= 70) h = c - 55;
      if (h < 0) {
        this.fail("bad \\u escape");
        return -1;
      }
      v = (v << 4) | h;
    }
    this.p += 4;
    return v;
  }

  // str decodes straight to UTF-16: never more code units than source bytes.
  str(v: Value): bool {
    this.p++;
    let q = this.p;
    while (q < this.end && load<u8>(q) != 0x22) {
      if (load<u8>(q) == 0x5c) q++;
      q++;
    }
    if (q >= this.end) return this.fail("unterminated string");
    const out = scratchFor(q - this.p);
    let n: usize = 0;
    while (load<u8>(this.p) != 0x22) {
      const c = <u32>load<u8>(this.p);
      if (c < 0x20) return this.fail("control character in string");
      if (c == 0x5c) {
        this.p++;
        const e = load<u8>(this.p++);
        let u: i32 = 0;
        if (e == 0x22) u = 0x22;
        else if (e == 0x5c) u = 0x5c;
        else if (e == 0x2f) u = 0x2f;
        else if (e == 0x62) u = 0x08;
        else if (e == 0x66) u = 0x0c;
        else if (e == 0x6e) u = 0x0a;
        else if (e == 0x72) u = 0x0d;
        else if (e == 0x74) u = 0x09;
        else if (e == 0x75) {
          u = this.hex4();
          if (u < 0) return false;
          if (u >= 0xd800 && u <= 0xdbff && this.end - this.p >= 2 &&
              load<u8>(this.p) == 0x5c && load<u8>(this.p + 1) == 0x75) {
            const next = this.p;
            this.p += 2;
            const lo = this.hex4();
            if (lo < 0) return false;
            if (lo >= 0xdc00 && lo <= 0xdfff) {
              store<u16>(out + (n++ << 1), <u16>u);
              u = lo;
            } else {
              this.p = next; // decode that escape on its own
              u = 0xfffd;
            }
          } else if (u >= 0xd800 && u <= 0xdfff) {
            // A lone surrogate is valid JSON but not UTF-8: U+FFFD, as Go's
            // encoding/json on the host side decodes it.
            u = 0xfffd;
          }
        } else {
          this.p--;
          return this.fail("bad escape");
        }
        store<u16>(out + (n++ << 1), <u16>u);
        continue;
      }
      // Raw UTF-8: decode one sequence; an invalid byte becomes U+FFFD.
      const len = utf8Len(this.p, q);
      if (len == 0) {
        store<u16>(out + (n++ << 1), 0xfffd);
        this.p++;
        continue;
      }
      let cp: u32 = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
      for (let i: usize = 1; i < len; i++) cp = (cp << 6) | (<u32>load<u8>(this.p + i) & 0x3f);
      this.p += len;
      if (cp >= 0x10000) {
        cp -= 0x10000;
        store<u16>(out + (n++ << 1), <u16>(0xd800 + (cp >> 10)));
        store<u16>(out + (n++ << 1), <u16>(0xdc00 + (cp & 0x3ff)));
      } else {
        store<u16>(out + (n++ << 1), <u16>cp);
      }
    }
    this.p++;
    v.s = String.UTF16.decodeUnsafe(out, n << 1);
    return true;
  }

  // number checks the JSON grammar itself: parseFloat would accept forms
  // JSON forbids ("Infinity", "+1", ".5").
  number(v: Value): bool {
    const s = this.p;
    let q = this.p;
    if (q < this.end && load<u8>(q) == 0x2d) q++;
    if (q < this.end && load<u8>(q) == 0x30) q++;
    else if (q < this.end && load<u8>(q) >= 0x31 && load<u8>(q) <= 0x39) {
      while (q < this.end && isDigit(load<u8>(q))) q++;
    } else return this.fail("bad number");
    if (q < this.end && load<u8>(q) == 0x2e) {
      q++;
      if (q >= this.end || !isDigit(load<u8>(q))) return this.fail("bad fraction");
      while (q < this.end && isDigit(load<u8>(q))) q++;
    }
    if (q < this.end && (load<u8>(q) == 0x65 || load<u8>(q) == 0x45)) {
      q++;
      if (q < this.end && (load<u8>(q) == 0x2b || load<u8>(q) == 0x2d)) q++;
      if (q >= this.end || !isDigit(load<u8>(q))) return this.fail("bad exponent");
      while (q < this.end && isDigit(load<u8>(q))) q++;
    }
    v.kind = Kind.Number;
    v.n = parseFloat(String.UTF8.decodeUnsafe(s, q - s));
    this.p = q;
    return true;
  }
}

function isDigit(c: u8): bool {
  return c >= 0x30 && c <= 0x39;
}

/** Length of the valid UTF-8 sequence at p (before end), or 0. */
function utf8Len(p: usize, end: usize): usize {
  const c = <u32>load<u8>(p);
  if (c < 0x80) return 1;
  let len: usize = 0;
  let cp: u32 = 0;
  let min: u32 = 0;
  if ((c & 0xe0) == 0xc0) {
    len = 2;
    cp = c & 0x1f;
    min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    len = 3;
    cp = c & 0x0f;
    min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    len = 4;
    cp = c & 0x07;
    min = 0x10000;
  } else return 0;
  if (end - p < len) return 0;
  for (let i: usize = 1; i < len; i++) {
    const b = <u32>load<u8>(p + i);
    if ((b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

// ---- writer -----------------------------------------------------------------

const HEX = "0123456789abcdef";

/** Builds one JSON document as UTF-8; commas are inserted automatically.
 *  Inside an object call key() before each value. Misuse (a value without a
 *  key, unbalanced ends, too deep) is a programming error and aborts. */
export class Writer {
  private buf: ArrayBuffer = new ArrayBuffer(256);
  private len: i32 = 0;
  private depth: i32 = 0;
  private needComma: StaticArray<bool> = new StaticArray<bool>(WRITER_MAX_DEPTH + 1);
  private inObject: StaticArray<bool> = new StaticArray<bool>(WRITER_MAX_DEPTH + 1);
  private afterKey: bool = false;

  /** Address and byte length of the document so far. */
  get ptr(): usize {
    return changetype<usize>(this.buf);
  }
  get length(): i32 {
    return this.len;
  }

  private reserve(n: i32): void {
    if (this.len + n <= this.buf.byteLength) return;
    let cap = this.buf.byteLength << 1;
    while (cap < this.len + n) cap <<= 1;
    const nb = new ArrayBuffer(cap);
    memory.copy(changetype<usize>(nb), changetype<usize>(this.buf), <usize>this.len);
    this.buf = nb;
  }

  private byte(b: u32): void {
    this.reserve(1);
    store<u8>(changetype<usize>(this.buf) + <usize>this.len, <u8>b);
    this.len++;
  }

  private ascii(s: string): void {
    this.reserve(s.length);
    const base = changetype<usize>(this.buf) + <usize>this.len;
    for (let i = 0; i < s.length; i++) store<u8>(base + <usize>i, <u8>s.charCodeAt(i));
    this.len += s.length;
  }

  private beforeValue(): void {
    if (this.inObject[this.depth]) {
      if (!this.afterKey) throw new Error("json writer: value without a key in an object");
      this.afterKey = false;
      return;
    }
    if (this.needComma[this.depth]) this.byte(0x2c);
    this.needComma[this.depth] = true;
  }

  private begin(object: bool): void {
    this.beforeValue();
    if (this.depth >= WRITER_MAX_DEPTH) throw new Error("json writer: nesting too deep");
    this.depth++;
    this.needComma[this.depth] = false;
    this.inObject[this.depth] = object;
    this.byte(object ? 0x7b : 0x5b);
  }

  private end(object: bool): void {
    if (this.depth == 0 || this.inObject[this.depth] != object || this.afterKey) {
      throw new Error("json writer: unbalanced end");
    }
    this.depth--;
    this.byte(object ? 0x7d : 0x5d);
  }

  beginObject(): Writer {
    this.begin(true);
    return this;
  }
  endObject(): Writer {
    this.end(true);
    return this;
  }
  beginArray(): Writer {
    this.begin(false);
    return this;
  }
  endArray(): Writer {
    this.end(false);
    return this;
  }

  key(k: string): Writer {
    if (!this.inObject[this.depth] || this.afterKey) throw new Error("json writer: key outside an object");
    if (this.needComma[this.depth]) this.byte(0x2c);
    this.needComma[this.depth] = true;
    this.quoted(k);
    this.byte(0x3a);
    this.afterKey = true;
    return this;
  }

  string(s: string): Writer {
    this.beforeValue();
    this.quoted(s);
    return this;
  }

  /** Integral values print without a fraction; NaN and infinities are null. */
  number(d: f64): Writer {
    if (!isFinite(d)) return this.null();
    this.beforeValue();
    if (d == Math.floor(d) && Math.abs(d) < 1e17) this.ascii((<i64>d).toString());
    else this.ascii(d.toString());
    return this;
  }

  int(i: i64): Writer {
    this.beforeValue();
    this.ascii(i.toString());
    return this;
  }

  bool(b: bool): Writer {
    this.beforeValue();
    this.ascii(b ? "true" : "false");
    return this;
  }

  null(): Writer {
    this.beforeValue();
    this.ascii("null");
    return this;
  }

  /** Writes a parsed value; null (missing) writes null. */
  value(v: Value | null): Writer {
    if (v == null) return this.null();
    switch (v.kind) {
      case Kind.Bool:
        return this.bool(v.b);
      case Kind.Number:
        return this.number(v.n);
      case Kind.String:
        return this.string(v.s);
      case Kind.Array: {
        this.beginArray();
        for (let i = 0; i < v.items.length; i++) this.value(v.items[i]);
        return this.endArray();
      }
      case Kind.Object: {
        this.beginObject();
        for (let i = 0; i < v.items.length; i++) this.key(v.keys[i]).value(v.items[i]);
        return this.endObject();
      }
    }
    return this.null();
  }

  /** Appends the finished document of src as one value (used by the SDK to
   *  assemble results; src is valid JSON by construction). */
  splice(src: Writer): Writer {
    if (src.depth != 0) throw new Error("json writer: splicing an unfinished document");
    this.beforeValue();
    this.reserve(src.len);
    memory.copy(changetype<usize>(this.buf) + <usize>this.len, src.ptr, <usize>src.len);
    this.len += src.len;
    return this;
  }

  /** The document as a string (for logging and tests). */
  toString(): string {
    return String.UTF8.decodeUnsafe(changetype<usize>(this.buf), <usize>this.len);
  }

  // quoted writes s as a JSON string in UTF-8. AssemblyScript strings are
  // UTF-16 and may hold lone surrogates, which UTF-8 cannot carry: they
  // become U+FFFD, since the host parses our output as JSON.
  private quoted(s: string): void {
    this.byte(0x22);
    const n = s.length;
    for (let i = 0; i < n; i++) {
      let c = <u32>s.charCodeAt(i);
      if (c == 0x22 || c == 0x5c) {
        this.byte(0x5c);
        this.byte(c);
      } else if (c < 0x20) {
        if (c == 0x0a) this.ascii("\\n");
        else if (c == 0x09) this.ascii("\\t");
        else if (c == 0x0d) this.ascii("\\r");
        else {
          this.ascii("\\u00");
          this.byte(<u32>HEX.charCodeAt(c >> 4));
          this.byte(<u32>HEX.charCodeAt(c & 15));
        }
      } else if (c < 0x80) {
        this.byte(c);
      } else if (c < 0x800) {
        this.byte(0xc0 | (c >> 6));
        this.byte(0x80 | (c & 0x3f));
      } else if (c >= 0xd800 && c <= 0xdfff) {
        const lo = i + 1 < n ? <u32>s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff) {
          const cp = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
          this.byte(0xf0 | (cp >> 18));
          this.byte(0x80 | ((cp >> 12) & 0x3f));
          this.byte(0x80 | ((cp >> 6) & 0x3f));
          this.byte(0x80 | (cp & 0x3f));
          i++;
        } else {
          this.ascii("\\ufffd");
        }
      } else {
        this.byte(0xe0 | (c >> 12));
        this.byte(0x80 | ((c >> 6) & 0x3f));
        this.byte(0x80 | (c & 0x3f));
      }
    }
    this.byte(0x22);
  }
}
