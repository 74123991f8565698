;; Output of tail_trampoline.wat. Update with: BLESS=1 cargo test -p asyncify-transform --test snapshots
;; func 1 count: points 1, saved locals 0, saved per point [0], live per point [0], frame 4 bytes
;; func 2 start: points 0, saved locals 0, saved per point [], live per point [], frame 4 bytes
(module
  (type (;0;) (func (param i32) (result i32)))
  (type (;1;) (func (param i32)))
  (type (;2;) (func))
  (type (;3;) (func (result i32)))
  (type (;4;) (func (param i32) (result i32)))
  (type (;5;) (func (param i32) (result i32)))
  (import "env" "sleep" (func $sleep (;0;) (type 0) (param i32) (result i32)))
  (memory (;0;) 1)
  (global (;0;) (mut i32) i32.const 0)
  (global (;1;) (mut i32) i32.const 0)
  (export "start" (func $start))
  (export "asyncify_start_unwind" (func 3))
  (export "asyncify_stop_unwind" (func 4))
  (export "asyncify_start_rewind" (func 5))
  (export "asyncify_stop_rewind" (func 6))
  (export "asyncify_get_state" (func 7))
  (func $count (;1;) (type 0) (param $n i32) (result i32)
    (local i32 i32 i32)
    global.get 0
    if ;; label = @1
      global.get 1
      i32.load
      i32.const 4
      i32.sub
      i32.load
      local.tee 3
      i32.const 0
      i32.ne
      if ;; label = @2
        local.get 3
        return_call 10
      end
      i32.const 4
      call 8
      local.set 2
    end
    block ;; label = @1
      block ;; label = @2
        block (result i32) ;; label = @3
          local.get $n
          i32.eqz
          local.get 1
          i32.const 1
          i32.lt_u
          global.get 0
          i32.eqz
          select
          if (result i32) ;; label = @4
            i32.const 0
            call $sleep
            global.get 0
            br_if 2 (;@2;)
          else
            local.get $n
            i32.const 1
            i32.sub
            return_call $count
          end
        end
        return
      end
      i32.const 4
      call 9
      local.tee 2
      i32.const -1
      i32.ne
      if ;; label = @2
        local.get 2
        i32.const 0
        i32.store
      end
    end
    i32.const 0
  )
  (func $start (;2;) (type 0) (param $n i32) (result i32)
    (local i32 i32 i32)
    global.get 0
    if ;; label = @1
      global.get 1
      i32.load
      i32.const 4
      i32.sub
      i32.load
      local.tee 3
      i32.const 1
      i32.ne
      if ;; label = @2
        local.get 3
        return_call 10
      end
      i32.const 4
      call 8
      local.set 2
    end
    block ;; label = @1
      block (result i32) ;; label = @2
        local.get $n
        return_call $count
      end
      return
    end
    i32.const 0
  )
  (func (;3;) (type 1) (param i32)
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
  (func (;4;) (type 2)
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
  (func (;5;) (type 1) (param i32)
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
  (func (;6;) (type 2)
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
  (func (;7;) (type 3) (result i32)
    global.get 0
  )
  (func (;8;) (type 4) (param i32) (result i32)
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
  (func (;9;) (type 4) (param i32) (result i32)
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
  (func (;10;) (type 5) (param i32) (result i32)
    block ;; label = @1
      block ;; label = @2
        local.get 0
        br_table 0 (;@2;) 1 (;@1;) 1 (;@1;)
      end
      i32.const 0
      return_call $count
    end
    unreachable
  )
)
