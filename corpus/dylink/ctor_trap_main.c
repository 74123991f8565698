/* Scenario 5 (ctor_trap), the main module: dlopen a library whose
 * constructor traps. The loader forgets the whole load and dlopen returns
 * 0 with an error; a second dlopen loads it afresh, so the constructor runs
 * (and traps) again. */
#include "dl.h"

static void attempt(void) {
  int handle = host_dlopen("libctor_trap.so", DL_NOW);
  say_i32("main: dlopen returned, handle is nonzero ", handle != 0);
  const char *error = host_dlerror();
  say_i32("main: dlerror set ", error != 0);
  say_i32("main: dlerror names the library ", contains(error, "libctor_trap.so"));
}

EXPORT(run) int run(void) {
  say("main: start\n");
  attempt();
  attempt();
  return 0;
}
