;; Output of runtime_and_options.wat. Update with: BLESS=1 cargo test -p asyncify-transform --test snapshots
;; func 3 main: points 1, saved locals 0, saved per point [0], live per point [0], frame 0 bytes
(module
  (type (;0;) (func (param i32)))
  (type (;1;) (func (result i32)))
  (type (;2;) (func (param i32) (result i32)))
  (type (;3;) (func (param i32)))
  (type (;4;) (func))
  (type (;5;) (func (result i32)))
  (type (;6;) (func (param i32) (result i32)))
  (import "env" "sleep" (func $sleep (;0;) (type 0) (param i32)))
  (import "env" "__asyncify_state" (global (;0;) (mut i32)))
  (import "env" "__asyncify_data" (global (;1;) (mut i32)))
  (memory (;0;) 1)
  (global (;2;) (mut i32) i32.const 7)
  (export "main" (func 2))
  (export "asyncify_start_unwind" (func 3))
  (export "asyncify_stop_unwind" (func 4))
  (export "asyncify_start_rewind" (func 5))
  (export "asyncify_stop_rewind" (func 6))
  (export "asyncify_get_state" (func $state))
  (export "__asyncify_state" (global 0))
  (export "__asyncify_data" (global 1))
  (func (;1;) (type 2) (param i32) (result i32)
    local.get 0
    global.get 2
    i32.add
  )
  (func (;2;) (type 2) (param i32) (result i32)
    (local i32 i32 i32)
    block ;; label = @1
      block ;; label = @2
        block (result i32) ;; label = @3
          block ;; label = @4
            global.get 0
            br_if 0 (;@4;)
            local.get 0
            call 1
            global.get 0
            if ;; label = @5
              unreachable
            end
            local.set 3
          end
          local.get 3
          call $sleep
          global.get 0
          br_if 1 (;@2;)
          call $state
        end
        return
      end
    end
    i32.const 0
  )
  (func (;3;) (type 3) (param i32)
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
  (func (;4;) (type 4)
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
  (func (;5;) (type 3) (param i32)
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
  (func (;6;) (type 4)
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
  (func $state (;7;) (type 5) (result i32)
    global.get 0
  )
  (func (;8;) (type 6) (param i32) (result i32)
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
  (func (;9;) (type 6) (param i32) (result i32)
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
