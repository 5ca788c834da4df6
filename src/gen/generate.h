// `nines build --target FILE --source DIR --diff FIX.patch`: a live patch generated from
// a fix's diff and the tree the target was built from. The passes, in order:
//
//   read the target      build-id and symbols (statics too), or a clear refusal
//   read the diffs       rewritten with #line so unchanged code keeps its __LINE__
//   build the original   the project's own build, through the recording wrapper
//   apply, rebuild       only the translation units the diffs touch compile again
//   compare              changed objects function by function; structure layouts
//   decide               what goes in, what stays in the target, what is refused
//   emit and link        one relocatable object per changed unit, linked as a patch
//   verify and write     every redirect fits, the loader can map it, .nines.meta
//
// The output is the same patch object the hand-written path writes (ulp/builder.h), so
// bundle, apply, list, revert and the agent handle it unchanged.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"
#include "ulp/patch_object.h"

namespace nines::gen {

struct GenerateOptions {
  std::string target;                // the binary running processes map
  std::string source;                // the tree it was built from (never written)
  std::vector<std::string> diffs;    // unified diffs, applied in order
  std::string build_command;         // shell command at the tree's root; detected if empty
  std::string id;                    // default: the output's base name
  std::string output;                // OUT.patch
  std::string work_dir;              // default: OUTPUT.work (removed on success)
  std::string cache_dir;             // keeps the original build for later runs; "" = none
  bool keep_work = false;
};

// One line of the report: what happened to a function, a datum or a hunk, and why.
struct ReportLine {
  enum class Kind { kReplaced, kNewFunction, kNewData, kNoCodeChange, kNotInTarget, kNote };
  Kind kind;
  std::string subject;   // function, datum, or "file:lines"
  std::string detail;    // the reason
};
std::string_view to_string(ReportLine::Kind k);

struct GenerateResult {
  ulp::PatchMeta meta;
  std::string build_system;          // how the tree was built
  std::vector<ReportLine> report;
  std::vector<std::string> refusals; // non-empty: nothing was written
};

// Runs every pass. Returns the result even when the fix is refused (refusals say why,
// and no output is written); fails on errors of the inputs or the tools (a diff that
// does not apply, a build that fails, a target without symbols).
Result<GenerateResult> generate_patch(const GenerateOptions& opts);

// The report as printed on stdout by `nines build --diff`.
std::string format_report(const GenerateResult& r, const GenerateOptions& opts);

}  // namespace nines::gen
