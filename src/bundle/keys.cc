// ed25519 keys (libsodium), their text files, fingerprints and the trust store.
#include <dirent.h>
#include <sodium.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "bundle/bundle.h"
#include "core/fd.h"
#include "core/log.h"
#include "core/strings.h"

namespace nines::bundle {
namespace {

constexpr std::string_view kPublicTag = "nines-ed25519-public";
constexpr std::string_view kSecretTag = "nines-ed25519-secret";
constexpr size_t kMaxKeyFileBytes = 4096;

// sodium_init is idempotent and thread-safe; it must run before randombytes.
void ensure_sodium() {
  static const int rc = sodium_init();
  (void)rc;
}

// "TAG <hex>[ comment]" on the first line; returns the decoded bytes.
Result<std::vector<uint8_t>> parse_key_line(std::string_view text, std::string_view tag,
                                            size_t nbytes, std::string_view what) {
  if (text.size() > kMaxKeyFileBytes)
    return make_error("{}: larger than {} bytes", what, kMaxKeyFileBytes);
  std::string_view line = text.substr(0, text.find('\n'));
  line = trim(line);
  if (!starts_with(line, tag) || line.size() <= tag.size() || line[tag.size()] != ' ')
    return make_error("{}: does not start with '{} '", what, tag);
  std::string_view rest = line.substr(tag.size() + 1);
  std::string_view hex = rest.substr(0, rest.find(' '));
  if (hex.size() != nbytes * 2)
    return make_error("{}: key is {} hex digits, expected {}", what, hex.size(), nbytes * 2);
  auto bytes = from_hex(hex);
  if (!bytes) return make_error("{}: key is not hex", what);
  return std::move(*bytes);
}

}  // namespace

PublicKey SecretKey::public_key() const {
  PublicKey p;
  crypto_sign_ed25519_sk_to_pk(p.bytes.data(), bytes.data());
  return p;
}

KeyPair generate_keypair() {
  ensure_sodium();
  KeyPair kp;
  crypto_sign_keypair(kp.public_key.bytes.data(), kp.secret_key.bytes.data());
  return kp;
}

std::string fingerprint(const PublicKey& key) {
  std::array<uint8_t, crypto_hash_sha256_BYTES> h{};
  crypto_hash_sha256(h.data(), key.bytes.data(), key.bytes.size());
  return to_hex(std::span<const uint8_t>(h.data(), 16));
}

std::string format_public_key(const PublicKey& key, std::string_view comment) {
  std::string out = fmt::format("{} {}", kPublicTag, to_hex(key.bytes));
  if (!comment.empty()) out += fmt::format(" {}", comment);
  return out + "\n";
}

std::string format_secret_key(const SecretKey& key) {
  return fmt::format("{} {}\n", kSecretTag, to_hex(key.bytes));
}

Result<PublicKey> parse_public_key(std::string_view text) {
  auto bytes = NINES_TRY(parse_key_line(text, kPublicTag, 32, "public key"));
  PublicKey k;
  std::copy(bytes.begin(), bytes.end(), k.bytes.begin());
  return k;
}

Result<SecretKey> parse_secret_key(std::string_view text) {
  auto bytes = NINES_TRY(parse_key_line(text, kSecretTag, 64, "secret key"));
  SecretKey k;
  std::copy(bytes.begin(), bytes.end(), k.bytes.begin());
  sodium_memzero(bytes.data(), bytes.size());
  // The second half must be the public key of the seed, or signatures come out wrong.
  ensure_sodium();
  std::array<uint8_t, 32> pk{};
  std::array<uint8_t, 64> sk2{};
  crypto_sign_seed_keypair(pk.data(), sk2.data(), k.bytes.data());
  bool match = sodium_memcmp(sk2.data(), k.bytes.data(), 64) == 0;
  sodium_memzero(sk2.data(), sk2.size());
  if (!match) return make_error("secret key: public half does not match its seed");
  return k;
}

Result<PublicKey> read_public_key_file(const std::string& path) {
  auto text = NINES_TRY(read_file(path, kMaxKeyFileBytes));
  auto k = parse_public_key(text);
  if (!k) return k.error().wrap(fmt::format("read {}", path));
  return k;
}

Result<SecretKey> read_secret_key_file(const std::string& path) {
  auto text = NINES_TRY(read_file(path, kMaxKeyFileBytes));
  auto k = parse_secret_key(text);
  sodium_memzero(text.data(), text.size());
  if (!k) return k.error().wrap(fmt::format("read {}", path));
  return k;
}

Result<std::vector<TrustedKey>> load_trust_store(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return errno_error(fmt::format("trust store {}", dir));
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 4 && n.compare(n.size() - 4, 4, ".pub") == 0) names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  std::vector<TrustedKey> out;
  for (const std::string& n : names) {
    std::string path = dir + "/" + n;
    struct stat st {};
    if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    auto k = read_public_key_file(path);
    if (!k) {
      spdlog::warn("trust store: skipping {}: {}", path, k.error().message);
      continue;
    }
    out.push_back(TrustedKey{*k, path});
  }
  return out;
}

}  // namespace nines::bundle
