// (c) RAII objects alive across suspensions: constructors and destructors
// recorded around waits, with and without an exception, including objects
// that own heap memory (std::vector, std::unique_ptr) and a lock-like
// counter whose balance is checked.
#include <memory>
#include <vector>

#include "common.h"

DEFINE_TRACE

static int g_held;  // how many Locks are alive

struct Lock {
  int id;
  explicit Lock(int i) : id(i) {
    g_held++;
    trace(EV_CTOR + 300 + id);
  }
  ~Lock() {
    host_log(id);
    g_held--;
    trace(EV_DTOR + 300 + id);
  }
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;
};

struct Record {
  int id;
  int value;
  Record(int i, int v) : id(i), value(v) { trace(EV_CTOR + 400 + id % 100); }
  ~Record() { trace(EV_DTOR + 400 + id % 100); }
};

struct Stop {
  int at;
};

// Fills a vector of records with waits in between; throws at `fail_at`.
__attribute__((noinline)) int collect(int n, int fail_at) {
  Lock lock(1);
  std::vector<std::unique_ptr<Record>> items;
  std::unique_ptr<Record> head(new Record(99, host_wait(n)));
  for (int i = 0; i < n; i++) {
    Guard step(10 + i);
    int v = host_wait(i + head->value % 13);
    if (i == fail_at) throw Stop{i};
    items.push_back(std::unique_ptr<Record>(new Record(i, v)));
  }
  int sum = head->value;
  for (const auto& r : items) sum += r->value * (r->id + 1);
  return sum;
}

// Returns the sum, or a negative code if collect threw; the lock count
// after the call goes into the trace (it must be 0).
EXPORT(run) int run(int n, int fail_at) {
  int r;
  try {
    Lock outer(0);
    r = collect(n, fail_at);
    r += host_wait(small(r));
  } catch (const Stop& s) {
    trace(EV_CATCH + s.at);
    r = -1 - host_wait(s.at);
  }
  trace(EV_VALUE + g_held);
  return r;
}

// Objects built and destroyed in a loop, each alive across a wait.
EXPORT(scopes) int scopes(int n) {
  int total = 0;
  for (int i = 0; i < n; i++) {
    Lock l(20 + i % 5);
    Record rec(i, host_wait(i));
    {
      Guard g(50 + i);
      total += rec.value + host_wait(rec.value % 17);
    }
    total ^= host_wait(total % 31);
  }
  trace(EV_VALUE + g_held);
  return total;
}

// A vector that reallocates while its elements (holding locks) are alive:
// moved-from and moved-to objects each record their lifetime.
struct Holder {
  std::unique_ptr<Lock> lock;
  int v;
  Holder(int id, int v_) : lock(new Lock(id)), v(v_) {}
};

EXPORT(grow) int grow(int n, int fail_at) {
  int sum = 0;
  try {
    std::vector<Holder> hs;
    for (int i = 0; i < n; i++) {
      int v = host_wait(i * 3);
      if (i == fail_at) throw Stop{i};
      hs.emplace_back(40 + i, v);
    }
    for (const Holder& h : hs) sum += h.v;
  } catch (const Stop& s) {
    trace(EV_CATCH + s.at);
    sum = -host_wait(s.at + 100);
  }
  trace(EV_VALUE + g_held);
  return sum;
}
