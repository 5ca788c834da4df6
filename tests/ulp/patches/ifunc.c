/* Names an IFUNC resolver (strlen): nines build must refuse it. */
#include <nines/patch.h>
#include <stddef.h>
size_t strlen_fixed(const char* s) { size_t n = 0; while (s[n]) n++; return n; }
NINES_REPLACE(strlen, strlen_fixed);
