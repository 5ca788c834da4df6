// Helpers shared by the bundle tests: temporary folders, a sample manifest, and a tiny
// patch object built with gcc + objcopy (the real tools, as `nines build` would use them).
#pragma once

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "bundle/bundle.h"
#include "core/fd.h"
#include "core/subprocess.h"

namespace nines::bundle::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/nines-bundle-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline Manifest sample_manifest() {
  Manifest m;
  m.id = "fix-1";
  m.version = 2;
  m.kind = "userspace";
  m.target_name = "libfoo.so.1";
  m.target_build_id = "abcdef0123456789";
  m.description = "Fixes an overflow in foo_parse";
  m.cves = {
      {"CVE-2026-1234", "high", "heap overflow in foo_parse", "https://example.org/CVE-2026-1234"}};
  m.published = "2026-11-29T18:00:00Z";
  m.published_unix = 1795975200;
  return m;
}

inline const char* kSampleToml = R"(id = "fix-1"
version = 2
kind = "userspace"
description = "Fixes an overflow in foo_parse"
published = "2026-11-29T18:00:00Z"

[target]
name = "libfoo.so.1"
build_id = "abcdef0123456789"

[[cves]]
id = "CVE-2026-1234"
severity = "high"
description = "heap overflow in foo_parse"
url = "https://example.org/CVE-2026-1234"
)";

// Compiles a one-function object in `dir` and adds a `.nines.meta` section holding `meta`.
// Returns the path of the patch object.
inline std::string make_patch_object(const TempDir& dir, const std::string& meta,
                                     const std::string& name = "fix.patch") {
  std::string src = dir / "p.c", obj = dir / "p.o", json = dir / "meta.json";
  if (!write_file_atomic(src, "int foo_parse(const char *s) { return s ? 1 : 0; }\n")) return {};
  if (!write_file_atomic(json, meta)) return {};
  if (!run_checked({"gcc", "-O2", "-c", src, "-o", obj})) return {};
  std::string out = dir / name;
  if (!run_checked({"objcopy", "--add-section", ".nines.meta=" + json, obj, out})) return {};
  return out;
}

inline const char* kSampleMeta =
    R"({"format":1,"kind":"userspace","id":"fix-1",)"
    R"("target":{"name":"libfoo.so.1","build_id":"abcdef0123456789"},)"
    R"("functions":[{"name":"foo_parse","replacement":"foo_parse_fixed"}]})";

}  // namespace nines::bundle::testing
