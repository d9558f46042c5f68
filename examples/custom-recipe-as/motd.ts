// motd.ts — a slapnode recipe and promise written in AssemblyScript with the
// AssemblyScript SDK (recipes-wasm/sdk/assemblyscript). Built into motd.wasm
// next to this file by `make wasm`.
//
// Recipe motd:motd writes a message-of-the-day file from its options and
// publishes where it wrote it; promise motd:motd_present checks the file is
// still there and still says what it should. Same behaviour as the C example
// (examples/custom-recipe-c/motd.c).

import {
  CheckResult, DEBUG, Output, Value, defineModule, log,
} from "../../recipes-wasm/sdk/assemblyscript/assembly";
import * as fs from "../../recipes-wasm/sdk/assemblyscript/assembly/fs";

// The module's exports are this file's exports: the ABI entry points it serves.
export {
  abi_version, abi_alloc, abi_describe, recipe_install, recipe_update, promise_check,
} from "../../recipes-wasm/sdk/assemblyscript/assembly";

const MOTD_SCHEMA = `{
  "type": "object",
  "required": ["path", "message"],
  "additionalProperties": false,
  "properties": {
    "path":      {"type": "string", "description": "absolute path of the file to write"},
    "message":   {"type": "string"},
    "signature": {"type": "string", "default": "", "description": "appended as '-- signature'"},
    "banner":    {"type": "boolean", "default": false, "description": "start with a line naming the partition"}
  }
}`;

const PRESENT_SCHEMA = `{
  "type": "object",
  "required": ["path"],
  "properties": {
    "path":     {"type": "string"},
    "contains": {"type": "string", "default": ""}
  }
}`;

/** Counts newline-terminated lines, the last one even unterminated. */
function countLines(s: string): i64 {
  let lines: i64 = 0;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) == 10) lines++;
  if (s.length > 0 && !s.endsWith("\n")) lines++;
  return lines;
}

/** Replaces path atomically: a reader never sees half a file. */
function writeAtomically(path: string, data: ArrayBuffer): string {
  const tmp = path + ".tmp";
  let err = fs.writeBytes(tmp, data);
  if (err.length == 0) err = fs.rename(tmp, path);
  if (err.length) fs.remove(tmp, true);
  return err;
}

function install(input: Value, out: Output): i32 {
  const path = input.getString("options.path");
  let body = input.getString("options.message");
  const signature = input.getString("options.signature");
  if (!path.startsWith("/")) return out.fail(`path must be absolute, got "${path}"`);

  if (input.getBool("options.banner")) {
    // A software part has no partition: name the kind instead.
    const who = input.getString("context.partition.id", input.getString("context.kind", "node"));
    body = `=== ${who} ===\n${body}`;
  }
  if (!body.endsWith("\n")) body += "\n";
  if (signature.length) body += `-- ${signature}\n`;

  const data = String.UTF8.encode(body);
  const err = writeAtomically(path, data);
  if (err.length) return out.fail(err);
  out.installed(path);
  out.output("path", path);
  out.outputInt("bytes", data.byteLength);
  out.outputInt("lines", countLines(body));
  out.message(`wrote ${data.byteLength} bytes to ${path}`);
  log(DEBUG, `part ${input.getString("part", "?")}: motd written`);
  return 0;
}

/** Rewrites the file; when the path changed the old file is no longer ours
 *  to keep, and the host only removes installed paths on uninstall, so the
 *  recipe removes it. */
function update(input: Value, out: Output): i32 {
  const old = input.getString("previous.outputs.path");
  const path = input.getString("options.path");
  if (install(input, out) != 0) return -1;
  if (old.length && old != path) {
    const err = fs.remove(old, true);
    if (err.length) return out.fail(`remove previous: ${err}`);
    out.message(`removed previous ${old}`);
  }
  return 0;
}

function present(input: Value, res: CheckResult): bool {
  const path = input.getString("options.path");
  const want = input.getString("options.contains");
  // A motd is small; reading a bounded prefix keeps a huge file harmless.
  const r = fs.readFile(path, 64 * 1024);
  if (r.error.length) {
    res.message = r.error;
    return false;
  }
  if (want.length && !r.text.includes(want)) {
    res.message = `${path} does not contain "${want}"`;
    return false;
  }
  res.message = `${path} is present (${String.UTF8.byteLength(r.text)} bytes)`;
  return true;
}

defineModule("motd", "1.0.0", [
  {
    name: "motd",
    description: "Write a message-of-the-day file.",
    options: MOTD_SCHEMA,
    outputs: ["path", "bytes", "lines"],
    install: install,
    update: update,
    uninstall: null,
  },
], [
  {
    name: "motd_present",
    description: "The motd file exists and contains a given text.",
    options: PRESENT_SCHEMA,
    check: present,
  },
]);
