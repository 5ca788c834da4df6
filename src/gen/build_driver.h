// Building the target's source tree the way its project does, through a compiler wrapper
// that adds `-ffunction-sections -fdata-sections -g` to every compilation and records
// every compiler invocation: which object each compilation wrote, and which objects the
// link of the target took.
//
// The tree is built once as it is (the original), its objects are set aside, the diffs
// are applied and the same command runs again: only the translation units the diffs
// touch compile again, as in kpatch-build.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/fd.h"
#include "core/result.h"
#include "gen/unified_diff.h"

namespace nines::gen {

// How the tree is built: a shell command run at the tree's root.
struct BuildCommand {
  std::string command;
  std::string system;   // "given", "cmake", "meson", "autotools", "make"
};

// Detects CMake, Meson, autotools (configure, or autogen.sh / buildconf.sh first) and
// plain make at the root of `tree`. Fails saying that --build is needed.
Result<BuildCommand> detect_build(const std::string& tree);

struct Invocation {
  std::string cwd;
  std::vector<std::string> args;
};

struct Compilation {
  std::string source;   // absolute
  std::string object;   // absolute
};

struct TargetLink {
  std::string output;                 // absolute
  std::vector<std::string> objects;   // absolute, in link order
};

// The compiler invocations recorded during one build.
struct BuildRecord {
  std::vector<Invocation> invocations;
  std::vector<Compilation> compilations() const;
  // The last link whose output is named `file_name` or sets the soname `soname`.
  Result<TargetLink> target_link(const std::string& file_name, const std::string& soname) const;
};

// Where a tree is built. Without a cache, `work`/tree is a fresh copy of the source.
// With a cache root, the built original lives in CACHE/<key>/ (key: the source's path
// and newest modification time, the build command, the wrapper's version), shared by
// later generations from the same tree: each takes the entry's lock, applies its diffs,
// rebuilds incrementally, and undoes its diffs (restore()), so the next one starts from
// the original again. An entry left patched by a killed generation is rebuilt.
struct DriverOptions {
  std::string source;
  std::string work;        // scratch folder (used as the tree's home without a cache)
  std::string cache_root;  // "" = no cache
  BuildCommand command;    // empty command = detect
};

class BuildDriver {
 public:
  static Result<BuildDriver> prepare(const DriverOptions& opts);
  BuildDriver(BuildDriver&&) = default;
  BuildDriver& operator=(BuildDriver&&) = default;
  ~BuildDriver();

  const std::string& tree() const { return tree_; }
  // Where the original objects are set aside (inside the cache entry when cached).
  std::string originals_dir() const { return home_ + "/original"; }
  const BuildCommand& command() const { return command_; }
  bool cached() const { return !cache_key_.empty(); }

  // The record of the original build when the cache entry already holds it.
  std::optional<BuildRecord> cached_original() const;
  // Marks the original build (and the objects set aside) complete in the cache entry.
  Status mark_original_ready();

  // Runs the build command at the tree's root with the wrapper as CC (and first in
  // PATH). Returns the invocations it made. Fails quoting the tail of the build's output.
  Result<BuildRecord> build(const std::string& label);

  // Applies a unified diff with `patch -p1` (git mails, quilt patches, diff -u), then
  // rewrites each C file it changed with #line directives (with_line_directives), from a
  // fresh diff of that file: the numbers of the diff's own hunk headers may be off (a
  // Debian patch made on top of another one), `patch` finds the right place anyway.
  // Returns the fresh diff of the C files (exact lines of the file before this diff), for
  // the report. Fails quoting patch's output when a hunk does not apply.
  Result<UnifiedDiff> apply_diff(const std::string& diff_text, const std::string& name);
  // Puts back every file the diffs changed (a cached tree goes back to the original).
  Status restore();

 private:
  BuildDriver() = default;
  std::string home_, tree_, bin_, records_;
  std::string cache_key_;
  BuildCommand command_;
  Fd lock_;
  // Files the diffs changed, relative to the tree, with their original contents
  // (nullopt: the file did not exist).
  std::map<std::string, std::optional<std::string>> saved_;
  std::map<std::string, std::string> raw_;  // C files as the diffs made them
  int builds_ = 0;
};

}  // namespace nines::gen
