/* The live patch of the advisor's "patched in memory" test. */
#include <nines/patch.h>
int advisor_testlib_sum_fixed(int n) { return n; }
NINES_REPLACE(advisor_testlib_sum, advisor_testlib_sum_fixed);
