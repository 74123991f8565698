// (d) Suspensions inside destructors that run while an exception unwinds:
// with -fwasm-exceptions such a destructor call sits in a landing pad, a
// legacy `catch_all` handler that ends in `rethrow`. Also a scope guard that
// asks std::uncaught_exceptions() whether it is being unwound, a destructor
// with its own try/catch, and an exception that escapes to the host through
// waiting destructors.
#include <exception>

#include "common.h"

DEFINE_TRACE

__attribute__((noinline)) void leaf(int x) {
  Waiter w(10 + x % 10);
  if (x % 3 == 0) throw x;
  trace(EV_VALUE + small(host_wait(x + 1)));
}

__attribute__((noinline)) int mid(int x) {
  Waiter a(30);
  Waiter b(40);
  leaf(x);
  return host_wait(x);
}

// x % 3 == 0 throws from leaf: the Waiters of leaf, mid and run are
// destroyed (each waiting) on the way to the handler.
EXPORT(run) int run(int x) {
  try {
    Waiter top(50);
    return mid(x);
  } catch (int e) {
    trace(EV_CATCH + 1);
    return -e - host_wait(e);
  }
}

// Commits or rolls back when it goes out of scope, waiting either way.
struct ScopeGuard {
  int id;
  int uncaught;
  explicit ScopeGuard(int i) : id(i), uncaught(std::uncaught_exceptions()) {
    trace(EV_CTOR + id);
  }
  ~ScopeGuard() {
    bool unwinding = std::uncaught_exceptions() > uncaught;
    int v = host_wait(unwinding ? 7000 + id : 8000 + id);
    trace((unwinding ? EV_CATCH : EV_DTOR) + id);
    host_log(unwinding ? -v : v);
  }
};

__attribute__((noinline)) int transaction(int steps, int fail_at) {
  ScopeGuard tx(60);
  int acc = 0;
  for (int i = 0; i < steps; i++) {
    ScopeGuard step(70 + i);
    acc += host_wait(i);
    if (i == fail_at) throw acc;
  }
  return acc;
}

EXPORT(transact) int transact(int steps, int fail_at) {
  try {
    return transaction(steps, fail_at);
  } catch (int acc) {
    trace(EV_CATCH + 2);
    return -small(acc);
  }
}

// A destructor that throws and catches inside itself (legal while another
// exception is in flight, as long as nothing leaves the destructor), with
// waits in its handler.
struct Careful {
  int id;
  explicit Careful(int i) : id(i) { trace(EV_CTOR + id); }
  ~Careful() {
    try {
      int v = host_wait(id);
      if (v % 2 == 0 || id % 2 == 0) throw v;
      trace(EV_VALUE + small(v));
    } catch (int v) {
      trace(EV_CATCH + id);
      trace(EV_VALUE + small(host_wait(v)));
    }
    trace(EV_DTOR + id);
  }
};

__attribute__((noinline)) int careful_leaf(int x) {
  Careful c1(80 + x % 2);
  Waiter w(90);
  Careful c2(82 + x % 2);
  if (x > 5) throw x * 2;
  return host_wait(x);
}

EXPORT(careful) int careful(int x) {
  try {
    Careful top(84);
    return careful_leaf(x);
  } catch (int e) {
    trace(EV_CATCH + 3);
    return -e;
  }
}

// No handler in the module: the exception leaves the export (the host sees
// a WebAssembly.Exception) after the Waiters have run their waits.
__attribute__((noinline)) int escape_leaf(int x) {
  Waiter w(95);
  int v = host_wait(x);
  if (x > 0) throw v;
  return v;
}

EXPORT(escape) int escape(int x) {
  Waiter a(96);
  return escape_leaf(x) + 1;
}
