;; Functions for the fuel counter's tests (fuel_test.go): recursion without
;; loops, a loop without calls, calls through a table, and an imported
;; function before them (so that the rewrite shifts every index).
(module
  (import "wasi_snapshot_preview1" "sched_yield" (func $yield (result i32)))
  (type $unary (func (param i32) (result i32)))
  (memory (export "memory") 1)
  (table 2 funcref)
  (elem (i32.const 0) $fib $count)
  (global $calls (mut i32) (i32.const 0))
  ;; fib recurses twice per level and has no loop: only function entries
  ;; can stop it.
  (func $fib (export "fib") (type $unary)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
      (then (local.get 0))
      (else (i32.add
        (call $fib (i32.sub (local.get 0) (i32.const 1)))
        (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
  ;; count loops n times.
  (func $count (export "count") (type $unary) (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get 0)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $i))
  ;; indirect calls table[k](n).
  (func (export "indirect") (param $k i32) (param $n i32) (result i32)
    (call_indirect (type $unary) (local.get $n) (local.get $k)))
  (func (export "spin") (loop $forever (br $forever)))
  (func (export "calls") (result i32) (global.get $calls))
)
