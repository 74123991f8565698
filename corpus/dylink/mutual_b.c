/* Scenario 2 (mutual), library B: defines b_value and reads and writes
 * library A's a_value (GOT.mem.a_value) from code, so each library uses the
 * other's data. B does not list A as needed (that would be a cycle); A's
 * symbols are resolved when B's code runs, after both are loaded. */
#include "dl.h"

extern int a_value;             /* library A's data */

int b_value = 32;

int b_bump(int by) {
  b_value += by;
  a_value += 1;
  return b_value;
}

int b_read_a(void) { return a_value; }
