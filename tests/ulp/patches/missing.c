/* Names a function the target does not have. */
#include <nines/patch.h>
int no_such_fixed(void) { return 0; }
NINES_REPLACE(no_such_function, no_such_fixed);
