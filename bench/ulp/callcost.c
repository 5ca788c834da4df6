/* Benchmark target: measures the cost of calling lib_value() through its PLT, in ns per
 * call, each time a line arrives on stdin ("measure"), so the same process is measured
 * before and after the patch. */
#include <stdio.h>
#include <string.h>
#include <time.h>
int lib_value(void);
static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}
int main(void) {
  char line[64];
  setvbuf(stdout, 0, _IOLBF, 0);
  printf("ready\n");
  while (fgets(line, sizeof line, stdin)) {
    const long n = 50000000;
    double best = 1e30;
    for (int round = 0; round < 5; round++) {
      volatile long sink = 0;
      double t0 = now_ns();
      for (long i = 0; i < n; i++) sink += lib_value();
      double per = (now_ns() - t0) / n;
      if (per < best) best = per;
    }
    printf("%.3f\n", best);
  }
  return 0;
}
