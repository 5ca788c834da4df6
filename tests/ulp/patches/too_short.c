/* lib_empty is a lone `ret`: too short for a redirect. */
#include <nines/patch.h>
void lib_empty_fixed(void) {}
NINES_REPLACE(lib_empty, lib_empty_fixed);
