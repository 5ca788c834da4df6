// A small shared library for the advisor's tests to map, replace, delete and live-patch.
int advisor_testlib_value(void) { return 42; }

// Long enough for a 5-byte jump: the target of the "patched in memory" test.
int advisor_testlib_sum(int n) {
  int s = 0;
  for (int i = 0; i < n; ++i) s += i * 3 + (s >> 2);
  return s;
}
