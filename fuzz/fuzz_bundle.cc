// libFuzzer target: the bundle container parser and, when a bundle parses, the verifier
// (against a fixed trusted key), the JSON and TOML writers. Every byte is hostile: the
// parser must refuse without crashing, reading out of bounds or allocating from a length
// it has not checked.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bundle/bundle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<nines::bundle::TrustedKey> trusted = [] {
    nines::bundle::TrustedKey k;
    // The key of tests/bundle/data/trust/golden.pub, so seeds from the golden bundle reach
    // the signature check with a trusted signer.
    auto pk = nines::bundle::parse_public_key(
        "nines-ed25519-public "
        "115b9ecefe9bf56f9684c9635917c23334b4def976b65f05c413c7ea722f00bc");
    if (pk) k.key = *pk;
    return std::vector<nines::bundle::TrustedKey>{k};
  }();
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)nines::bundle::looks_like_bundle(bytes);
  auto b = nines::bundle::parse_bundle(bytes);
  if (!b) return 0;
  (void)nines::bundle::verify_bundle(*b, trusted);
  (void)nines::bundle::manifest_to_json(b->manifest).dump();
  // What the writer emits for a manifest the parser accepted must parse again.
  auto again = nines::bundle::parse_manifest(nines::bundle::manifest_to_toml(b->manifest));
  if (!again) __builtin_trap();
  return 0;
}
