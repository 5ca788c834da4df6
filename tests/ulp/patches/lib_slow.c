/* lib_slow returns 8 instead of 7, without sleeping. */
#include <nines/patch.h>
int lib_slow_fixed(int ms) { (void)ms; return 8; }
NINES_REPLACE(lib_slow, lib_slow_fixed);
