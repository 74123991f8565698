;; Output of handler_reentry.wat. Update with: BLESS=1 cargo test -p asyncify-transform --test snapshots
;; func 1 handlers: points 2, saved locals 2, saved per point [2, 2], live per point [2, 0], frame 12 bytes
(module
  (type (;0;) (func (param i32) (result i32)))
  (type (;1;) (func (param i32)))
  (type (;2;) (func (param i32)))
  (type (;3;) (func))
  (type (;4;) (func (result i32)))
  (type (;5;) (func (param i32) (result i32)))
  (import "env" "sleep" (func $sleep (;0;) (type 0) (param i32) (result i32)))
  (memory (;0;) 1)
  (tag $e (;0;) (type 1) (param i32))
  (tag (;1;) (type 3))
  (global (;0;) (mut i32) i32.const 0)
  (global (;1;) (mut i32) i32.const 0)
  (export "handlers" (func $handlers))
  (export "asyncify_start_unwind" (func 2))
  (export "asyncify_stop_unwind" (func 3))
  (export "asyncify_start_rewind" (func 4))
  (export "asyncify_stop_rewind" (func 5))
  (export "asyncify_get_state" (func 6))
  (func $handlers (;1;) (type 0) (param $x i32) (result i32)
    (local i32 i32 i32 i32 i32)
    global.get 0
    if ;; label = @1
      i32.const 12
      call 7
      local.set 4
      local.get 4
      i32.load
      local.set 1
      local.get 4
      i32.load offset=4
      local.set 2
      local.get 4
      i32.load offset=8
      local.set 3
    end
    block ;; label = @1
      block ;; label = @2
        block (result i32) ;; label = @3
          try (result i32) ;; label = @4
            global.get 0
            if ;; label = @5
              local.get 3
              i32.const 1
              i32.lt_u
              if ;; label = @6
                local.get 2
                throw $e
              end
              throw 1
            end
            local.get $x
            throw $e
          catch $e
            local.set 2
            block ;; label = @5
              global.get 0
              br_if 0 (;@5;)
              local.get 2
              local.set 1
            end
            i32.const 1
            i32.const 0
            local.set 3
            call $sleep
            global.get 0
            br_if 2 (;@2;)
            local.set 5
            local.get 1
            local.get 5
            i32.add
          catch_all
            i32.const 2
            i32.const 1
            local.set 3
            call $sleep
            global.get 0
            br_if 2 (;@2;)
          end
        end
        return
      end
      i32.const 12
      call 8
      local.tee 4
      i32.const -1
      i32.ne
      if ;; label = @2
        local.get 4
        local.get 1
        i32.store
        local.get 4
        local.get 2
        i32.store offset=4
        local.get 4
        local.get 3
        i32.store offset=8
      end
    end
    i32.const 0
  )
  (func (;2;) (type 2) (param i32)
    i32.const 1
    global.set 0
    local.get 0
    global.set 1
    global.get 1
    i32.load
    global.get 1
    i32.load offset=4
    i32.gt_u
    if ;; label = @1
      unreachable
    end
  )
  (func (;3;) (type 3)
    i32.const 0
    global.set 0
    global.get 1
    i32.load
    global.get 1
    i32.load offset=4
    i32.gt_u
    if ;; label = @1
      unreachable
    end
  )
  (func (;4;) (type 2) (param i32)
    i32.const 2
    global.set 0
    local.get 0
    global.set 1
    global.get 1
    i32.load
    global.get 1
    i32.load offset=4
    i32.gt_u
    if ;; label = @1
      unreachable
    end
  )
  (func (;5;) (type 3)
    i32.const 0
    global.set 0
    global.get 1
    i32.load
    global.get 1
    i32.load offset=4
    i32.gt_u
    if ;; label = @1
      unreachable
    end
  )
  (func (;6;) (type 4) (result i32)
    global.get 0
  )
  (func (;7;) (type 5) (param i32) (result i32)
    (local i32)
    global.get 1
    global.get 1
    i32.load
    local.get 0
    i32.sub
    local.tee 1
    i32.store
    local.get 1
  )
  (func (;8;) (type 5) (param i32) (result i32)
    (local i32 i32)
    global.get 1
    global.get 1
    i32.load
    local.tee 1
    local.get 0
    i32.add
    local.tee 2
    i32.store
    local.get 1
    i32.const -1
    local.get 2
    global.get 1
    i32.load offset=4
    i32.le_u
    select
  )
)
