// Test target for the advisor: dlopens every library named on the command line (keeping
// them mapped), prints "ready" and waits until its stdin closes, so it never outlives the
// test that started it. alarm() is a second safety net.
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char** argv) {
  alarm(300);
  for (int i = 1; i < argc; ++i) {
    if (!dlopen(argv[i], RTLD_NOW | RTLD_LOCAL)) {
      fprintf(stderr, "holder: dlopen %s: %s\n", argv[i], dlerror());
      return 1;
    }
  }
  printf("ready\n");
  fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  return 0;
}
