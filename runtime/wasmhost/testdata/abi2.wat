;; abi2.wat: a module built for a later, incompatible ABI.
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"abi\":2}")
  (func (export "abi_version") (result i32) (i32.const 2))
  (func (export "abi_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "abi_describe") (result i64) (i64.const 0x100000009)))
