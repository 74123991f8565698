/* Scenario 7 (ctor_wait), the main module: dlopen a library whose
 * constructor waits on an async import, then read what it computed. */
#include "dl.h"

EXPORT(run) int run(void) {
  say("main: start\n");
  int handle = host_dlopen("libctor_wait.so", DL_NOW);
  if (!handle) {
    say("main: dlopen failed\n");
    return 1;
  }
  int (*read)(void) = (int (*)(void))host_dlsym(handle, "read_ctor_result");
  if (!read) {
    say("main: dlsym failed\n");
    return 2;
  }
  say_i32("main: read_ctor_result -> ", read());
  return 0;
}
