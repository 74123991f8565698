// Scenario 6 (cpp), a C++ side module without libc or libc++: classes with
// virtual functions (vtables in the library's data, relocated through
// __memory_base and the GOT), a global object built by a constructor at load
// time, a template, and virtual calls that wait on slow_double. No virtual
// destructor: a global with a non-trivial destructor would need __cxa_atexit
// from a C++ runtime.
extern "C" {
#include "dl.h"
}

namespace {

class Shape {
 public:
  virtual int area() const = 0;
  virtual const char *name() const = 0;
};

class Square final : public Shape {
 public:
  explicit Square(int side) : side_(side) {}
  int area() const override { return side_ * side_; }
  const char *name() const override { return "square"; }

 private:
  int side_;
};

class Doubled final : public Shape {
 public:
  explicit Doubled(const Shape &inner) : inner_(inner) {}
  int area() const override { return slow_double(inner_.area()); }
  const char *name() const override { return "doubled"; }

 private:
  const Shape &inner_;
};

template <typename T, int N>
struct Registry {
  const T *items[N] = {};
  int count = 0;
  void add(const T &item) {
    if (count < N) items[count++] = &item;
  }
};

Square small(3);
Square large(5);
Doubled doubled_large(large);

struct Setup {
  Registry<Shape, 4> shapes;
  Setup() {
    shapes.add(small);
    shapes.add(doubled_large);
    shapes.add(large);
    say("cpp: global constructor\n");
  }
};

Setup setup;

}  // namespace

// The vtable of Shape points its pure virtual slots here; nothing calls it.
extern "C" void __cxa_pure_virtual() { __builtin_trap(); }

extern "C" int shapes_total(int extra) {
  int total = extra;
  for (int i = 0; i < setup.shapes.count; i++) {
    const Shape *shape = setup.shapes.items[i];
    int area = shape->area();
    say(shape->name());
    say_i32(" area ", area);
    total += area;
  }
  return total;
}
