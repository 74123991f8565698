/* The main module of the `asyncify run` dynamic-linking fixture: a WASI
 * command that dlopen's the library named by its first argument (a path the
 * loader resolves through --library or a --dir mapping), calls `greet`
 * through dlsym, and exits with 0. */
#include "wasi.h"

__attribute__((export_name("main_square"))) int main_square(int x) {
  say_int("main: main_square ", x);
  return x * x;
}

WASI(args_sizes_get) int wasi_args_sizes_get(unsigned long *argc, unsigned long *size);
WASI(args_get) int wasi_args_get(char **argv, char *buf);
WASI(proc_exit) void wasi_proc_exit(int code);

static char arg_buf[1024];
static char *argv[16];

static void fail(const char *what) {
  say(what);
  const char *error = host_dlerror();
  say(error ? error : "(no dlerror)");
  say("\n");
  wasi_proc_exit(1);
}

__attribute__((export_name("_start"))) void start(void) {
  unsigned long argc = 0, size = 0;
  wasi_args_sizes_get(&argc, &size);
  if (argc < 2 || argc > 16 || size > sizeof arg_buf) {
    say("usage: greet_main LIBRARY\n");
    wasi_proc_exit(2);
  }
  wasi_args_get(argv, arg_buf);
  volatile int frame[2];
  frame[0] = 7;
  say("main: dlopen ");
  say(argv[1]);
  say("\n");
  int handle = host_dlopen(argv[1], 2);
  if (!handle) fail("main: dlopen failed: ");
  int index = host_dlsym(handle, "greet");
  if (!index) fail("main: dlsym failed: ");
  int (*greet)(int) = (int (*)(int))index;
  frame[1] = greet(frame[0]);
  say_int("main: greet -> ", frame[1]);
}
