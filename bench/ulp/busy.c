/* Benchmark target: N busy threads spinning on arithmetic (never in the patched
 * function), linked with libulptarget.so whose lib_value the benchmark patches. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int lib_value(void);
static void* spin(void* a) {
  volatile unsigned long x = 0;
  (void)a;
  for (;;) x++;
  return 0;
}
int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1;
  for (int i = 0; i < n; i++) {
    pthread_t t;
    pthread_create(&t, 0, spin, 0);
  }
  printf("ready %d\n", lib_value());
  fflush(stdout);
  pause();
  return 0;
}
