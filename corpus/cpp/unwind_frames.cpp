// (a) Exceptions thrown through several frames whose locals have
// destructors, with the async import called in each of those frames before
// the throw (and after the callee returns, when nothing is thrown).
#include "common.h"

DEFINE_TRACE

struct Failure {
  int code;
  int depth;
};

// One frame of a recursion: two guards, a wait, and either a throw at
// `throw_at`, the bottom of the recursion, or a call one level down.
__attribute__((noinline)) int frame(int depth, int throw_at, int acc) {
  Guard g(depth);
  int v = host_wait(depth * 10 + acc % 7);
  trace(EV_VALUE + small(v));
  if (depth == throw_at) throw Failure{small(v + acc), depth};
  if (depth == 0) return acc + v;
  Guard g2(100 + depth);
  int r = frame(depth - 1, throw_at, acc + v);
  int w = host_wait(small(r));
  return r + w;
}

// throw_at < 0 or > depth: no exception.
EXPORT(run) int run(int depth, int throw_at) {
  try {
    Guard outer(900);
    return frame(depth, throw_at, 1);
  } catch (const Failure& f) {
    trace(EV_CATCH + f.depth);
    host_log(f.code);
    return -(f.code + 1);
  }
}

// A member sub-object and a base sub-object that are already built when the
// constructor body throws: both are destroyed by the landing pads of the
// constructor.
struct Part : Guard {
  Guard inner;
  Part(int id, int fail) : Guard(id), inner(id + 1) {
    int v = host_wait(id);
    trace(EV_VALUE + small(v));
    if (fail) throw Failure{small(v), id};
  }
};

struct Whole {
  Part first;
  Part second;
  Whole(int fail_first, int fail_second) : first(10, fail_first), second(20, fail_second) {
    trace(EV_CTOR + 30);
  }
  ~Whole() { trace(EV_DTOR + 30); }
};

EXPORT(build) int build(int fail_first, int fail_second) {
  try {
    Whole w(fail_first, fail_second);
    return host_wait(w.first.id + w.second.id);
  } catch (const Failure& f) {
    trace(EV_CATCH + f.depth);
    return -(f.code + 1);
  }
}

// An array whose constructor fails at element `fail_at`: the elements built
// so far are destroyed in reverse order.
struct Cell {
  int id;
  static int next;
  static int fail_at;
  Cell() : id(next++) {
    int v = host_wait(id);
    if (id == fail_at) throw Failure{small(v), id};
    trace(EV_CTOR + 200 + id);
  }
  ~Cell() { trace(EV_DTOR + 200 + id); }
};
int Cell::next;
int Cell::fail_at;

EXPORT(cells) int cells(int fail_at) {
  Cell::next = 0;
  Cell::fail_at = fail_at;
  try {
    Cell row[6];
    int sum = 0;
    for (const Cell& c : row) sum += c.id;
    return sum;
  } catch (const Failure& f) {
    trace(EV_CATCH + f.depth);
    return -(f.code + 1);
  }
}
