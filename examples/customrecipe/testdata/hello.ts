// hello.ts — a complete slapnode recipe and promise in AssemblyScript.
import { CheckResult, Output, Value, defineModule } from "../../../recipes-wasm/sdk/assemblyscript/assembly";
import * as fs from "../../../recipes-wasm/sdk/assemblyscript/assembly/fs";

// The module's exports are this file's exports: re-export the entry points
// the module serves (ABI §1.1), and nothing else.
export {
  abi_version, abi_alloc, abi_describe, recipe_install, promise_check,
} from "../../../recipes-wasm/sdk/assemblyscript/assembly";

/** install: write options.greeting into options.path. */
function install(input: Value, out: Output): i32 {
  const path = input.getString("options.path");
  const greeting = input.getString("options.greeting", "hello");
  const who = input.getString("context.partition.id", "software");

  const err = fs.writeFile(path, `${greeting} from ${who}\n`);
  if (err.length) return out.fail(err);

  out.installed(path);          // removed by the host on uninstall
  out.output("path", path);     // part.NAME.path for other parts
  out.message(`greeted ${who}`); // shown with -v
  return 0;
}

/** check: the file is still there. */
function present(input: Value, res: CheckResult): bool {
  const path = input.getString("options.path");
  if (!fs.exists(path)) {
    res.message = `${path} is missing`;
    return false;
  }
  res.message = `${path} is there`;
  return true;
}

defineModule("hello", "1.0.0", [
  {
    name: "hello",
    description: "Write a greeting into a file.",
    options: `{"type": "object", "required": ["path"],
               "properties": {"path": {"type": "string"},
                              "greeting": {"type": "string", "default": "hello"}}}`,
    outputs: ["path"],
    install: install, // update and uninstall left out: null
  },
], [
  {
    name: "hello_present",
    description: "The greeting file exists.",
    options: `{"type": "object", "required": ["path"]}`,
    check: present,
  },
]);
