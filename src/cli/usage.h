// Usage errors that name the unknown word and suggest the nearest command or option:
//   nines aply x        -> unknown command 'aply'; did you mean 'apply'?
//   nines --frobnicate  -> unknown option '--frobnicate'
// CLI11 reports these as "A subcommand is required" or "The following arguments were not
// expected"; main() asks explain_usage_error() first and prints CLI11's message only when
// it finds nothing more precise.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

namespace nines::cli {

// Levenshtein distance (insert, delete, substitute, and swapping two neighbours: "aplpy").
size_t edit_distance(const std::string& a, const std::string& b);

// The candidate nearest to `word`, if it is near enough to be a likely typo (at most a
// third of the word's letters wrong, and at least 1 for short words), or a candidate that
// starts with `word`.
std::optional<std::string> nearest(const std::string& word, const std::vector<std::string>& candidates);

// Walks argv (without argv[0]) through `root`'s commands and options as CLI11 would and
// returns the message for the first word that is neither, or nullopt.
std::optional<std::string> explain_usage_error(const CLI::App& root, const std::vector<std::string>& args);

}  // namespace nines::cli
