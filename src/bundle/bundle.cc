// The bundle container: magic, format version, a counted table of length-prefixed sections
// (docs/BUNDLE-FORMAT.md). Every length is checked against the limit of its section and
// against the bytes that remain before it is used; nothing is allocated from a length that
// has not passed both checks.
#include "bundle/bundle.h"

#include <sodium.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <cstring>

#include "bundle/patch_meta.h"
#include "core/fd.h"
#include "core/strings.h"

namespace nines::bundle {
namespace {

constexpr char kMagic[8] = {'N', 'I', 'N', 'E', 'S', 'B', 'D', 'L'};
constexpr size_t kHeaderBytes = 16;        // magic, u32 version, u32 section count
constexpr size_t kSectionHeaderBytes = 8;  // u32 type, u32 length
constexpr uint32_t kMaxSections = 8;
// Domain separation: a signature over a bundle can never be mistaken for one over
// anything else signed with the same key.
constexpr char kSigContext[16] = {'n', 'i', 'n', 'e', 's', '-', 'b', 'u',
                                  'n', 'd', 'l', 'e', '-', 'v', '1', '\0'};

enum SectionType : uint32_t {
  kManifest = 1,
  kPayloadSha256 = 2,
  kPayload = 3,
  kSignature = 4,
};

const char* section_name(uint32_t t) {
  switch (t) {
    case kManifest:
      return "manifest";
    case kPayloadSha256:
      return "payload-sha256";
    case kPayload:
      return "payload";
    case kSignature:
      return "signature";
  }
  return "unknown";
}

size_t section_limit(uint32_t t) {
  switch (t) {
    case kManifest:
      return kMaxManifestBytes;
    case kPayloadSha256:
      return 32;
    case kPayload:
      return kMaxPayloadBytes;
    case kSignature:
      return 96;
  }
  return 0;
}

uint32_t get_u32(const char* p) {
  uint8_t b[4];
  std::memcpy(b, p, 4);
  return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
}

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::array<uint8_t, 32> sha256(std::string_view data) {
  std::array<uint8_t, 32> h{};
  crypto_hash_sha256(h.data(), reinterpret_cast<const unsigned char*>(data.data()), data.size());
  return h;
}

// The bytes the signature covers: context || u64 LE manifest length || manifest || digest.
std::string signed_message(std::string_view manifest, std::span<const uint8_t> digest) {
  std::string msg(kSigContext, sizeof kSigContext);
  put_u64(msg, manifest.size());
  msg.append(manifest);
  msg.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  return msg;
}

void put_section(std::string& out, uint32_t type, std::string_view data) {
  put_u32(out, type);
  put_u32(out, static_cast<uint32_t>(data.size()));
  out.append(data);
}

Result<std::string> build(const Manifest& m, std::string_view payload, const SecretKey* key) {
  NINES_CHECK(validate_manifest(m));
  if (payload.size() > kMaxPayloadBytes)
    return make_error("create bundle {}: payload is {} bytes, limit {}", m.id, payload.size(),
                      kMaxPayloadBytes);
  if (payload.empty()) return make_error("create bundle {}: payload is empty", m.id);
  if (auto agrees = check_payload_matches(m, payload); !agrees)
    return agrees.error().wrap(fmt::format("create bundle {}", m.id));
  std::string manifest = manifest_to_toml(m);
  // What we write must read back: the stored manifest goes through the same parser.
  auto reparsed = parse_manifest(manifest);
  if (!reparsed) return reparsed.error().wrap(fmt::format("create bundle {}", m.id));
  if (manifest.size() > kMaxManifestBytes)
    return make_error("create bundle {}: manifest is {} bytes, limit {}", m.id, manifest.size(),
                      kMaxManifestBytes);
  std::array<uint8_t, 32> digest = sha256(payload);

  std::string out(kMagic, sizeof kMagic);
  put_u32(out, kFormatVersion);
  put_u32(out, key ? 4 : 3);
  put_section(out, kManifest, manifest);
  put_section(out, kPayloadSha256,
              std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
  put_section(out, kPayload, payload);
  if (key) {
    std::string msg = signed_message(manifest, digest);
    std::array<uint8_t, 64> sig{};
    crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const unsigned char*>(msg.data()),
                         msg.size(), key->bytes.data());
    PublicKey pk = key->public_key();
    std::string s(reinterpret_cast<const char*>(pk.bytes.data()), pk.bytes.size());
    s.append(reinterpret_cast<const char*>(sig.data()), sig.size());
    put_section(out, kSignature, s);
  }
  return out;
}

}  // namespace

std::string sha256_hex(std::string_view data) { return to_hex(sha256(data)); }

bool looks_like_bundle(std::string_view bytes) {
  return bytes.size() >= sizeof kMagic && std::memcmp(bytes.data(), kMagic, sizeof kMagic) == 0;
}

namespace {

// The container without its meaning: header, section framing and the fixed-size sections.
// This is all that is read of a bundle before its signature is checked; the manifest's
// TOML is left as bytes.
struct Framed {
  uint32_t format_version = 0;
  std::string_view manifest, digest, payload;
  std::optional<PublicKey> signer;
  std::array<uint8_t, 64> signature{};
};

Result<Framed> frame(std::string_view bytes) {
  if (bytes.size() > kMaxBundleBytes)
    return make_error("bundle: oversized ({} bytes, limit {})", bytes.size(), kMaxBundleBytes);
  if (bytes.size() < kHeaderBytes) {
    if (!bytes.empty() && !looks_like_bundle(bytes.substr(0, sizeof kMagic)) &&
        bytes.size() >= sizeof kMagic)
      return make_error("bundle: not a nines bundle (bad magic)");
    return make_error("bundle: truncated ({} bytes, the header alone is {})", bytes.size(),
                      kHeaderBytes);
  }
  if (!looks_like_bundle(bytes)) return make_error("bundle: not a nines bundle (bad magic)");
  Framed f;
  f.format_version = get_u32(bytes.data() + 8);
  if (f.format_version != kFormatVersion)
    return make_error("bundle: unsupported format version {} (this nines reads version {})",
                      f.format_version, kFormatVersion);
  uint32_t count = get_u32(bytes.data() + 12);
  if (count < 3 || count > 4)
    return make_error("bundle: {} sections; format 1 has 3 (unsigned) or 4", count);

  // Sections come in type order 1, 2, 3[, 4], each exactly once.
  std::string_view sec[5];
  size_t pos = kHeaderBytes;
  for (uint32_t i = 0; i < count; ++i) {
    size_t remaining = bytes.size() - pos;  // pos <= size holds by construction
    if (remaining < kSectionHeaderBytes)
      return make_error("bundle: truncated in the header of section {} of {}", i + 1, count);
    uint32_t type = get_u32(bytes.data() + pos);
    uint32_t len = get_u32(bytes.data() + pos + 4);
    pos += kSectionHeaderBytes;
    remaining -= kSectionHeaderBytes;
    if (type != i + 1)
      return make_error("bundle: section {} has type {}, expected {} ({})", i + 1, type, i + 1,
                        section_name(i + 1));
    if (len > section_limit(type))
      return make_error("bundle: {} section is {} bytes, limit {}", section_name(type), len,
                        section_limit(type));
    if (len > remaining)
      return make_error("bundle: truncated: {} section declares {} bytes, {} remain",
                        section_name(type), len, remaining);
    sec[type] = bytes.substr(pos, len);
    pos += len;
  }
  if (pos != bytes.size())
    return make_error("bundle: {} trailing bytes after the last section", bytes.size() - pos);
  if (sec[kPayloadSha256].size() != 32)
    return make_error("bundle: payload-sha256 section is {} bytes, expected 32",
                      sec[kPayloadSha256].size());
  if (count == 4 && sec[kSignature].size() != 96)
    return make_error("bundle: signature section is {} bytes, expected 96", sec[kSignature].size());
  if (sec[kPayload].empty()) return make_error("bundle: payload section is empty");
  f.manifest = sec[kManifest];
  f.digest = sec[kPayloadSha256];
  f.payload = sec[kPayload];
  if (count == 4) {
    PublicKey pk;
    std::memcpy(pk.bytes.data(), sec[kSignature].data(), 32);
    std::memcpy(f.signature.data(), sec[kSignature].data() + 32, 64);
    f.signer = pk;
  }
  return f;
}

// The signature over the framed bytes, checked before the manifest is parsed: signed at
// all, by a trusted key, over manifest bytes + stated digest, and the payload has that
// digest. `who` names the bundle in messages.
Status verify_framed(const Framed& f, const std::vector<TrustedKey>& trusted,
                     const std::string& who) {
  if (sodium_init() < 0) return make_error("verify bundle: libsodium failed to initialise");
  if (!f.signer) return make_error("{}: unsigned (no signature section)", who);
  std::string fp = fingerprint(*f.signer);
  bool known = false;
  for (const TrustedKey& k : trusted) known = known || k.key == *f.signer;
  if (!known) return make_error("{}: signed by untrusted key {} (not in the trust store)", who, fp);
  std::string msg = signed_message(
      f.manifest,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(f.digest.data()), f.digest.size()));
  if (crypto_sign_verify_detached(f.signature.data(),
                                  reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                                  f.signer->bytes.data()) != 0)
    return make_error(
        "{}: bad signature (key {}): manifest or digest altered, or not signed by this key", who,
        fp);
  std::string stated = to_hex(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(f.digest.data()), f.digest.size()));
  std::string computed = sha256_hex(f.payload);
  if (computed != stated)
    return make_error("{}: payload digest mismatch (stated sha256 {}, computed {})", who, stated,
                      computed);
  return {};
}

// The Bundle of a framed container whose manifest parsed.
Bundle assemble_bundle(const Framed& f, Manifest m, std::string_view bytes) {
  Bundle b;
  b.format_version = f.format_version;
  b.manifest = std::move(m);
  b.manifest_text = std::string(f.manifest);
  b.payload = std::string(f.payload);
  b.payload_sha256_hex = to_hex(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(f.digest.data()), f.digest.size()));
  if (f.signer) {
    b.signer = f.signer;
    b.signature = f.signature;
    b.signer_fingerprint = fingerprint(*f.signer);
  }
  b.raw = std::string(bytes);
  return b;
}

}  // namespace

Result<Bundle> parse_bundle(std::string_view bytes) {
  Framed f = NINES_TRY(frame(bytes));
  auto m = parse_manifest(f.manifest);
  if (!m) return m.error().wrap("bundle");
  return assemble_bundle(f, std::move(*m), bytes);
}

Status verify_bundle(const Bundle& b, const std::vector<TrustedKey>& trusted) {
  std::string who = fmt::format("bundle {} version {}", b.manifest.id, b.manifest.version);
  // Re-framed from the raw bytes, so exactly what was signed is what is checked.
  Framed f = NINES_TRY(frame(b.raw));
  NINES_CHECK(verify_framed(f, trusted, who));
  auto agrees = check_payload_matches(b.manifest, b.payload);
  if (!agrees) return agrees.error().wrap(who);
  return {};
}

Result<Bundle> verify_then_parse(std::string_view bytes, const std::vector<TrustedKey>& trusted) {
  // Only the framing is read before the signature: the manifest TOML is parsed once its
  // bytes are known to come from a trusted publisher.
  Framed f = NINES_TRY(frame(bytes));
  std::string who =
      f.signer ? fmt::format("bundle (signed by key {})", fingerprint(*f.signer)) : "bundle";
  NINES_CHECK(verify_framed(f, trusted, who));
  auto m = parse_manifest(f.manifest);
  if (!m) return m.error().wrap(who);
  Bundle b = assemble_bundle(f, std::move(*m), bytes);
  auto agrees = check_payload_matches(b.manifest, b.payload);
  if (!agrees)
    return agrees.error().wrap(
        fmt::format("bundle {} version {}", b.manifest.id, b.manifest.version));
  return b;
}

Result<Bundle> open_verified(std::string_view bytes, const std::string& trust_dir) {
  auto trusted = load_trust_store(trust_dir);
  if (!trusted) return trusted.error().wrap("verify bundle");
  if (trusted->empty())
    return make_error("verify bundle: trust store {} holds no public keys (*.pub)", trust_dir);
  return verify_then_parse(bytes, *trusted);
}

Result<std::string> create_bundle(const Manifest& m, std::string_view payload,
                                  const SecretKey& key) {
  if (sodium_init() < 0) return make_error("create bundle: libsodium failed to initialise");
  return build(m, payload, &key);
}

Result<std::string> create_unsigned_bundle(const Manifest& m, std::string_view payload) {
  if (sodium_init() < 0) return make_error("create bundle: libsodium failed to initialise");
  return build(m, payload, nullptr);
}

Result<std::string> read_bundle_file(const std::string& path) {
  auto fd = NINES_TRY(Fd::open(path, O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return errno_error(fmt::format("stat {}", path));
  if (!S_ISREG(st.st_mode)) return make_error("bundle {}: not a regular file", path);
  if (static_cast<uint64_t>(st.st_size) > kMaxBundleBytes)
    return make_error("bundle {}: oversized ({} bytes, limit {})", path, st.st_size,
                      kMaxBundleBytes);
  std::string data(static_cast<size_t>(st.st_size), '\0');
  NINES_CHECK(pread_full(fd.get(), data.data(), data.size(), 0, path));
  return data;
}

}  // namespace nines::bundle
