;; ungranted.wat: a reactor importing slapnode.exec; an untrusted load
;; without allow_exec must be refused before any of its code runs.
(module
  (import "slapnode" "exec" (func $exec (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "abi_version") (result i32) (i32.const 1))
  (func (export "abi_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "abi_describe") (result i64) (i64.const 0))
  (func (export "recipe_install") (param i32 i32) (result i64)
    (drop (call $exec (local.get 0) (local.get 1)))
    (i64.const 0)))
