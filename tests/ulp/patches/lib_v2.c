/* v2 (cumulative): lib_value returns 3; lib_other is no longer replaced. */
#include <nines/patch.h>
int lib_value_v2(void) { return 3; }
NINES_REPLACE(lib_value, lib_value_v2);
