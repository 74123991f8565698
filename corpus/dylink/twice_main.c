/* Scenario 3 (twice): dlopen the same library twice. Both calls return the
 * same handle, the library's constructor runs once, and its data is shared;
 * each dlopen needs its own dlclose (both return 0). Uses libcallback.so. */
#include "dl.h"

int main_counter = 7;           /* libcallback.so needs these two */

int main_hook(int x) {
  main_counter += 1;
  return x + main_counter;
}

static int identity(int x) { return x; }

EXPORT(run) int run(void) {
  say("main: start\n");
  int first = host_dlopen("libcallback.so", DL_NOW);
  int second = host_dlopen("libcallback.so", DL_NOW);
  if (!first || !second) {
    say("main: dlopen failed\n");
    return 1;
  }
  say_i32("main: same handle ", first == second);
  int (*count)(void) = (int (*)(void))host_dlsym(second, "lib_ctor_count");
  int (*compute)(int (*)(int), int) =
      (int (*)(int (*)(int), int))host_dlsym(first, "lib_compute");
  int *calls = (int *)host_dlsym(first, "lib_calls");
  if (!count || !compute || !calls) {
    say("main: dlsym failed\n");
    return 2;
  }
  say_i32("main: constructor runs ", count());
  say_i32("main: compute -> ", compute(identity, 1));
  say_i32("main: compute -> ", compute(identity, 2));
  say_i32("main: lib_calls ", *calls);
  say_i32("main: dlclose first -> ", host_dlclose(first));
  say_i32("main: dlclose second -> ", host_dlclose(second));
  return 0;
}
