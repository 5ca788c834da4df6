// libFuzzer target: the agent's config.toml (src/agent/config.cc: toml++ compiled in,
// instrumented) and the duration syntax of its keys. A policy that is accepted must give
// each key a text form that sets the same key to the same value again.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/config.h"

using namespace nines::agent;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (size <= 64) {
    if (auto d = parse_duration(std::string(text))) {
      auto again = parse_duration(format_duration(*d));
      if (!again || *again != *d) __builtin_trap();
    }
  }
  auto p = parse_policy(text, "config.toml");
  if (!p) return 0;
  Policy q;
  for (const auto& key : policy_keys()) {
    std::string value = policy_value(*p, key);
    if (!set_policy_key(q, key, value)) __builtin_trap();
    if (policy_value(q, key) != value) __builtin_trap();
  }
  return 0;
}
