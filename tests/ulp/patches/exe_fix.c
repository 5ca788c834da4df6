/* exe_value (in the main executable) returns 11. */
#include <nines/patch.h>
int exe_value_fixed(void) { return 11; }
NINES_REPLACE(exe_value, exe_value_fixed);
