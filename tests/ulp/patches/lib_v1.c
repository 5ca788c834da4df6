/* v1: lib_value returns 2, lib_other returns 200. */
#include <nines/patch.h>
int lib_value_v1(void) { return 2; }
int lib_other_v1(void) { return 200; }
NINES_REPLACE(lib_value, lib_value_v1);
NINES_REPLACE(lib_other, lib_other_v1);
