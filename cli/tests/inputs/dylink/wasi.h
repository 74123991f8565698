/* What the `asyncify run` dynamic-linking fixtures need, without libc:
 * WASI's fd_write for output and the loader's dl* imports from `env`. */
#ifndef CLI_DYLINK_WASI_H
#define CLI_DYLINK_WASI_H

#define WASI(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(#name)))
#define ENV(name) __attribute__((import_module("env"), import_name(#name)))

struct ciovec { const char *buf; unsigned long len; };
WASI(fd_write) int wasi_fd_write(int fd, const struct ciovec *iov, int count, unsigned long *written);

ENV(dlopen) int host_dlopen(const char *path, int flags);
ENV(dlsym) int host_dlsym(int handle, const char *name);
ENV(dlerror) const char *host_dlerror(void);

static inline int str_len(const char *s) {
  int n = 0;
  while (s[n]) n++;
  return n;
}

/* Writes a NUL-terminated string to standard output (one fd_write call, so
 * with `--async-wasi` every line is a suspension). */
static inline void say(const char *s) {
  struct ciovec iov = { s, (unsigned long)str_len(s) };
  unsigned long written;
  wasi_fd_write(1, &iov, 1, &written);
}

/* Writes `label`, `x` in decimal and a newline. */
static inline void say_int(const char *label, int x) {
  char buf[64];
  int n = 0;
  for (int i = 0; label[i]; i++) buf[n++] = label[i];
  char digits[12];
  int d = 0;
  unsigned v = x < 0 ? -(unsigned)x : (unsigned)x;
  do { digits[d++] = (char)('0' + v % 10); v /= 10; } while (v);
  if (x < 0) buf[n++] = '-';
  while (d) buf[n++] = digits[--d];
  buf[n++] = '\n';
  buf[n] = 0;
  say(buf);
}

#endif
