/* Scenario 1 (callback), the main module: dlopen (async) a library, dlsym a
 * function and call it through the pointer, passing a callback of its own;
 * the library calls back into this module (by pointer, by name and through
 * GOT.func) while host imports are pending, so one suspension unwinds
 * frames of both modules. Built as a PIE, as a plain executable and by
 * emcc -sMAIN_MODULE=2; with -DSTATIC_LINK linked with callback_lib.c into
 * one module (the reference). Exports `run() -> i32` (0 on success). */
#include "dl.h"

#ifndef LIB_PATH
#define LIB_PATH "libcallback.so"
#endif

int main_counter = 7;           /* the library reads and writes it */

int main_hook(int x) {
  main_counter += 1;
  return x + main_counter;
}

static int on_result(int x) {
  volatile int keep = x;        /* a frame of this module under the library's */
  int d = slow_double(keep);
  say_i32("main: callback got ", keep);
  return d + keep;
}

#ifdef STATIC_LINK
typedef int (*callback_fn)(int);
int lib_compute(callback_fn callback, int x);
void lib_init(void);
static int host_dlopen(const char *path, int flags) {
  (void)path; (void)flags;
  lib_init();
  return 1;
}
static int host_dlsym(int handle, const char *name) {
  (void)handle;
  return contains(name, "lib_compute") ? (int)lib_compute : 0;
}
#endif

EXPORT(run) int run(void) {
  volatile int mine[2];
  mine[0] = 5;
  say("main: start\n");
  int handle = host_dlopen(LIB_PATH, DL_NOW);
  if (!handle) {
    say("main: dlopen failed\n");
    return 1;
  }
  say("main: dlopen ok\n");
  int (*compute)(int (*)(int), int) =
      (int (*)(int (*)(int), int))host_dlsym(handle, "lib_compute");
  if (!compute) {
    say("main: dlsym failed\n");
    return 2;
  }
  mine[1] = compute(on_result, 10);
  say_i32("main: lib_compute -> ", mine[1]);
  mine[1] += compute(on_result, mine[0]);
  say_i32("main: total ", mine[1]);
  say_i32("main: main_counter ", main_counter);
  return 0;
}
