;; Output of range_test.wat. Update with: BLESS=1 cargo test -p asyncify-transform --test snapshots
;; func 1 many: points 10, saved locals 1, saved per point [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], live per point [1, 1, 1, 1, 1, 1, 1, 1, 1, 0], frame 8 bytes
(module
  (type (;0;) (func (param i32)))
  (type (;1;) (func (param i32)))
  (type (;2;) (func))
  (type (;3;) (func (result i32)))
  (type (;4;) (func (param i32) (result i32)))
  (import "env" "sleep" (func $sleep (;0;) (type 0) (param i32)))
  (memory (;0;) 1)
  (global (;0;) (mut i32) i32.const 0)
  (global (;1;) (mut i32) i32.const 0)
  (export "many" (func $many))
  (export "asyncify_start_unwind" (func 2))
  (export "asyncify_stop_unwind" (func 3))
  (export "asyncify_start_rewind" (func 4))
  (export "asyncify_stop_rewind" (func 5))
  (export "asyncify_get_state" (func 6))
  (func $many (;1;) (type 0) (param $x i32)
    (local i32 i32)
    global.get 0
    if ;; label = @1
      i32.const 8
      call 7
      local.set 2
      local.get 2
      i32.load
      local.set $x
      local.get 2
      i32.load offset=4
      local.set 1
    end
    block ;; label = @1
      block ;; label = @2
        block ;; label = @3
          block ;; label = @4
            block ;; label = @5
              global.get 0
              if ;; label = @6
                local.get 1
                i32.const 9
                i32.lt_u
                br_if 1 (;@5;)
                br 2 (;@4;)
              end
            end
            local.get $x
            local.get 1
            i32.const 9
            i32.lt_u
            global.get 0
            i32.eqz
            select
            if ;; label = @5
              block ;; label = @6
                block ;; label = @7
                  block ;; label = @8
                    block ;; label = @9
                      block ;; label = @10
                        block ;; label = @11
                          block ;; label = @12
                            block ;; label = @13
                              block ;; label = @14
                                global.get 0
                                if ;; label = @15
                                  local.get 1
                                  br_table 1 (;@14;) 2 (;@13;) 3 (;@12;) 4 (;@11;) 5 (;@10;) 6 (;@9;) 7 (;@8;) 8 (;@7;) 9 (;@6;)
                                end
                              end
                              i32.const 1
                              i32.const 0
                              local.set 1
                              call $sleep
                              global.get 0
                              br_if 11 (;@2;)
                            end
                            i32.const 2
                            i32.const 1
                            local.set 1
                            call $sleep
                            global.get 0
                            br_if 10 (;@2;)
                          end
                          i32.const 3
                          i32.const 2
                          local.set 1
                          call $sleep
                          global.get 0
                          br_if 9 (;@2;)
                        end
                        i32.const 4
                        i32.const 3
                        local.set 1
                        call $sleep
                        global.get 0
                        br_if 8 (;@2;)
                      end
                      i32.const 5
                      i32.const 4
                      local.set 1
                      call $sleep
                      global.get 0
                      br_if 7 (;@2;)
                    end
                    i32.const 6
                    i32.const 5
                    local.set 1
                    call $sleep
                    global.get 0
                    br_if 6 (;@2;)
                  end
                  i32.const 7
                  i32.const 6
                  local.set 1
                  call $sleep
                  global.get 0
                  br_if 5 (;@2;)
                end
                i32.const 8
                i32.const 7
                local.set 1
                call $sleep
                global.get 0
                br_if 4 (;@2;)
              end
              i32.const 9
              i32.const 8
              local.set 1
              call $sleep
              global.get 0
              br_if 3 (;@2;)
            end
          end
          local.get $x
          i32.const 9
          local.set 1
          call $sleep
          global.get 0
          br_if 1 (;@2;)
        end
        return
      end
      i32.const 8
      call 8
      local.tee 2
      i32.const -1
      i32.ne
      if ;; label = @2
        local.get 2
        local.get $x
        i32.store
        local.get 2
        local.get 1
        i32.store offset=4
      end
    end
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
