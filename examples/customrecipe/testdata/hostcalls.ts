// hostcalls.ts — a test module for the AssemblyScript SDK (not an example):
// the same recipes as hostcalls.c, driving every host function and the JSON
// reader/writer from options for the Go tests of examples/customrecipe.

import {
  CheckResult, Kind, Output, Value, WARN, defineModule, download, exec, httpGet, kindOf, log,
  tcpProbe,
} from "../../../recipes-wasm/sdk/assemblyscript/assembly";

export {
  abi_version, abi_alloc, abi_describe, recipe_install, recipe_uninstall, promise_check,
} from "../../../recipes-wasm/sdk/assemblyscript/assembly";

const TYPE_NAMES = ["missing", "null", "bool", "number", "string", "array", "object"];

/** call: options {"import": NAME, ...arguments}; outputs {"response": ...}. */
function call(input: Value, out: Output): i32 {
  const imp = input.getString("options.import");
  let r: Value;
  if (imp == "download") {
    r = download(input.getString("options.url"), "sha256", input.getString("options.sha256"));
  } else if (imp == "exec") {
    const argv: string[] = [];
    const a = input.get("options.argv");
    if (a != null) for (let i = 0; i < a.count; i++) argv.push(a.items[i].s);
    const env = new Map<string, string>();
    env.set("GREETING", "hi there");
    const dir = input.get("options.dir");
    r = exec(argv, dir != null ? dir.s : null, env, 1234);
  } else if (imp == "tcp_probe") {
    r = tcpProbe(input.getString("options.host"), <i32>input.getInt("options.port"), 2000);
  } else if (imp == "http_get") {
    r = httpGet(input.getString("options.url"), 5000, false, 100);
  } else {
    return out.fail(`unknown import "${imp}"`);
  }
  out.outputValue("response", r);
  const err = r.getString("error");
  if (err.length) out.message(`host said: ${err}`);
  return 0;
}

/** echo: copies the options through the reader and writer, and reports what
 *  the typed getters see at each of options.paths. */
function echo(input: Value, out: Output): i32 {
  const o = input.get("options");
  if (o == null) return out.fail("no options");
  out.outputValue("options", o);
  const w = out.outputs;
  w.key("probe").beginObject();
  const paths = o.get("paths");
  for (let i = 0; paths != null && i < paths.count; i++) {
    const path = paths.items[i].s;
    const v = o.get(path);
    w.key(path).beginObject();
    w.key("type").string(TYPE_NAMES[kindOf(v)]);
    w.key("count").int(v != null ? v.count : 0);
    w.key("int").int(o.getInt(path, -1));
    w.key("string");
    if (v != null && v.kind == Kind.String) w.string(v.s);
    else w.null();
    w.endObject();
  }
  w.endObject();
  // Writer edge cases: lone surrogates, control characters, non-finite numbers.
  out.output("bad_utf8", "a\uD800b\uDC00");
  out.output("controls", "tab\tnl\nbell\x07");
  out.outputNumber("nan", NaN);
  out.outputNumber("half", 0.5);
  out.outputBool("yes", true);
  out.installed("/nowhere/echo");
  log(WARN, `echo ${input.getString("part")}`);
  return 0;
}

/** fail: fails with options.message, or with a bare code when it is absent. */
function fail(input: Value, out: Output): i32 {
  out.message("about to fail");
  const msg = input.get("options.message");
  if (msg != null) return out.fail(msg.s);
  return 7;
}

function forget(input: Value, out: Output): i32 {
  out.message(`uninstalled ${input.getString("part")}`);
  return 0;
}

function always(input: Value, res: CheckResult): bool {
  res.message = `checked ${input.getString("name")}`;
  return input.getBool("options.ok");
}

defineModule("hostcalls-as", "0.0.1", [
  // Omitted fields take the class's defaults; describe must still work.
  { name: "call", install: call },
  { name: "echo", install: echo, uninstall: forget },
  { name: "fail", options: `{"type":"object","properties":{"message":{"type":"string"}}}`, install: fail },
], [
  { name: "always", check: always },
]);
