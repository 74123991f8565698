/* Scenario 4 (missing), a library that cannot be loaded: it needs a
 * function and a datum that no module and no host import defines. */
#include "dl.h"

extern int nothing_defines_this(int x);
extern int no_such_data;

int unresolved_use(int x) { return nothing_defines_this(x) + no_such_data; }
