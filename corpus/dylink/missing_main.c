/* Scenario 4 (missing): dlsym of a symbol the library does not define
 * returns 0 and dlerror names it; dlerror then returns 0 (an error is
 * reported once, as in POSIX). The same for dlopen of a file the loader
 * does not have, of a library whose symbols cannot be resolved
 * (libunresolved.so), and for dlsym on a handle dlopen never returned.
 * dlerror's wording is the loader's: only what it mentions is printed. */
#include "dl.h"

int main_counter = 7;           /* libcallback.so needs these two */

int main_hook(int x) {
  main_counter += 1;
  return x + main_counter;
}

static void report(const char *what, const char *name) {
  const char *error = host_dlerror();
  say(what);
  say(error ? ": error set" : ": no error");
  say(contains(error, name) ? ", names " : ", does not name ");
  say(name);
  say("\n");
}

EXPORT(run) int run(void) {
  say("main: start\n");
  say_i32("main: dlerror before anything ", host_dlerror() != 0);
  int handle = host_dlopen("libcallback.so", DL_NOW);
  if (!handle) {
    say("main: dlopen failed\n");
    return 1;
  }
  say_i32("main: dlerror after a good dlopen ", host_dlerror() != 0);
  say_i32("main: dlsym missing -> ", host_dlsym(handle, "no_such_symbol"));
  report("main: dlsym missing", "no_such_symbol");
  say_i32("main: dlerror again ", host_dlerror() != 0);
  say_i32("main: dlsym present is nonzero ",
          host_dlsym(handle, "lib_compute") != 0);
  say_i32("main: dlopen absent file -> ", host_dlopen("libabsent.so", DL_NOW));
  report("main: dlopen absent file", "libabsent.so");
  say_i32("main: dlopen unresolved -> ",
          host_dlopen("libunresolved.so", DL_NOW));
  const char *error = host_dlerror();
  say_i32("main: dlopen unresolved names a symbol ",
          contains(error, "nothing_defines_this") ||
              contains(error, "no_such_data"));
  say_i32("main: dlsym bad handle -> ", host_dlsym(handle + 12345, "x"));
  say_i32("main: dlerror after bad handle ", host_dlerror() != 0);
  return 0;
}
