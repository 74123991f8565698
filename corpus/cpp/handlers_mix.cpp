// Other realistic shapes: catch(...) that waits and rethrows, nested try
// blocks in a loop, exceptions crossing calls through function pointers and
// virtual functions, and std::exception_ptr carried past a wait.
#include <exception>

#include "common.h"

DEFINE_TRACE

struct Oops {
  int x;
};

typedef int (*Op)(int);

__attribute__((noinline)) int op_plain(int x) {
  Guard g(1);
  return host_wait(x) + 1;
}
__attribute__((noinline)) int op_throw_int(int x) {
  Waiter w(2);
  int v = host_wait(x);
  if (x % 2) throw v;
  return v;
}
__attribute__((noinline)) int op_throw_obj(int x) {
  Guard g(3);
  int v = host_wait(x);
  if (x % 5 != 0) throw Oops{small(v)};
  return -v;
}

// Exported through a table: the call is an indirect call.
static Op volatile g_ops[3] = {op_plain, op_throw_int, op_throw_obj};

EXPORT(dispatch) int dispatch(int which, int x) {
  try {
    Waiter w(4);
    try {
      return g_ops[which % 3](x);
    } catch (...) {
      trace(EV_CATCH + 1);
      host_log(which);
      host_wait(which);
      throw;
    }
  } catch (int v) {
    trace(EV_CATCH + 2);
    return -small(v);
  } catch (const Oops& o) {
    trace(EV_CATCH + 3);
    return -1000 - o.x;
  }
}

// A loop whose body has nested try blocks: the inner one handles ints, the
// outer one handles Oops and counts; both handlers wait.
EXPORT(loop) int loop(int n) {
  int total = 0;
  int oops = 0;
  for (int i = 0; i < n; i++) {
    try {
      Guard g(10 + i % 10);
      try {
        total += g_ops[i % 3](i);
      } catch (int v) {
        trace(EV_CATCH + 4);
        total -= host_wait(small(v)) % 100;
      }
    } catch (const Oops& o) {
      oops++;
      trace(EV_CATCH + 5);
      total += host_wait(o.x) % 10;
    }
  }
  return total * 100 + oops;
}

// Virtual calls that throw.
struct Stage {
  virtual ~Stage() {}
  virtual int apply(int x) = 0;
};
struct Doubler : Stage {
  int apply(int x) override {
    Waiter w(20);
    return 2 * host_wait(x);
  }
};
struct Picky : Stage {
  int limit;
  explicit Picky(int l) : limit(l) {}
  int apply(int x) override {
    Guard g(21);
    if (x > limit) throw Oops{x};
    return x + host_wait(limit);
  }
};

__attribute__((noinline)) int pipeline(Stage** stages, int n, int x) {
  for (int i = 0; i < n; i++) {
    Guard g(30 + i);
    x = stages[i]->apply(small(x));
  }
  return x;
}

EXPORT(stages) int stages(int x, int limit) {
  Doubler d1, d2;
  Picky p(limit);
  Stage* list[4] = {&d1, &p, &d2, &p};
  try {
    return pipeline(list, 4, x);
  } catch (const Oops& o) {
    trace(EV_CATCH + 6);
    return -o.x;
  }
}

// The exception is captured in one handler, kept across waits, and
// rethrown later into a second handler.
EXPORT(deferred) int deferred(int x) {
  std::exception_ptr saved;
  try {
    op_throw_obj(x);
  } catch (...) {
    trace(EV_CATCH + 7);
    saved = std::current_exception();
    host_wait(x + 1);
  }
  int v = host_wait(x + 2);
  if (!saved) return v;
  try {
    Waiter w(40);
    std::rethrow_exception(saved);
  } catch (const Oops& o) {
    trace(EV_CATCH + 8);
    return -o.x - host_wait(o.x);
  }
}
