// Shared by the programs in corpus/cpp: the two host imports, the export
// macro and the trace the programs record into (constructors, destructors,
// handlers), which the driver (scripts/js-interop/cpp.mjs) reads from memory
// after every export call.
#ifndef ASYNCIFY_CPP_COMMON_H
#define ASYNCIFY_CPP_COMMON_H

// The import that the host answers asynchronously: under the instrumented
// module every call of it suspends. The host's answer depends on the argument
// and on how many import calls came before.
extern "C" __attribute__((import_module("env"), import_name("wait"))) int host_wait(int);
// Reports a value to the host (which records it). It may suspend too.
extern "C" __attribute__((import_module("env"), import_name("log"))) void host_log(int);

#define EXPORT(name) extern "C" __attribute__((used, export_name(#name)))

// The trace: a length and up to TRACE_CAP entries. Entries past the capacity
// only count (the driver reports an overflowing trace as a bad test case).
#define TRACE_CAP 1024
struct Trace {
  int len;
  int items[TRACE_CAP];
};
extern Trace g_trace;

static inline void trace(int v) {
  if (g_trace.len < TRACE_CAP) g_trace.items[g_trace.len] = v;
  g_trace.len++;
}

// Defines g_trace and the export the driver uses to find it. Each program
// uses this once.
#define DEFINE_TRACE                                      \
  Trace g_trace;                                          \
  EXPORT(trace_ptr) Trace* trace_ptr() { return &g_trace; }

// Event codes put in the trace: kind * 1000 + id, so that a trace reads as
// e.g. 1003 (constructed #3), 2003 (destroyed #3), 3007 (handler 7 entered).
enum {
  EV_CTOR = 1000,
  EV_DTOR = 2000,
  EV_CATCH = 3000,
  EV_VALUE = 4000,   // a value seen (kept small by the programs: mod 1000)
  EV_RETURN = 5000,
};

static inline int small(int v) { return ((v % 1000) + 1000) % 1000; }

// A scope object that only records its lifetime.
struct Guard {
  int id;
  explicit Guard(int i) : id(i) { trace(EV_CTOR + id); }
  ~Guard() { trace(EV_DTOR + id); }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
};

// A scope object whose destructor calls the async import: when it is
// destroyed by an exception, the suspension happens inside the landing pad
// (a legacy `catch_all` handler that ends in `rethrow`).
struct Waiter {
  int id;
  explicit Waiter(int i) : id(i) { trace(EV_CTOR + id); }
  ~Waiter() {
    int v = host_wait(id);
    trace(EV_DTOR + id);
    trace(EV_VALUE + small(v));
  }
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;
};

#endif
