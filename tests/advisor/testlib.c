// A small shared library for the advisor's tests to map, replace and delete.
int advisor_testlib_value(void) { return 42; }
