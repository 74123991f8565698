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
IMPORT(slow_double) int slow_double(int x);
IMPORT(print_str) void print_str(const char *ptr, int len);
IMPORT(print_i32) void print_i32(int x);

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
