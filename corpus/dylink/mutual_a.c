/* Scenario 2 (mutual), library A: needs library B (linked against it, so
 * dylink.0 lists libmutual_b.so), points at B's data from its own data
 * (a_to_b = &b_value: a data relocation through GOT.mem.b_value, applied
 * when A is instantiated, after B) and reads B's data from code. */
#include "dl.h"

extern int b_value;             /* library B's data */
extern int b_bump(int by);      /* library B's function */

int a_value = 10;
int *a_to_b = &b_value;

int a_sum(void) {
  int before = *a_to_b;
  int after = b_bump(slow_double(a_value));   /* B changes b_value */
  say_i32("a: b_value before ", before);
  say_i32("a: b_value after ", after);
  return a_value + *a_to_b;
}
