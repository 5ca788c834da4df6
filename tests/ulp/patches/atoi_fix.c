/* glibc's atoi, replaced in a running process: adds 1000. Calls strtol, resolved in the
 * process's libc at apply time. */
#include <nines/patch.h>
#include <stdlib.h>
int atoi_fixed(const char* s) { return (int)strtol(s, 0, 10) + 1000; }
NINES_REPLACE(atoi, atoi_fixed);
