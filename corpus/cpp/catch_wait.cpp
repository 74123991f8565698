// (b) `catch` clauses whose bodies call the async import: handling the
// exception there, rethrowing it with `throw;` after the wait, throwing a new
// exception from the handler, and a try/catch nested inside a handler.
#include "common.h"

DEFINE_TRACE

// A small polymorphic hierarchy, caught by base reference.
struct Problem {
  int k;
  explicit Problem(int k_) : k(k_) { trace(EV_CTOR + 500 + k % 100); }
  Problem(const Problem& o) : k(o.k) { trace(EV_CTOR + 600 + k % 100); }
  virtual ~Problem() { trace(EV_DTOR + 500 + k % 100); }
  virtual int code() const = 0;
};
struct NotFound : Problem {
  explicit NotFound(int k_) : Problem(k_) {}
  int code() const override { return 404 + k; }
};
struct Timeout : Problem {
  explicit Timeout(int k_) : Problem(k_) {}
  int code() const override { return 408 + 2 * k; }
};

// Throws by x % 4: 0 nothing, 1 NotFound, 2 Timeout, 3 an int.
__attribute__((noinline)) int may_throw(int x) {
  Guard g(1);
  int v = host_wait(x);
  switch (x % 4) {
    case 1: throw NotFound(small(v) % 50);
    case 2: throw Timeout(small(v) % 50);
    case 3: throw 7 + x;
  }
  return v;
}

// The handler waits, then returns.
EXPORT(handle) int handle(int x) {
  try {
    return may_throw(x);
  } catch (const Problem& e) {
    int r = host_wait(e.code());
    trace(EV_CATCH + 1);
    return -r;
  } catch (int n) {
    int r = host_wait(n);
    trace(EV_CATCH + 2);
    return -1000 - r;
  }
}

// The handler waits, changes the exception object and rethrows it with
// `throw;`: the caller must see the same object with the change.
__attribute__((noinline)) int middle(int x) {
  Guard g(2);
  try {
    return may_throw(x);
  } catch (Problem& e) {
    trace(EV_CATCH + 3);
    host_log(e.code());
    e.k += small(host_wait(e.code())) % 10;
    throw;
  }
}

EXPORT(rethrow_outer) int rethrow_outer(int x) {
  try {
    return middle(x);
  } catch (const NotFound& e) {
    trace(EV_CATCH + 4);
    return -host_wait(e.k);
  } catch (const Problem& e) {
    trace(EV_CATCH + 5);
    return -2000 - e.code();
  } catch (...) {
    trace(EV_CATCH + 6);
    return -3000 - host_wait(x);
  }
}

// A handler that waits and then throws a different exception.
__attribute__((noinline)) int translate(int x) {
  try {
    return may_throw(x);
  } catch (int n) {
    int v = host_wait(n);
    trace(EV_CATCH + 7);
    throw Timeout(small(v) % 50);
  }
}

EXPORT(translated) int translated(int x) {
  try {
    return translate(x);
  } catch (const Problem& e) {
    trace(EV_CATCH + 8);
    return -e.code();
  }
}

// A try/catch inside a handler: the inner exception is thrown and caught
// while the outer one is being handled; both handlers wait.
EXPORT(nested_in_handler) int nested_in_handler(int x, int y) {
  try {
    return may_throw(x);
  } catch (const Problem& outer) {
    int total = host_wait(outer.code());
    try {
      total += may_throw(y);
    } catch (const Problem& inner) {
      total += host_wait(inner.code() + outer.code());
      trace(EV_CATCH + 9);
    } catch (int n) {
      total += host_wait(n);
      trace(EV_CATCH + 10);
    }
    trace(EV_CATCH + 11);
    return -total;
  } catch (int n) {
    trace(EV_CATCH + 12);
    return -n;
  }
}
