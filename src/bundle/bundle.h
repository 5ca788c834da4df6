// Signed patch bundles: the one file that carries a patch from its publisher to a machine.
//
// A bundle is a versioned binary container (docs/BUNDLE-FORMAT.md) holding a TOML manifest,
// the SHA-256 of the payload, the payload (a patch object, an ELF file) and an ed25519
// signature (libsodium) over the manifest bytes and the payload digest. A machine trusts
// only the public keys in its trust store, a folder of *.pub files
// (/etc/nines/trusted-keys.d by default).
//
// Every byte of a bundle is treated as hostile: sizes are checked before anything is
// allocated, lengths are checked against what remains before they are used, and nothing
// in the file ever names a path on disk.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace nines::bundle {

inline constexpr const char* kDefaultTrustDir = "/etc/nines/trusted-keys.d";

// Hard limits, checked before any allocation.
inline constexpr size_t kMaxBundleBytes = 64u << 20;    // whole file
inline constexpr size_t kMaxManifestBytes = 64u << 10;  // manifest section
inline constexpr size_t kMaxPayloadBytes = kMaxBundleBytes - kMaxManifestBytes - 4096;
inline constexpr uint32_t kFormatVersion = 1;

// ---------------------------------------------------------------------------------------
// Manifest

struct Cve {
  std::string id;           // "CVE-2026-1234"
  std::string severity;     // critical | high | medium | low | negligible
  std::string description;  // one line
  std::string url;          // http(s) reference
};

struct Manifest {
  std::string id;       // [A-Za-z0-9._+-], 1..128 chars: safe in file and module names
  int64_t version = 0;  // >= 1; grows with each cumulative release for the same target
  std::string kind;     // "userspace" | "kernel"
  // userspace: object name (e.g. "libfoo.so.1") and its GNU build-id (lowercase hex).
  // kernel: target_name is empty; target_build_id is the kernel's build-id when known.
  std::string target_name, target_build_id, kernel_release;
  std::string description;
  std::vector<Cve> cves;
  std::string published;  // RFC 3339, as written by the publisher
  int64_t published_unix = 0;
};

// Parses and validates manifest TOML strictly: unknown keys, a wrong type, an unknown kind,
// a bad severity, a malformed RFC 3339 time or build-id hex are refused with an error that
// names the field ("manifest: cves[1].severity: 'urgent' is not one of critical, high, ...").
// With `require_target` false the target fields may be missing (bundle create fills them
// from the patch object before validating again).
Result<Manifest> parse_manifest(std::string_view toml_text, bool require_target = true);

// Checks the fields of a manifest built in memory; same rules and messages as parse_manifest.
Status validate_manifest(const Manifest& m);

// Deterministic TOML text for a valid manifest (what `bundle create` stores in the bundle).
std::string manifest_to_toml(const Manifest& m);
nlohmann::json manifest_to_json(const Manifest& m);

// 4 critical, 3 high, 2 medium, 1 low, 0 negligible, -1 for anything else.
int severity_rank(std::string_view severity);
// The highest severity among the CVEs ("" when there are none).
std::string highest_severity(const Manifest& m);

// ---------------------------------------------------------------------------------------
// Keys and the trust store

struct PublicKey {
  std::array<uint8_t, 32> bytes{};
  bool operator==(const PublicKey&) const = default;
};
struct SecretKey {
  std::array<uint8_t, 64> bytes{};  // libsodium layout: seed || public key
  PublicKey public_key() const;
};
struct KeyPair {
  PublicKey public_key;
  SecretKey secret_key;
};

KeyPair generate_keypair();
// First 16 bytes of SHA-256(public key bytes), lowercase hex (32 characters).
std::string fingerprint(const PublicKey& key);

// Key files are one text line: "nines-ed25519-public <64 hex>" (a comment may follow after
// a space) and "nines-ed25519-secret <128 hex>".
std::string format_public_key(const PublicKey& key, std::string_view comment = {});
std::string format_secret_key(const SecretKey& key);
Result<PublicKey> parse_public_key(std::string_view text);
Result<SecretKey> parse_secret_key(std::string_view text);
Result<PublicKey> read_public_key_file(const std::string& path);
Result<SecretKey> read_secret_key_file(const std::string& path);

struct TrustedKey {
  PublicKey key;
  std::string file;  // where it was read from, for messages
};
// Reads every *.pub regular file of `dir`. Fails when the folder cannot be read; a file that
// does not parse is skipped with a warning (skipping a key can only trust less).
Result<std::vector<TrustedKey>> load_trust_store(const std::string& dir);

// ---------------------------------------------------------------------------------------
// The bundle

struct Bundle {
  Manifest manifest;
  std::string payload;
  std::string payload_sha256_hex;  // as stated in the bundle (and signed)
  std::string signer_fingerprint;  // empty when the bundle is unsigned
  std::string raw;                 // the whole file
  // Beyond the contract: the exact signed bytes, for inspect and re-verification.
  std::string manifest_text;
  std::optional<PublicKey> signer;
  std::array<uint8_t, 64> signature{};
  uint32_t format_version = 0;
};

// True when `bytes` starts with the bundle magic (cheap; says nothing about validity).
bool looks_like_bundle(std::string_view bytes);

// Structure only, no trust: magic, format version, section table, sizes, manifest rules.
// An unsigned bundle parses (signer empty); open_verified refuses it. For display
// (`bundle inspect`) only: a machine deciding anything uses open_verified.
Result<Bundle> parse_bundle(std::string_view bytes);

// The bytes of a bundle from anywhere (a server, a disk) become a Bundle in this order:
// the fixed-size header and the section framing are checked; then the signature (signed
// at all, signer key in the trust store, valid over the manifest's raw bytes + the stated
// payload digest) and the payload's SHA-256; only then is the manifest TOML parsed and
// checked against the payload. Nothing of the manifest is read before the signature
// verifies. Errors name the cause: "bundle: unsigned (no signature section)",
// "bundle: signed by untrusted key <fp>", "... bad signature", "... payload digest mismatch
// (stated X, computed Y)"; open_verified also fails when the trust store cannot be read or
// holds no key.
Result<Bundle> open_verified(std::string_view bytes, const std::string& trust_dir);
Result<Bundle> verify_then_parse(std::string_view bytes, const std::vector<TrustedKey>& trusted);

// Checks a parsed bundle against keys already loaded (its raw bytes are framed again, so
// what is checked is exactly what was signed).
Status verify_bundle(const Bundle& b, const std::vector<TrustedKey>& trusted);

// Builds a bundle file: the manifest (validated, stored as manifest_to_toml), the payload
// digest, the payload and the signature by `key`. Fails on an invalid manifest or an
// oversized payload.
Result<std::string> create_bundle(const Manifest& m, std::string_view payload,
                                  const SecretKey& key);
// Same without a signature section (for tests of the refusal, and for a later signer).
Result<std::string> create_unsigned_bundle(const Manifest& m, std::string_view payload);

// Reads a file of at most kMaxBundleBytes ("bundle PATH: oversized (N bytes, limit M)").
Result<std::string> read_bundle_file(const std::string& path);

std::string sha256_hex(std::string_view data);

}  // namespace nines::bundle
