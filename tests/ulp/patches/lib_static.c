/* Calls a static function of the target and reads a static variable:
 * lib_scaled returns scaled(3) + secret_base = 3*40 + 40 = 160. */
#include <nines/patch.h>
NINES_TARGET_FUNCTION(int, scaled, (int));
NINES_TARGET_VARIABLE(volatile int, secret_base);
int lib_scaled_fixed(void) { return scaled(3) + secret_base; }
NINES_REPLACE(lib_scaled, lib_scaled_fixed);
