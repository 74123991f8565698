/* Scenario 8 (nested), the main module: dlopen a library whose function
 * dlopens another library (suspending inside the first library), then
 * dlopen that second library here too: the same, already constructed. */
#include "dl.h"

EXPORT(run) int run(void) {
  say("main: start\n");
  int handle = host_dlopen("libnested.so", DL_NOW);
  if (!handle) {
    say("main: dlopen failed\n");
    return 1;
  }
  int (*load)(int) = (int (*)(int))host_dlsym(handle, "nested_load");
  if (!load) {
    say("main: dlsym failed\n");
    return 2;
  }
  say_i32("main: nested_load -> ", load(5));
  int again = host_dlopen("libctor_wait.so", DL_NOW);
  int (*read)(void) = (int (*)(void))host_dlsym(again, "read_ctor_result");
  say_i32("main: read_ctor_result -> ", read ? read() : -1);
  return 0;
}
