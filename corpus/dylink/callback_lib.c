/* Scenario 1 (callback), the library: `lib_compute` is found by dlsym and
 * called through a function pointer from the main module. It calls the async
 * host import slow_double, a callback the main module passes as a function
 * pointer (call_indirect through the shared table), the main module's
 * `main_hook` imported by name (env.main_hook) and through its address
 * (GOT.func.main_hook), and reads and writes the main module's data
 * (GOT.mem.main_counter). Its shadow-stack frame (a volatile array) is live
 * across every suspension. Also used by scenario 3 (twice). */
#include "dl.h"

extern int main_counter;        /* defined by the main module */
extern int main_hook(int x);    /* defined by the main module */

int lib_calls = 0;              /* data of the library */
int lib_ctor_runs = 0;
int (*lib_hook_ptr)(int) = main_hook;   /* a data relocation: GOT.func */

typedef int (*callback_fn)(int);

#ifdef STATIC_LINK
void lib_init(void)
#else
__attribute__((constructor)) static void lib_init(void)
#endif
{
  lib_ctor_runs++;
  say("lib: constructor\n");
}

int lib_compute(callback_fn callback, int x) {
  volatile int frame[4];
  frame[0] = x;
  frame[1] = 0;
  lib_calls++;
  for (int i = 0; i < 3; i++) {
    int d = slow_double(frame[0] + i);
    frame[1] += d;
    say_i32("lib: slow_double -> ", d);
  }
  frame[2] = callback(frame[1]);
  say_i32("lib: callback -> ", frame[2]);
  frame[3] = main_hook(frame[2]) + lib_hook_ptr(1);
  say_i32("lib: main_hook -> ", frame[3]);
  main_counter += 100;
  return frame[0] + frame[1] + frame[2] + frame[3] + lib_calls;
}

int lib_ctor_count(void) { return lib_ctor_runs; }
