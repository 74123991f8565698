;; Output of reference_tables.wat. Update with: BLESS=1 cargo test -p asyncify-transform --test snapshots
;; func 2 refs: points 1, saved locals 2, saved per point [2], live per point [2], frame 8 bytes
(module
  (type (;0;) (func (param i32) (result i32)))
  (type (;1;) (func (param i32 externref) (result i32)))
  (type (;2;) (func (param i32)))
  (type (;3;) (func))
  (type (;4;) (func (result i32)))
  (type (;5;) (func (param i32) (result i32)))
  (import "env" "sleep" (func $sleep (;0;) (type 0) (param i32) (result i32)))
  (table (;0;) 1 funcref)
  (table (;1;) 0 externref)
  (table (;2;) 0 funcref)
  (memory (;0;) 1)
  (global (;0;) (mut i32) i32.const 0)
  (global (;1;) (mut i32) i32.const 0)
  (global (;2;) (mut i32) i32.const 0)
  (global (;3;) (mut i32) i32.const 0)
  (global (;4;) (mut i32) i32.const 0)
  (global (;5;) (mut i32) i32.const 0)
  (export "refs" (func $refs))
  (export "asyncify_start_unwind" (func 3))
  (export "asyncify_stop_unwind" (func 4))
  (export "asyncify_start_rewind" (func 5))
  (export "asyncify_stop_rewind" (func 6))
  (export "asyncify_get_state" (func 7))
  (elem (;0;) declare func $id)
  (func $id (;1;) (type 0) (param i32) (result i32)
    local.get 0
  )
  (func $refs (;2;) (type 1) (param $x i32) (param $e externref) (result i32)
    (local $f funcref) (local i32 i32 i32)
    global.get 0
    if ;; label = @1
      i32.const 8
      call 8
      local.set 4
      local.get 4
      i32.load
      local.tee 5
      table.get 1
      local.set $e
      local.get 5
      ref.null extern
      table.set 1
      global.get 3
      i32.const 1
      i32.sub
      global.set 3
      global.get 3
      i32.eqz
      if ;; label = @2
        i32.const 0
        global.set 2
      end
      local.get 4
      i32.load offset=4
      local.tee 5
      table.get 2
      local.set $f
      local.get 5
      ref.null func
      table.set 2
      global.get 5
      i32.const 1
      i32.sub
      global.set 5
      global.get 5
      i32.eqz
      if ;; label = @2
        i32.const 0
        global.set 4
      end
    end
    block ;; label = @1
      block ;; label = @2
        block (result i32) ;; label = @3
          block ;; label = @4
            global.get 0
            br_if 0 (;@4;)
            ref.func $id
            local.set $f
          end
          local.get $x
          call $sleep
          global.get 0
          br_if 1 (;@2;)
          drop
          i32.const 0
          local.get $f
          table.set 0
          local.get $e
          ref.is_null
          local.get $f
          ref.is_null
          i32.add
        end
        return
      end
      i32.const 8
      call 9
      local.tee 4
      i32.const -1
      i32.ne
      if ;; label = @2
        global.get 2
        local.tee 5
        table.size 1
        i32.ge_u
        if ;; label = @3
          ref.null extern
          table.size 1
          i32.const 16
          i32.add
          table.grow 1
          i32.const -1
          i32.eq
          if ;; label = @4
            unreachable
          end
        end
        local.get 5
        local.get $e
        table.set 1
        local.get 4
        local.get 5
        i32.store
        local.get 5
        i32.const 1
        i32.add
        global.set 2
        global.get 3
        i32.const 1
        i32.add
        global.set 3
        global.get 4
        local.tee 5
        table.size 2
        i32.ge_u
        if ;; label = @3
          ref.null func
          table.size 2
          i32.const 16
          i32.add
          table.grow 2
          i32.const -1
          i32.eq
          if ;; label = @4
            unreachable
          end
        end
        local.get 5
        local.get $f
        table.set 2
        local.get 4
        local.get 5
        i32.store offset=4
        local.get 5
        i32.const 1
        i32.add
        global.set 4
        global.get 5
        i32.const 1
        i32.add
        global.set 5
      end
    end
    i32.const 0
  )
  (func (;3;) (type 2) (param i32)
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
  (func (;4;) (type 3)
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
  (func (;5;) (type 2) (param i32)
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
  (func (;6;) (type 3)
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
  (func (;7;) (type 4) (result i32)
    global.get 0
  )
  (func (;8;) (type 5) (param i32) (result i32)
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
  (func (;9;) (type 5) (param i32) (result i32)
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
