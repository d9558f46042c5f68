// The slapnode AssemblyScript SDK: write slapnode recipes and promises
// (docs/wasm-abi.md) as plain functions.
//
// A module lists its recipes and promises with defineModule and re-exports
// the ABI entry points it serves from its entry file — the module's exports
// are exactly the entry file's exports:
//
//   import { defineModule, Value, Output } from "<sdk>/assembly";
//   import * as fs from "<sdk>/assembly/fs";
//   export { abi_version, abi_alloc, abi_describe, recipe_install } from "<sdk>/assembly";
//
//   function install(input: Value, out: Output): i32 {
//     const path = input.getString("options.path");
//     const err = fs.writeFile(path, "hello\n");
//     if (err.length) return out.fail(err);
//     out.installed(path);
//     out.output("path", path);
//     return 0;
//   }
//   defineModule("hello", "1.0.0", [
//     { name: "hello", options: `{"type":"object","required":["path"]}`, install: install },
//   ], []);
//
// Build: asc hello.ts -O3 --runtime incremental --noAssert
//          --use abort=<sdk>/assembly/index/abort -o hello.wasm
// (see mk/sdk.mk and docs/sdk-c-assemblyscript.md).

import { Kind, Value, Writer, parse, parseBytes } from "./json";

export { Kind, Value, Writer, Parsed, parse, parseBytes, kindOf } from "./json";

/** The ABI major version this SDK implements. */
export const ABI_VERSION: i32 = 1;

// ---- host functions (ABI §6) -------------------------------------------------

// @ts-ignore: decorator
@external("slapnode", "log")
declare function host_log(level: i32, ptr: usize, len: usize): void;
// @ts-ignore: decorator
@external("slapnode", "response")
declare function host_response(ptr: usize): void;
// @ts-ignore: decorator
@external("slapnode", "download")
declare function host_download(ptr: usize, len: usize): i32;
// @ts-ignore: decorator
@external("slapnode", "exec")
declare function host_exec(ptr: usize, len: usize): i32;
// @ts-ignore: decorator
@external("slapnode", "tcp_probe")
declare function host_tcp_probe(ptr: usize, len: usize): i32;
// @ts-ignore: decorator
@external("slapnode", "http_get")
declare function host_http_get(ptr: usize, len: usize): i32;

export const DEBUG: i32 = 0;
export const INFO: i32 = 1;
export const WARN: i32 = 2;
export const ERROR: i32 = 3;

/** Writes one line to the host log; always available. */
export function log(level: i32, message: string): void {
  const b = String.UTF8.encode(message);
  host_log(level, changetype<usize>(b), <usize>b.byteLength);
}

/** The module's abort (selected with `--use abort=…/index/abort`): reports
 *  the failure through the host log, then traps, so the host discards the
 *  instance with a message instead of needing an `env.abort` import. It may
 *  run before any global is initialised, so its state is a static byte. */
export function abort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  const aborting = memory.data(1);
  if (load<u8>(aborting) == 0) {
    store<u8>(aborting, 1); // logging allocates: do not recurse if that fails too
    const m = message != null ? message : "abort";
    const f = fileName != null ? fileName : "?";
    log(3, `${m} (${f}:${line}:${column})`);
  }
  unreachable();
}

function errorResponse(message: string): Value {
  const v = new Value();
  v.kind = Kind.Object;
  const e = new Value();
  e.kind = Kind.String;
  e.s = message;
  v.keys.push("error");
  v.items.push(e);
  return v;
}

/** Completes a host call whose import returned n (the size of the pending
 *  response): fetches and parses the response. Every failure is reported as
 *  a string member "error", like failures the host reports itself, so
 *  `r.getString("error")` is the one check to make. */
export function takeResponse(n: i32): Value {
  if (n < 0) return errorResponse("host refused the request buffer");
  const buf = new ArrayBuffer(n);
  host_response(changetype<usize>(buf));
  const p = parseBytes(changetype<usize>(buf), <usize>n);
  const v = p.value;
  if (v == null) return errorResponse(`host response: ${p.error}`);
  if (v.kind != Kind.Object) return errorResponse("host response is not an object");
  return v;
}

/** slapnode.download: sumKind is "sha256" or "md5"; → {"path","sha256","size"}. */
export function download(url: string, sumKind: string, sum: string): Value {
  const w = new Writer().beginObject();
  w.key("url").string(url);
  w.key(sumKind).string(sum);
  w.endObject();
  return takeResponse(host_download(w.ptr, <usize>w.length));
}

/** slapnode.exec; env may be null, timeoutMs 0 keeps the host's default.
 *  → {"exit_code","output","error"} */
export function exec(argv: string[], dir: string | null, env: Map<string, string> | null, timeoutMs: i64): Value {
  const w = new Writer().beginObject();
  w.key("argv").beginArray();
  for (let i = 0; i < argv.length; i++) w.string(argv[i]);
  w.endArray();
  if (dir != null) w.key("dir").string(dir);
  if (env != null && env.size > 0) {
    w.key("env").beginObject();
    const keys = env.keys();
    for (let i = 0; i < keys.length; i++) w.key(keys[i]).string(env.get(keys[i]));
    w.endObject();
  }
  if (timeoutMs > 0) w.key("timeout_ms").int(timeoutMs);
  w.endObject();
  return takeResponse(host_exec(w.ptr, <usize>w.length));
}

/** slapnode.tcp_probe → {"ok"} or {"ok":false,"error"}. */
export function tcpProbe(host: string, port: i32, timeoutMs: i64): Value {
  const w = new Writer().beginObject();
  w.key("host").string(host);
  w.key("port").int(port);
  if (timeoutMs > 0) w.key("timeout_ms").int(timeoutMs);
  w.endObject();
  return takeResponse(host_tcp_probe(w.ptr, <usize>w.length));
}

/** slapnode.http_get; maxBytes 0 keeps the host's default.
 *  → {"status","body","error"} */
export function httpGet(url: string, timeoutMs: i64, insecure: bool, maxBytes: i64): Value {
  const w = new Writer().beginObject();
  w.key("url").string(url);
  if (timeoutMs > 0) w.key("timeout_ms").int(timeoutMs);
  w.key("insecure").bool(insecure);
  if (maxBytes > 0) w.key("max_bytes").int(maxBytes);
  w.endObject();
  return takeResponse(host_http_get(w.ptr, <usize>w.length));
}

// ---- results -------------------------------------------------------------------

/** A recipe's result (ABI §4.2), filled by its handler. */
export class Output {
  /** The "outputs" object, for values the helpers do not cover: key(), then
   *  one value. */
  outputs: Writer = new Writer().beginObject();
  private paths: Writer = new Writer().beginArray();
  private messages: Writer = new Writer().beginArray();
  error: string = "";

  /** Publishes a value, readable as part.NAME.KEY by other parts. */
  output(name: string, value: string): void {
    this.outputs.key(name).string(value);
  }
  outputInt(name: string, value: i64): void {
    this.outputs.key(name).int(value);
  }
  outputNumber(name: string, value: f64): void {
    this.outputs.key(name).number(value);
  }
  outputBool(name: string, value: bool): void {
    this.outputs.key(name).bool(value);
  }
  outputValue(name: string, value: Value | null): void {
    this.outputs.key(name).value(value);
  }
  /** Records a path the host removes when the part is uninstalled. */
  installed(path: string): void {
    this.paths.string(path);
  }
  /** Adds a line shown with -v and logged. */
  message(text: string): void {
    this.messages.string(text);
  }
  /** Sets the part's error (the last call wins) and returns -1, so a
   *  handler can `return out.fail("...")`. */
  fail(message: string): i32 {
    this.error = message;
    return -1;
  }

  /** The whole result document; the SDK calls it when the handler returns. */
  finish(): Writer {
    const w = new Writer().beginObject();
    w.key("outputs").splice(this.outputs.endObject());
    w.key("installed").splice(this.paths.endArray());
    w.key("messages").splice(this.messages.endArray());
    w.key("error").string(this.error);
    return w.endObject();
  }
}

/** A promise's result (ABI §5): the handler returns ok and says why here. */
export class CheckResult {
  message: string = "";
}

/** A recipe handler gets the whole input (ABI §4.1: "recipe", "part",
 *  "phase", "options", "context", "previous") and returns 0 on success; a
 *  non-zero return or out.fail makes the part fail. */
export type RecipeFn = (input: Value, out: Output) => i32;
/** A promise handler gets "promise", "name", "options", "context". */
export type CheckFn = (input: Value, result: CheckResult) => bool;

export class RecipeDef {
  name: string = "";
  description: string = "";
  /** JSON Schema of the options, as JSON text; "" means any object. Parsed
   *  when the host asks for the description: invalid JSON aborts, so a typo
   *  shows the first time the module is loaded. */
  options: string = "";
  /** Output names known in advance (for `slapnode plan`), or null. */
  outputs: string[] | null = null;
  install: RecipeFn | null = null;
  /** Run by recipe_update when only the options changed; null runs install
   *  again (buildout's `update = install`). */
  update: RecipeFn | null = null;
  /** Extra clean-up beyond the installed paths (which the host removes);
   *  null does nothing. */
  uninstall: RecipeFn | null = null;
}

export class PromiseDef {
  name: string = "";
  description: string = "";
  options: string = "";
  check: CheckFn | null = null;
}

let moduleName = "";
let moduleVersion = "";
let recipes: RecipeDef[] = [];
let promises: PromiseDef[] = [];

/** Declares the module; call once, at the top level of the entry file. */
export function defineModule(name: string, version: string, r: RecipeDef[], p: PromiseDef[]): void {
  moduleName = name;
  moduleVersion = version;
  recipes = r;
  promises = p;
}

// ---- the ABI exports (re-export the ones the module serves) ------------------

// The input buffer and the last result stay referenced here: the host writes
// into the first after abi_alloc returns, and copies the second after the
// entry point returns, both while no AssemblyScript code holds them.
let inputBuf = new ArrayBuffer(0);
let result = new Writer();

export function abi_version(): i32 {
  return ABI_VERSION;
}

export function abi_alloc(n: u32): usize {
  inputBuf = new ArrayBuffer(<i32>n);
  return changetype<usize>(inputBuf);
}

function pack(w: Writer): u64 {
  result = w;
  return (<u64>w.ptr << 32) | <u64>w.length;
}

function writeSchema(w: Writer, kind: string, name: string, schema: string): void {
  const p = parse(schema.length ? schema : `{"type":"object"}`);
  if (p.value == null) {
    log(ERROR, `${kind} ${name}: options schema: ${p.error}`);
    unreachable();
  }
  w.value(p.value);
}

export function abi_describe(): u64 {
  const w = new Writer().beginObject();
  w.key("abi").int(ABI_VERSION);
  w.key("module").string(moduleName);
  w.key("version").string(moduleVersion);
  w.key("recipes").beginObject();
  for (let i = 0; i < recipes.length; i++) {
    const r = recipes[i];
    w.key(r.name).beginObject();
    w.key("description").string(r.description);
    w.key("options");
    writeSchema(w, "recipe", r.name, r.options);
    const outs = r.outputs;
    if (outs != null) {
      w.key("outputs").beginArray();
      for (let j = 0; j < outs.length; j++) w.string(outs[j]);
      w.endArray();
    }
    w.endObject();
  }
  w.endObject();
  w.key("promises").beginObject();
  for (let i = 0; i < promises.length; i++) {
    const p = promises[i];
    w.key(p.name).beginObject();
    w.key("description").string(p.description);
    w.key("options");
    writeSchema(w, "promise", p.name, p.options);
    w.endObject();
  }
  w.endObject();
  return pack(w.endObject());
}

const INSTALL = 0;
const UPDATE = 1;
const UNINSTALL = 2;

function runRecipe(entry: i32, ptr: usize, len: usize): u64 {
  const out = new Output();
  const p = parseBytes(ptr, len);
  const input = p.value;
  if (input == null) {
    const names = ["recipe_install", "recipe_update", "recipe_uninstall"];
    out.fail(`${names[entry]}: input: ${p.error}`);
    return pack(out.finish());
  }
  const name = input.getString("recipe");
  let def: RecipeDef | null = null;
  for (let i = 0; i < recipes.length; i++) {
    if (recipes[i].name == name) {
      def = recipes[i];
      break;
    }
  }
  if (def == null) {
    out.fail(`module ${moduleName} has no recipe "${name}"`);
    return pack(out.finish());
  }
  let fn = def.install;
  if (entry == UPDATE && def.update != null) fn = def.update;
  if (entry == UNINSTALL) fn = def.uninstall;
  if (fn != null) {
    const rc = fn(input, out);
    if (rc != 0 && out.error.length == 0) out.fail(`recipe ${def.name} failed (code ${rc})`);
  }
  return pack(out.finish());
}

export function recipe_install(ptr: usize, len: usize): u64 {
  return runRecipe(INSTALL, ptr, len);
}

export function recipe_update(ptr: usize, len: usize): u64 {
  return runRecipe(UPDATE, ptr, len);
}

export function recipe_uninstall(ptr: usize, len: usize): u64 {
  return runRecipe(UNINSTALL, ptr, len);
}

function checkResult(ok: bool, message: string): u64 {
  const w = new Writer().beginObject();
  w.key("ok").bool(ok);
  w.key("message").string(message);
  return pack(w.endObject());
}

export function promise_check(ptr: usize, len: usize): u64 {
  const p = parseBytes(ptr, len);
  const input = p.value;
  if (input == null) return checkResult(false, `promise_check: input: ${p.error}`);
  const name = input.getString("promise");
  for (let i = 0; i < promises.length; i++) {
    const def = promises[i];
    const fn = def.check;
    if (def.name == name && fn != null) {
      const res = new CheckResult();
      const ok = fn(input, res);
      return checkResult(ok, res.message);
    }
  }
  return checkResult(false, `module ${moduleName} has no promise "${name}"`);
}
