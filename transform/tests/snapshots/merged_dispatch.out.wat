;; Output of merged_dispatch.wat. Update with: BLESS=1 cargo test -p asyncify-transform --test snapshots
;; func 1 three: points 3, saved locals 1, saved per point [1, 1, 1], live per point [0, 0, 1], frame 8 bytes
(module
  (type (;0;) (func (param i32) (result i32)))
  (type (;1;) (func (param i32)))
  (type (;2;) (func))
  (type (;3;) (func (result i32)))
  (type (;4;) (func (param i32) (result i32)))
  (import "env" "sleep" (func $sleep (;0;) (type 0) (param i32) (result i32)))
  (memory (;0;) 1)
  (global (;0;) (mut i32) i32.const 0)
  (global (;1;) (mut i32) i32.const 0)
  (export "three" (func $three))
  (export "asyncify_start_unwind" (func 2))
  (export "asyncify_stop_unwind" (func 3))
  (export "asyncify_start_rewind" (func 4))
  (export "asyncify_stop_rewind" (func 5))
  (export "asyncify_get_state" (func 6))
  (func $three (;1;) (type 0) (param $x i32) (result i32)
    (local $a i32) (local $b i32) (local i32 i32 i32 i32)
    global.get 0
    if ;; label = @1
      i32.const 8
      call 7
      local.set 5
      local.get 5
      i32.load
      local.set 3
      local.get 5
      i32.load offset=4
      local.set 4
    end
    block ;; label = @1
      block ;; label = @2
        block (result i32) ;; label = @3
          block ;; label = @4
            block ;; label = @5
              block ;; label = @6
                global.get 0
                if ;; label = @7
                  local.get 4
                  br_table 1 (;@6;) 2 (;@5;) 3 (;@4;)
                end
              end
              local.get $x
              i32.const 0
              local.set 4
              call $sleep
              global.get 0
              br_if 3 (;@2;)
              local.set $a
            end
            local.get $a
            i32.const 1
            local.set 4
            call $sleep
            global.get 0
            br_if 2 (;@2;)
            local.set $b
            local.get $b
            local.set 3
          end
          local.get $b
          i32.const 2
          local.set 4
          call $sleep
          global.get 0
          br_if 1 (;@2;)
          local.set 6
          local.get 3
          local.get 6
          i32.add
        end
        return
      end
      i32.const 8
      call 8
      local.tee 5
      i32.const -1
      i32.ne
      if ;; label = @2
        local.get 5
        local.get 3
        i32.store
        local.get 5
        local.get 4
        i32.store offset=4
      end
    end
    i32.const 0
  )
  (func (;2;) (type 1) (param i32)
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
  (func (;3;) (type 2)
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
  (func (;4;) (type 1) (param i32)
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
  (func (;5;) (type 2)
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
  (func (;6;) (type 3) (result i32)
    global.get 0
  )
  (func (;7;) (type 4) (param i32) (result i32)
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
  (func (;8;) (type 4) (param i32) (result i32)
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
