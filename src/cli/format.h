// --format for every listing command: humane (for people, the default), json and yaml
// (the same document; YAML written by yaml-cpp). "text" is kept as another name for
// humane, which older scripts used.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace nines::cli {

// Adds --format with the common choices (and `extra` ones, e.g. "batch" for check).
CLI::Option* add_format_option(CLI::App& app, std::string& format,
                               const std::vector<std::string>& extra = {});

// True when `format` asks for the machine-readable document.
bool is_document_format(const std::string& format);

// The document as JSON (indented) or YAML ("---" first), ending with a newline.
std::string render_document(const nlohmann::json& doc, const std::string& format);

// YAML of a JSON document, block style (yaml-cpp's emitter).
std::string to_yaml(const nlohmann::json& doc);

}  // namespace nines::cli
