/* The library `asyncify run` loads: prints through WASI (each line a
 * suspension with --async-wasi), calls the main module back by name, and
 * keeps a shadow-stack frame live across every call. */
#include "wasi.h"

extern int main_square(int x); /* defined by the main module (env.main_square) */

static int greetings = 0;

__attribute__((constructor)) static void greet_init(void) {
  say("libgreet: constructor\n");
}

int greet(int x) {
  volatile int frame[3];
  frame[0] = x;
  greetings++;
  say_int("libgreet: greet ", frame[0]);
  frame[1] = main_square(frame[0]);
  say_int("libgreet: main_square -> ", frame[1]);
  frame[2] = frame[1] + greetings;
  return frame[2];
}
