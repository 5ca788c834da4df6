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

namespace {
struct KindInfo {
  TokenKind kind;
  std::string_view name;
  char letter;  // in the token's prefix: n9<letter>_
};
constexpr KindInfo kKinds[] = {{TokenKind::kAdmin, "admin", 'a'},
                               {TokenKind::kEnroll, "enroll", 'e'},
                               {TokenKind::kMachine, "machine", 'm'},
                               {TokenKind::kMirror, "mirror", 'r'}};
const KindInfo& info(TokenKind kind) {
  for (const KindInfo& k : kKinds)
    if (k.kind == kind) return k;
  std::abort();  // every enumerator is in the table
}
}  // namespace

std::string_view to_string(TokenKind kind) { return info(kind).name; }

std::optional<TokenKind> parse_token_kind(std::string_view text) {
  for (const KindInfo& k : kKinds)
    if (k.name == text) return k.kind;
  return std::nullopt;
}

int64_t default_token_lifetime_s(TokenKind kind) {
  return kind == TokenKind::kEnroll ? 30 * 86400 : 0;
}

std::string generate_token(TokenKind kind) {
  ensure_sodium();
  std::array<uint8_t, 32> raw{};
  randombytes_buf(raw.data(), raw.size());
  return std::string("n9") + info(kind).letter + "_" + to_hex(raw);
}

std::string token_id(std::string_view hash_hex) { return std::string(hash_hex.substr(0, 16)); }

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
