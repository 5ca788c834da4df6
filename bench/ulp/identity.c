/* The same body as lib_value: measures only the cost of the redirect. */
#include <nines/patch.h>
int lib_value_same(void) {
  volatile int one = 1;
  return one;
}
NINES_REPLACE(lib_value, lib_value_same);
