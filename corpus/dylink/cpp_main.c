/* Scenario 6 (cpp), the main module: dlopen the C++ library and call its
 * extern "C" entry point, whose virtual calls wait on slow_double. */
#include "dl.h"

EXPORT(run) int run(void) {
  say("main: start\n");
  int handle = host_dlopen("libshapes.so", DL_NOW);
  if (!handle) {
    say("main: dlopen failed\n");
    return 1;
  }
  int (*total)(int) = (int (*)(int))host_dlsym(handle, "shapes_total");
  if (!total) {
    say("main: dlsym failed\n");
    return 2;
  }
  say_i32("main: shapes_total -> ", total(1));
  return 0;
}
