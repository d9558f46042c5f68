;; unknown.wat: imports a slapnode function that does not exist.
(module
  (import "slapnode" "format_disk" (func (param i32 i32) (result i32)))
  (import "slapnode" "log" (func (param i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "abi_version") (result i32) (i32.const 1))
  (func (export "abi_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "abi_describe") (result i64) (i64.const 0)))
