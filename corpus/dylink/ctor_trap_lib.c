/* Scenario 5 (ctor_trap), the library: its constructor prints and traps. */
#include "dl.h"

int ctor_trap_value = 1;

__attribute__((constructor)) static void explode(void) {
  say("lib: constructor about to trap\n");
  __builtin_trap();
}
