#include "cli/format.h"

#include <yaml-cpp/yaml.h>

namespace nines::cli {

namespace {

void emit(YAML::Emitter& out, const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::object:
      out << YAML::BeginMap;
      for (const auto& [k, v] : j.items()) {
        out << YAML::Key << k << YAML::Value;
        emit(out, v);
      }
      out << YAML::EndMap;
      break;
    case nlohmann::json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& v : j) emit(out, v);
      out << YAML::EndSeq;
      break;
    case nlohmann::json::value_t::string:
      // Always double-quoted: no string is ever read back as a number, a bool or null.
      out << YAML::DoubleQuoted << j.get<std::string>();
      break;
    case nlohmann::json::value_t::boolean:
      out << j.get<bool>();
      break;
    case nlohmann::json::value_t::number_integer:
      out << j.get<int64_t>();
      break;
    case nlohmann::json::value_t::number_unsigned:
      out << j.get<uint64_t>();
      break;
    case nlohmann::json::value_t::number_float:
      out << j.get<double>();
      break;
    default:
      out << YAML::Null;
  }
}

}  // namespace

CLI::Option* add_format_option(CLI::App& app, std::string& format,
                               const std::vector<std::string>& extra) {
  std::vector<std::string> choices = {"humane", "json", "yaml", "text"};
  choices.insert(choices.end(), extra.begin(), extra.end());
  std::string help = "humane (default), json or yaml";
  for (const auto& e : extra) help += ", " + e;
  return app.add_option("--format", format, help)->check(CLI::IsMember(choices));
}

bool is_document_format(const std::string& format) { return format == "json" || format == "yaml"; }

std::string to_yaml(const nlohmann::json& doc) {
  YAML::Emitter out;
  out << YAML::BeginDoc;
  emit(out, doc);
  return std::string(out.c_str()) + "\n";
}

std::string render_document(const nlohmann::json& doc, const std::string& format) {
  if (format == "yaml") return to_yaml(doc);
  return doc.dump(2) + "\n";
}

}  // namespace nines::cli
