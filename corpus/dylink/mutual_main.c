/* Scenario 2 (mutual), the main module: dlopen library A (which needs B),
 * then B (already loaded as A's dependency), and call into both. */
#include "dl.h"

EXPORT(run) int run(void) {
  say("main: start\n");
  int a = host_dlopen("libmutual_a.so", DL_NOW);
  if (!a) {
    say("main: dlopen a failed\n");
    return 1;
  }
  int b = host_dlopen("libmutual_b.so", DL_NOW);
  if (!b) {
    say("main: dlopen b failed\n");
    return 1;
  }
  int (*a_sum)(void) = (int (*)(void))host_dlsym(a, "a_sum");
  int (*b_read_a)(void) = (int (*)(void))host_dlsym(b, "b_read_a");
  int *b_value = (int *)host_dlsym(b, "b_value");
  int *a_value = (int *)host_dlsym(a, "a_value");
  if (!a_sum || !b_read_a || !b_value || !a_value) {
    say("main: dlsym failed\n");
    return 2;
  }
  say_i32("main: b_value ", *b_value);
  say_i32("main: a_sum -> ", a_sum());
  say_i32("main: b_read_a -> ", b_read_a());
  say_i32("main: a_value ", *a_value);
  say_i32("main: b_value ", *b_value);
  return 0;
}
