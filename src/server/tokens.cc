#include "server/tokens.h"

#include <sodium.h>

#include <array>
#include <cstdlib>

#include "core/strings.h"

namespace nines::server {
namespace {
void ensure_sodium() {
  // sodium_init is idempotent and thread-safe; it fails only without an entropy source,
  // and then no token may be made at all.
  if (sodium_init() < 0) std::abort();
}
}  // namespace

std::string generate_token(std::string_view kind) {
  ensure_sodium();
  std::array<uint8_t, 32> raw{};
  randombytes_buf(raw.data(), raw.size());
  char k = kind == "admin" ? 'a' : kind == "enroll" ? 'e' : kind == "mirror" ? 'r' : 'm';
  return std::string("n9") + k + "_" + to_hex(raw);
}

std::string hash_token(std::string_view token) {
  ensure_sodium();
  std::array<uint8_t, crypto_hash_sha256_BYTES> h{};
  crypto_hash_sha256(h.data(), reinterpret_cast<const unsigned char*>(token.data()), token.size());
  return to_hex(h);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  ensure_sodium();
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool token_well_formed(std::string_view token) {
  if (token.size() != 4 + 64 || token[0] != 'n' || token[1] != '9' || token[3] != '_') return false;
  if (token[2] != 'a' && token[2] != 'e' && token[2] != 'm' && token[2] != 'r') return false;
  for (char c : token.substr(4))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace nines::server
