// Man pages from the CLI's own definitions (CLI11), so they never drift from --help:
// one page for the program and one per visible subcommand (nines-apply.1, ...), nested
// subcommands as sections of their parent's page.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <string>

#include "core/result.h"

namespace nines::cli {

// What a page adds to the options CLI11 knows: the exit status table and a longer
// description, by command path ("" is the program, "apply", "kernel apply", ...).
struct ManExtra {
  std::string description;
  std::string exit_status;  // lines "CODE<TAB>meaning"
};

// The roff source of the page of `cmd` (the program itself when cmd has no parent).
// `program` is the executable's name, `version` goes in the footer.
std::string render_manpage(const CLI::App& cmd, const std::string& program,
                           const std::string& version, const ManExtra& extra);

// Writes PROGRAM.1 and PROGRAM-SUB.1 for every visible subcommand of `root` into `dir`.
// Returns the number of pages written, or the first write error.
Result<int> write_manpages(const CLI::App& root, const std::string& program,
                           const std::string& version, const std::string& dir,
                           const std::map<std::string, ManExtra>& extras);

}  // namespace nines::cli
