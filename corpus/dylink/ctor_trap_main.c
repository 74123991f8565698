/* Scenario 5 (ctor_trap), the main module: dlopen a library whose
 * constructor traps. What the loader does then is its choice, documented
 * with the loader (the trap ends the call, or dlopen returns 0 with an
 * error); the expected output is what is printed before the trap. */
#include "dl.h"

EXPORT(run) int run(void) {
  say("main: start\n");
  int handle = host_dlopen("libctor_trap.so", DL_NOW);
  say_i32("main: dlopen returned, handle is nonzero ", handle != 0);
  say_i32("main: dlerror set ", host_dlerror() != 0);
  return 0;
}
