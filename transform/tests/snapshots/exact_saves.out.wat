;; Output of exact_saves.wat. Update with: BLESS=1 cargo test -p asyncify-transform --test snapshots
;; func 1 mix: points 3, saved locals 2, saved per point [1, 2, 2], live per point [1, 2, 2], frame 16 bytes
(module
  (type (;0;) (func (param i32) (result i32)))
  (type (;1;) (func (param i32 i64) (result i64)))
  (type (;2;) (func (param i32)))
  (type (;3;) (func))
  (type (;4;) (func (result i32)))
  (type (;5;) (func (param i32) (result i32)))
  (import "env" "sleep" (func $sleep (;0;) (type 0) (param i32) (result i32)))
  (memory (;0;) 1)
  (global (;0;) (mut i32) i32.const 0)
  (global (;1;) (mut i32) i32.const 0)
  (export "mix" (func $mix))
  (export "asyncify_start_unwind" (func 2))
  (export "asyncify_stop_unwind" (func 3))
  (export "asyncify_start_rewind" (func 4))
  (export "asyncify_stop_rewind" (func 5))
  (export "asyncify_get_state" (func 6))
  (func $mix (;1;) (type 1) (param $x i32) (param $y i64) (result i64)
    (local $a i32) (local $f f64) (local i32 i32 i32)
    global.get 0
    if ;; label = @1
      i32.const 16
      call 7
      local.set 5
      local.get 5
      i64.load
      local.set $y
      local.get 5
      i32.load offset=8
      local.set $a
      local.get 5
      i32.load offset=12
      local.set 4
    end
    block ;; label = @1
      block ;; label = @2
        block ;; label = @3
          block (result i64) ;; label = @4
            block ;; label = @5
              block ;; label = @6
                block ;; label = @7
                  global.get 0
                  if ;; label = @8
                    local.get 4
                    br_table 1 (;@7;) 2 (;@6;) 3 (;@5;)
                  end
                end
                local.get $x
                i32.const 0
                local.set 4
                call $sleep
                global.get 0
                br_if 3 (;@3;)
                local.set $a
              end
              local.get $a
              i32.const 1
              local.set 4
              call $sleep
              global.get 0
              br_if 3 (;@2;)
              f64.convert_i32_s
              local.set $f
              local.get $f
              i32.trunc_f64_s
              local.set 6
            end
            local.get 6
            i32.const 2
            local.set 4
            call $sleep
            global.get 0
            br_if 2 (;@2;)
            drop
            local.get $y
            local.get $a
            i64.extend_i32_s
            i64.add
          end
          return
        end
        i32.const 16
        call 8
        local.tee 5
        i32.const -1
        i32.ne
        if ;; label = @3
          local.get 5
          local.get $y
          i64.store
          local.get 5
          local.get 4
          i32.store offset=12
        end
        br 1 (;@1;)
      end
      i32.const 16
      call 8
      local.tee 5
      i32.const -1
      i32.ne
      if ;; label = @2
        local.get 5
        local.get $y
        i64.store
        local.get 5
        local.get $a
        i32.store offset=8
        local.get 5
        local.get 4
        i32.store offset=12
      end
    end
    i64.const 0
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
