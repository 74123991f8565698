/* Scenario 7 (ctor_wait), the library: its constructor calls the async
 * import slow_double, so the guest is suspended inside dlopen a second
 * time, while the loader runs the library's constructors. */
#include "dl.h"

int ctor_result = 0;

__attribute__((constructor)) static void init(void) {
  ctor_result = slow_double(21);
  say_i32("lib: constructor computed ", ctor_result);
}

int read_ctor_result(void) { return ctor_result; }
