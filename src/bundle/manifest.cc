// Manifest TOML: strict parsing and deterministic output. Every refusal names the field.
#include <toml++/toml.h>

#include <set>
#include <sstream>

#include "bundle/bundle.h"
#include "core/clock.h"
#include "core/strings.h"

namespace nines::bundle {
namespace {

constexpr size_t kMaxIdLen = 128;
constexpr size_t kMaxDescriptionLen = 4096;
constexpr size_t kMaxLineLen = 512;  // CVE description, URL, names, releases
constexpr size_t kMaxCves = 256;
constexpr size_t kMaxBuildIdHex = 128;  // GNU build-ids are 20 bytes; leave room

const char* const kSeverities[] = {"negligible", "low", "medium", "high", "critical"};

Error field_error(std::string_view field, std::string_view why) {
  return make_error("manifest: {}: {}", field, why);
}

bool has_control_chars(std::string_view s, bool allow_newlines) {
  for (unsigned char c : s) {
    if (c == '\n' || c == '\t') {
      if (!allow_newlines) return true;
      continue;
    }
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
// Decodes one code point at s[i]; returns its length, or 0 when malformed.
size_t decode_utf8(std::string_view s, size_t i, char32_t& cp) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  unsigned char c = byte(0);
  size_t n = c < 0x80                   ? 1
             : (c >= 0xc2 && c <= 0xdf) ? 2
             : (c >= 0xe0 && c <= 0xef) ? 3
             : (c >= 0xf0 && c <= 0xf4) ? 4
                                        : 0;
  if (n == 0 || n > s.size() - i) return 0;
  cp = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
  for (size_t k = 1; k < n; ++k) {
    if ((byte(k) >> 6) != 2) return 0;
    cp = (cp << 6) | (byte(k) & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    char32_t cp = 0;
    size_t n = decode_utf8(s, i, cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// toml++ 3.3 (Debian 12) reaches __builtin_unreachable() in
// is_non_ascii_horizontal_whitespace() for many non-ASCII code points (U+00A1..U+0499,
// U+2C6E..U+3067), which its parser asks about outside strings and after a line-ending
// backslash: undefined behaviour on hostile input, found by fuzz/fuzz_manifest. So toml++
// never sees a non-ASCII byte: inside "basic" strings each non-ASCII code point becomes a
// \uXXXX or \UXXXXXXXX escape (the same string), in comments it becomes '?', and
// anywhere else (bare text, 'literal' strings, right after a backslash) it is refused.
// The output is pure ASCII whatever this lexer believes, so a disagreement with toml++
// about where a string ends can change only the parse result, never reach that code.
Result<std::string> asciify_toml(std::string_view in) {
  enum State { kBare, kComment, kBasic, kMlBasic, kLiteral, kMlLiteral } st = kBare;
  std::string out;
  out.reserve(in.size() + in.size() / 8);
  size_t line = 1;
  auto at = [&](size_t i, std::string_view w) { return in.substr(i, w.size()) == w; };
  for (size_t i = 0; i < in.size();) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    if (c >= 0x80) {
      char32_t cp = 0;
      size_t n = decode_utf8(in, i, cp);
      if (n == 0) return make_error("manifest: line {}: not valid UTF-8", line);
      if (st == kBasic || st == kMlBasic)
        out += cp > 0xffff ? fmt::format("\\U{:08X}", static_cast<uint32_t>(cp))
                           : fmt::format("\\u{:04X}", static_cast<uint32_t>(cp));
      else if (st == kComment)
        out.push_back('?');
      else if (st == kBare)
        return make_error("manifest: line {}: non-ASCII character outside a string", line);
      else
        return make_error(
            "manifest: line {}: non-ASCII text must be in a \"double-quoted\" "
            "string, not a 'literal' one",
            line);
      i += n;
      continue;
    }
    if (c == '\n') {
      ++line;
      if (st == kComment || st == kBasic || st == kLiteral) st = kBare;
      out.push_back('\n');
      ++i;
      continue;
    }
    switch (st) {
      case kBare:
        if (c == '#') {
          st = kComment;
        } else if (at(i, "\"\"\"")) {
          out += "\"\"\"";
          i += 3;
          st = kMlBasic;
          continue;
        } else if (at(i, "'''")) {
          out += "'''";
          i += 3;
          st = kMlLiteral;
          continue;
        } else if (c == '"') {
          st = kBasic;
        } else if (c == '\'') {
          st = kLiteral;
        }
        break;
      case kComment:
        break;
      case kBasic:
      case kMlBasic:
        if (c == '\\') {
          out.push_back('\\');
          ++i;
          if (i < in.size() && static_cast<unsigned char>(in[i]) >= 0x80)
            return make_error("manifest: line {}: a backslash before a non-ASCII character", line);
          if (i < in.size() && in[i] != '\n') out.push_back(in[i++]);
          continue;
        }
        if (st == kBasic && c == '"') st = kBare;
        if (st == kMlBasic && at(i, "\"\"\"")) {
          // A closing delimiter may carry up to two more quotes of content (TOML 1.0).
          size_t q = 3;
          while (q < 5 && i + q < in.size() && in[i + q] == '"') ++q;
          out.append(in.substr(i, q));
          i += q;
          st = kBare;
          continue;
        }
        break;
      case kLiteral:
        if (c == '\'') st = kBare;
        break;
      case kMlLiteral:
        if (at(i, "'''")) {
          size_t q = 3;
          while (q < 5 && i + q < in.size() && in[i + q] == '\'') ++q;
          out.append(in.substr(i, q));
          i += q;
          st = kBare;
          continue;
        }
        break;
    }
    out.push_back(static_cast<char>(c));
    ++i;
  }
  return out;
}

Status check_text(std::string_view field, std::string_view v, size_t max, bool multiline,
                  bool required) {
  if (required && v.empty()) return field_error(field, "must not be empty");
  if (v.size() > max) return field_error(field, fmt::format("longer than {} bytes", max));
  if (!valid_utf8(v)) return field_error(field, "not valid UTF-8");
  if (has_control_chars(v, multiline))
    return field_error(field, multiline ? "contains control characters"
                                        : "must be one line without control characters");
  return {};
}

Status check_build_id(std::string_view field, std::string_view v) {
  if (v.empty()) return {};
  if (v.size() > kMaxBuildIdHex || v.size() % 2 != 0 || v.size() < 2)
    return field_error(field, fmt::format("'{}' is not an even number (2..{}) of hex digits",
                                          v.substr(0, 140), kMaxBuildIdHex));
  for (char c : v)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return field_error(field, fmt::format("'{}' is not lowercase hex", v.substr(0, 140)));
  return {};
}

bool id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == '+';
}

// Reads an optional string key; a present key of another type is refused.
Result<std::optional<std::string>> get_string(const toml::table& t, std::string_view key,
                                              std::string_view field) {
  const toml::node* n = t.get(key);
  if (!n) return std::optional<std::string>{};
  const auto* s = n->as_string();
  if (!s) return field_error(field, "must be a string");
  return std::optional<std::string>{s->get()};
}

Status refuse_unknown_keys(const toml::table& t, std::string_view where,
                           std::initializer_list<std::string_view> known) {
  for (const auto& [k, v] : t) {
    bool ok = false;
    for (auto kk : known) ok = ok || k.str() == kk;
    if (!ok) {
      std::string name =
          where.empty() ? std::string(k.str()) : fmt::format("{}.{}", where, k.str());
      return field_error(name, "unknown key");
    }
  }
  return {};
}

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

Status validate(const Manifest& m, bool require_target) {
  NINES_CHECK(check_text("id", m.id, kMaxIdLen, false, true));
  for (char c : m.id)
    if (!id_char(c))
      return field_error("id", fmt::format("'{}' may only contain letters, digits and ._+-", m.id));
  if (m.id == "." || m.id == "..") return field_error("id", "must not be '.' or '..'");
  if (m.version < 1) return field_error("version", fmt::format("{} is not >= 1", m.version));
  if (m.kind != "userspace" && m.kind != "kernel")
    return field_error("kind",
                       fmt::format("'{}' is not one of userspace, kernel", m.kind.substr(0, 64)));
  if (m.kind == "userspace") {
    NINES_CHECK(check_text("target.name", m.target_name, kMaxLineLen, false, require_target));
    if (m.target_name.find('/') != std::string::npos)
      return field_error("target.name", "must be an object name, not a path");
    if (require_target && m.target_build_id.empty())
      return field_error("target.build_id", "must not be empty for a userspace patch");
    if (!m.kernel_release.empty())
      return field_error("target.release", "only for kind = \"kernel\"");
  } else {
    NINES_CHECK(check_text("target.release", m.kernel_release, kMaxLineLen, false, require_target));
    if (!m.target_name.empty()) return field_error("target.name", "only for kind = \"userspace\"");
  }
  NINES_CHECK(check_build_id("target.build_id", m.target_build_id));
  NINES_CHECK(check_text("description", m.description, kMaxDescriptionLen, true, false));
  if (m.cves.size() > kMaxCves)
    return field_error("cves", fmt::format("more than {} entries", kMaxCves));
  for (size_t i = 0; i < m.cves.size(); ++i) {
    const Cve& c = m.cves[i];
    std::string f = fmt::format("cves[{}]", i);
    NINES_CHECK(check_text(f + ".id", c.id, 64, false, true));
    if (c.id.find(' ') != std::string::npos) return field_error(f + ".id", "contains a space");
    if (severity_rank(c.severity) < 0)
      return field_error(f + ".severity",
                         fmt::format("'{}' is not one of critical, high, medium, low, negligible",
                                     c.severity.substr(0, 64)));
    NINES_CHECK(check_text(f + ".description", c.description, kMaxLineLen, false, false));
    NINES_CHECK(check_text(f + ".url", c.url, kMaxLineLen, false, true));
    if (!starts_with(c.url, "https://") && !starts_with(c.url, "http://"))
      return field_error(f + ".url", "must start with https:// or http://");
    if (c.url.find(' ') != std::string::npos) return field_error(f + ".url", "contains a space");
  }
  NINES_CHECK(check_text("published", m.published, 64, false, true));
  auto t = parse_rfc3339(m.published);
  if (!t)
    return field_error("published", fmt::format("'{}' is not an RFC 3339 time with a UTC offset "
                                                "(e.g. 2026-11-29T18:00:00Z)",
                                                m.published));
  return {};
}

// TOML basic string with every non-printable byte escaped.
std::string toml_quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f)
          out += fmt::format("\\u{:04x}", c);
        else
          out.push_back(static_cast<char>(c));
    }
  }
  out += "\"";
  return out;
}

}  // namespace

int severity_rank(std::string_view severity) {
  for (int i = 0; i < 5; ++i)
    if (severity == kSeverities[i]) return i;
  return -1;
}

std::string highest_severity(const Manifest& m) {
  int best = -1;
  for (const Cve& c : m.cves) best = std::max(best, severity_rank(c.severity));
  return best < 0 ? std::string() : std::string(kSeverities[best]);
}

Status validate_manifest(const Manifest& m) { return validate(m, true); }

Result<Manifest> parse_manifest(std::string_view text, bool require_target) {
  if (text.size() > kMaxManifestBytes)
    return make_error("manifest: {} bytes, limit {}", text.size(), kMaxManifestBytes);
  if (!valid_utf8(text)) return make_error("manifest: not valid UTF-8");
  if (text.substr(0, 3) == "\xef\xbb\xbf") text.remove_prefix(3);  // a UTF-8 byte order mark
  std::string ascii = NINES_TRY(asciify_toml(text));
  toml::table root;
  try {
    root = toml::parse(ascii, std::string_view("manifest"));
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return make_error("manifest: TOML syntax error at line {}, column {}: {}", b.line, b.column,
                      e.description());
  }
  NINES_CHECK(refuse_unknown_keys(
      root, "", {"id", "version", "kind", "description", "published", "target", "cves"}));
  Manifest m;
  auto id = NINES_TRY(get_string(root, "id", "id"));
  if (!id) return field_error("id", "missing");
  m.id = *id;

  const toml::node* ver = root.get("version");
  if (!ver) return field_error("version", "missing");
  if (!ver->as_integer()) return field_error("version", "must be an integer");
  m.version = ver->as_integer()->get();

  auto kind = NINES_TRY(get_string(root, "kind", "kind"));
  if (!kind) return field_error("kind", "missing");
  m.kind = *kind;
  if (m.kind != "userspace" && m.kind != "kernel")
    return field_error("kind",
                       fmt::format("'{}' is not one of userspace, kernel", m.kind.substr(0, 64)));

  auto desc = NINES_TRY(get_string(root, "description", "description"));
  m.description = desc.value_or("");

  const toml::node* pub = root.get("published");
  if (!pub) return field_error("published", "missing");
  if (const auto* s = pub->as_string()) {
    m.published = s->get();
  } else if (const auto* dt = pub->as_date_time()) {
    const toml::date_time& d = dt->get();
    if (!d.offset)
      return field_error("published", "a TOML date-time needs a UTC offset (e.g. ...Z)");
    std::ostringstream os;
    os << d;
    m.published = os.str();
  } else {
    return field_error("published", "must be an RFC 3339 string or TOML offset date-time");
  }
  if (auto t = parse_rfc3339(m.published)) m.published_unix = *t;

  if (const toml::node* tn = root.get("target")) {
    const auto* t = tn->as_table();
    if (!t) return field_error("target", "must be a table");
    NINES_CHECK(refuse_unknown_keys(*t, "target", {"name", "build_id", "release"}));
    m.target_name = NINES_TRY(get_string(*t, "name", "target.name")).value_or("");
    m.target_build_id =
        lower(NINES_TRY(get_string(*t, "build_id", "target.build_id")).value_or(""));
    m.kernel_release = NINES_TRY(get_string(*t, "release", "target.release")).value_or("");
  } else if (require_target) {
    return field_error("target", "missing");
  }

  if (const toml::node* cn = root.get("cves")) {
    const auto* arr = cn->as_array();
    if (!arr) return field_error("cves", "must be an array of tables ([[cves]])");
    if (arr->size() > kMaxCves)
      return field_error("cves", fmt::format("more than {} entries", kMaxCves));
    for (size_t i = 0; i < arr->size(); ++i) {
      std::string f = fmt::format("cves[{}]", i);
      const auto* ct = (*arr)[i].as_table();
      if (!ct) return field_error(f, "must be a table");
      NINES_CHECK(refuse_unknown_keys(*ct, f, {"id", "severity", "description", "url"}));
      Cve c;
      c.id = NINES_TRY(get_string(*ct, "id", f + ".id")).value_or("");
      auto sev = NINES_TRY(get_string(*ct, "severity", f + ".severity"));
      if (!sev) return field_error(f + ".severity", "missing");
      c.severity = *sev;
      c.description = NINES_TRY(get_string(*ct, "description", f + ".description")).value_or("");
      auto url = NINES_TRY(get_string(*ct, "url", f + ".url"));
      if (!url) return field_error(f + ".url", "missing");
      c.url = *url;
      m.cves.push_back(std::move(c));
    }
  }
  NINES_CHECK(validate(m, require_target));
  return m;
}

std::string manifest_to_toml(const Manifest& m) {
  std::string out;
  out += fmt::format("id = {}\n", toml_quote(m.id));
  out += fmt::format("version = {}\n", m.version);
  out += fmt::format("kind = {}\n", toml_quote(m.kind));
  out += fmt::format("description = {}\n", toml_quote(m.description));
  out += fmt::format("published = {}\n", toml_quote(m.published));
  out += "\n[target]\n";
  if (m.kind == "userspace") out += fmt::format("name = {}\n", toml_quote(m.target_name));
  if (m.kind == "kernel") out += fmt::format("release = {}\n", toml_quote(m.kernel_release));
  out += fmt::format("build_id = {}\n", toml_quote(m.target_build_id));
  for (const Cve& c : m.cves) {
    out += "\n[[cves]]\n";
    out += fmt::format("id = {}\n", toml_quote(c.id));
    out += fmt::format("severity = {}\n", toml_quote(c.severity));
    out += fmt::format("description = {}\n", toml_quote(c.description));
    out += fmt::format("url = {}\n", toml_quote(c.url));
  }
  return out;
}

nlohmann::json manifest_to_json(const Manifest& m) {
  nlohmann::json cves = nlohmann::json::array();
  for (const Cve& c : m.cves)
    cves.push_back(
        {{"id", c.id}, {"severity", c.severity}, {"description", c.description}, {"url", c.url}});
  nlohmann::json j = {{"id", m.id},
                      {"version", m.version},
                      {"kind", m.kind},
                      {"description", m.description},
                      {"published", m.published},
                      {"published_unix", m.published_unix},
                      {"cves", cves}};
  if (m.kind == "kernel")
    j["target"] = {{"release", m.kernel_release}, {"build_id", m.target_build_id}};
  else
    j["target"] = {{"name", m.target_name}, {"build_id", m.target_build_id}};
  return j;
}

}  // namespace nines::bundle
