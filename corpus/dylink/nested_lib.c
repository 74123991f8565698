/* Scenario 8 (nested), the library: it loads another library itself. Its
 * dlopen suspends with frames of this library and of the main module on
 * the stack, while the other library's constructor waits on slow_double. */
#include "dl.h"

int nested_load(int x) {
  volatile int keep = x;
  say("nested: dlopen libctor_wait.so\n");
  int handle = host_dlopen("libctor_wait.so", DL_NOW);
  if (!handle) {
    say("nested: dlopen failed\n");
    return -1;
  }
  int (*read)(void) = (int (*)(void))host_dlsym(handle, "read_ctor_result");
  if (!read) {
    say("nested: dlsym failed\n");
    return -2;
  }
  int got = read();
  say_i32("nested: read_ctor_result -> ", got);
  return got + slow_double(keep);
}
