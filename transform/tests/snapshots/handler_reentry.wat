;; Handler re-entry: a call that may suspend inside legacy `catch` and
;; `catch_all` handlers. A rewind re-enters a handler by throwing again: the
;; caught payload is saved in the frame, and `catch_all` gets a tag of its
;; own, added after the module's tags.
(module
  (import "env" "sleep" (func $sleep (param i32) (result i32)))
  (memory 1)
  (tag $e (param i32))
  (func $handlers (export "handlers") (param $x i32) (result i32)
    try (result i32)
      (throw $e (local.get $x))
    catch $e
      (i32.add (call $sleep (i32.const 1)))
    catch_all
      (call $sleep (i32.const 2))
    end))
