/* The host interface every module in corpus/dylink uses: no libc, only
 * imports from module `env`, declared with their import names so that no
 * libc symbol (emscripten's own dlopen) can take their place.
 *
 *   dlopen(path, flags) -> handle or 0       (async on the loader's side)
 *   dlsym(handle, name) -> address or table index, 0 if missing
 *   dlclose(handle) -> 0 on success
 *   dlerror() -> pointer to a NUL-terminated string, or 0
 *   slow_double(x) -> 2 * x                  (async: answered after a wait)
 *   print_str(ptr, len)                      appends len bytes (UTF-8)
 *   print_i32(x)                             appends x in decimal
 *
 * With -DSTATIC_LINK the dl* functions are not imported: the program that
 * includes this header defines them (the statically linked reference).
 */
#ifndef DYLINK_DL_H
#define DYLINK_DL_H

#define IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#define EXPORT(name) __attribute__((export_name(#name)))

#ifndef STATIC_LINK
IMPORT(dlopen) int host_dlopen(const char *path, int flags);
IMPORT(dlsym) int host_dlsym(int handle, const char *name);
IMPORT(dlclose) int host_dlclose(int handle);
IMPORT(dlerror) const char *host_dlerror(void);
#endif
#ifndef WASI_HOST
IMPORT(slow_double) int slow_double(int x);
IMPORT(print_str) void print_str(const char *ptr, int len);
IMPORT(print_i32) void print_i32(int x);
#else
/* With -DWASI_HOST (the wasi/ builds, for `asyncify run`): output through
 * WASI's fd_write, and the wait through `asyncify run`'s built-in
 * asyncify_host.yield (suspends once when the module is instrumented). */
struct dl_ciovec { const char *buf; unsigned long len; };
__attribute__((import_module("wasi_snapshot_preview1"), import_name("fd_write")))
int dl_fd_write(int fd, const struct dl_ciovec *iov, int count, unsigned long *written);
__attribute__((import_module("asyncify_host"), import_name("yield"))) void dl_yield(void);

static inline int slow_double(int x) {
  dl_yield();
  return 2 * x;
}

static inline void print_str(const char *ptr, int len) {
  struct dl_ciovec iov = { ptr, (unsigned long)len };
  unsigned long written;
  dl_fd_write(1, &iov, 1, &written);
}

static inline void print_i32(int x) {
  char digits[12];
  int n = 0, d = 0;
  char out[12];
  unsigned v = x < 0 ? -(unsigned)x : (unsigned)x;
  do { digits[d++] = (char)('0' + v % 10); v /= 10; } while (v);
  if (x < 0) out[n++] = '-';
  while (d) out[n++] = digits[--d];
  print_str(out, n);
}
#endif

/* RTLD_NOW as in emscripten's and musl's <dlfcn.h>. */
#define DL_NOW 2

static inline int str_len(const char *s) {
  int n = 0;
  while (s[n]) n++;
  return n;
}

/* Prints a NUL-terminated string. */
static inline void say(const char *s) { print_str(s, str_len(s)); }

/* Prints `label`, the number and a newline. */
static inline void say_i32(const char *label, int x) {
  say(label);
  print_i32(x);
  say("\n");
}

/* 1 if `needle` occurs in `hay`, else 0 (hay may be 0). */
static inline int contains(const char *hay, const char *needle) {
  if (!hay) return 0;
  for (; *hay; hay++) {
    int i = 0;
    while (needle[i] && hay[i] == needle[i]) i++;
    if (!needle[i]) return 1;
  }
  return 0;
}

#endif
