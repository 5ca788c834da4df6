#include "advisor/tracker.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cstring>

#include "core/fd.h"
#include "core/strings.h"

namespace nines::advisor {
namespace {

constexpr size_t kMaxTrackerBytes = 1ull << 30;
constexpr int kMaxDepth = 256;  // of skipped values; the tracker nests 5 deep

// A strict walker over JSON text: decodes the strings it is asked for, skips values
// checking only their structure. Every read is bounds-checked against `end_`.
class Walker {
 public:
  explicit Walker(std::string_view text) : p_(text.data()), begin_(text.data()),
                                           end_(text.data() + text.size()) {}

  const std::string& error() const { return error_; }
  bool failed() const { return !error_.empty(); }

  bool fail(std::string_view what) {
    if (error_.empty()) error_ = fmt::format("offset {}: {}", p_ - begin_, what);
    return false;
  }

  void ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool at(char c) {
    ws();
    return p_ < end_ && *p_ == c;
  }
  bool expect(char c) {
    ws();
    if (p_ >= end_ || *p_ != c) return fail(fmt::format("expected '{}'", c));
    ++p_;
    return true;
  }
  bool at_end() {
    ws();
    return p_ >= end_;
  }

  // A string; decoded into `out` unless it is null (then skipped: only its end is found).
  bool string(std::string* out) {
    if (!out) return skip_string();
    if (!expect('"')) return false;
    if (out) out->clear();
    const char* run = p_;
    while (true) {
      if (p_ >= end_) return fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        if (out) out->append(run, p_);
        ++p_;
        return true;
      }
      if (c < 0x20) return fail("control character in a string");
      if (c != '\\') {
        ++p_;
        continue;
      }
      if (out) out->append(run, p_);
      if (end_ - p_ < 2) return fail("unterminated escape");
      char e = p_[1];
      p_ += 2;
      switch (e) {
        case '"': case '\\': case '/':
          if (out) out->push_back(e);
          break;
        case 'b': if (out) out->push_back('\b'); break;
        case 'f': if (out) out->push_back('\f'); break;
        case 'n': if (out) out->push_back('\n'); break;
        case 'r': if (out) out->push_back('\r'); break;
        case 't': if (out) out->push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(&cp)) return false;
          if (cp >= 0xd800 && cp < 0xdc00) {  // a surrogate pair
            uint32_t lo = 0;
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return fail("lone surrogate");
            p_ += 2;
            if (!hex4(&lo) || lo < 0xdc00 || lo >= 0xe000) return fail("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          } else if (cp >= 0xdc00 && cp < 0xe000) {
            return fail("lone surrogate");
          }
          if (out) utf8(cp, out);
          break;
        }
        default:
          return fail("bad escape");
      }
      run = p_;
    }
  }

  // Skips a string: most of the file's bytes are in strings (descriptions), so the end is
  // found with memchr (vectorized), and a quote preceded by an odd run of backslashes is
  // escaped. Escapes and control characters in skipped strings are not checked.
  bool skip_string() {
    if (!expect('"')) return false;
    while (true) {
      const void* q = std::memchr(p_, '"', static_cast<size_t>(end_ - p_));
      if (!q) {
        p_ = end_;
        return fail("unterminated string");
      }
      const char* quote = static_cast<const char*>(q);
      const char* b = quote;
      while (b > p_ && b[-1] == '\\') --b;
      p_ = quote + 1;
      if (((quote - b) & 1) == 0) return true;
    }
  }

  // Skips one value of any type, checking that brackets balance and strings end.
  bool skip_value() {
    ws();
    char stack[kMaxDepth];
    int depth = 0;
    while (true) {
      if (p_ >= end_) return fail("unexpected end of data");
      char c = *p_;
      switch (c) {
        case '"':
          if (!skip_string()) return false;
          break;
        case '{': case '[':
          if (depth == kMaxDepth) return fail("nested too deeply");
          stack[depth++] = c == '{' ? '}' : ']';
          ++p_;
          break;
        case '}': case ']':
          if (depth == 0 || stack[depth - 1] != c) return fail(fmt::format("unexpected '{}'", c));
          --depth;
          ++p_;
          break;
        case ' ': case '\n': case '\r': case '\t': case ',': case ':':
          if (depth == 0) return fail(fmt::format("unexpected '{}'", c));
          ++p_;
          break;
        default:
          // Literals and numbers: true, false, null, -1.5e3.
          if (!std::strchr("0123456789-+.eEtrufalsn", c) || c == '\0')
            return fail(fmt::format("unexpected character {:#04x}", static_cast<unsigned char>(c)));
          ++p_;
          if (depth == 0) {
            while (p_ < end_ && *p_ != '\0' && std::strchr("0123456789-+.eEtrufalsn", *p_)) ++p_;
            return true;
          }
          break;
      }
      if (depth == 0) return true;
    }
  }

  // Walks an object: `on_key(key)` must consume the value. Returns false on error.
  template <typename F>
  bool object(F&& on_key) {
    if (!expect('{')) return false;
    if (at('}')) {
      ++p_;
      return true;
    }
    std::string key;
    while (true) {
      if (!string(&key) || !expect(':')) return false;
      if (!on_key(key)) return false;
      ws();
      if (p_ < end_ && *p_ == ',') {
        ++p_;
        continue;
      }
      return expect('}');
    }
  }

 private:
  bool hex4(uint32_t* cp) {
    if (end_ - p_ < 4) return fail("short \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char h = p_[i];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= static_cast<uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') v |= static_cast<uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= static_cast<uint32_t>(h - 'A' + 10);
      else return fail("bad \\u escape");
    }
    p_ += 4;
    *cp = v;
    return true;
  }
  static void utf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }

  const char* p_;
  const char* begin_;
  const char* end_;
  std::string error_;
};

TrackerStatus status_of(std::string_view s) {
  if (s == "resolved") return TrackerStatus::kResolved;
  if (s == "open") return TrackerStatus::kOpen;
  if (s == "undetermined") return TrackerStatus::kUndetermined;
  return TrackerStatus::kOther;
}

// {"status": ..., "fixed_version": ..., "urgency": ..., other keys skipped}
bool read_release(Walker& w, const std::string& where, TrackerEntry* e) {
  std::string status;
  bool ok = w.object([&](const std::string& key) {
    std::string* into = key == "status"          ? &status
                        : key == "fixed_version" ? &e->fixed_version
                        : key == "urgency"       ? &e->urgency
                                                 : nullptr;
    if (!into) return w.skip_value();
    if (!w.at('"')) return w.fail(fmt::format("{}/{}: expected a string", where, key));
    return w.string(into);
  });
  e->status = status_of(status);
  return ok;
}

}  // namespace

std::string severity_from_urgency(std::string_view urgency) {
  while (!urgency.empty() && urgency.back() == '*') urgency.remove_suffix(1);
  if (urgency == "high" || urgency == "medium" || urgency == "low") return std::string(urgency);
  if (urgency == "unimportant") return "negligible";
  return "unknown";
}

Result<TrackerData> parse_tracker(std::string_view text,
                                  const std::unordered_set<std::string>& wanted,
                                  std::string_view codename) {
  TrackerData data;
  data.release = std::string(codename);
  Walker w(text);
  std::string where;  // "source/CVE/releases/codename" for errors inside kept parts
  bool ok = w.object([&](const std::string& source) {
    ++data.sources;
    if (!wanted.count(source)) return w.skip_value();
    std::vector<TrackerEntry>& entries = data.by_source[source];
    if (!w.at('{')) return w.fail(fmt::format("{}: expected an object of CVEs", source));
    return w.object([&](const std::string& cve) {
      if (!starts_with(cve, "CVE-")) return w.skip_value();
      if (!w.at('{')) return w.fail(fmt::format("{}/{}: expected an object", source, cve));
      return w.object([&](const std::string& key) {
        if (key != "releases") return w.skip_value();
        if (!w.at('{'))
          return w.fail(fmt::format("{}/{}/releases: expected an object", source, cve));
        return w.object([&](const std::string& release) {
          if (release != codename) return w.skip_value();
          where = fmt::format("{}/{}/releases/{}", source, cve, release);
          if (!w.at('{')) return w.fail(where + ": expected an object");
          TrackerEntry e;
          e.cve = cve;
          if (!read_release(w, where, &e)) return false;
          entries.push_back(std::move(e));
          return true;
        });
      });
    });
  });
  if (ok && !w.at_end()) ok = w.fail("data after the top-level object");
  if (!ok) return make_error("security tracker data: {}", w.error());
  return data;
}

Result<TrackerData> read_tracker_file(const std::string& path,
                                      const std::unordered_set<std::string>& wanted,
                                      std::string_view codename) {
  Fd fd = NINES_TRY(Fd::open(path, O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error(fmt::format("stat {}", path));
  if (!S_ISREG(st.st_mode)) return make_error("read {}: not a regular file", path);
  size_t size = static_cast<size_t>(st.st_size);
  if (size > kMaxTrackerBytes)
    return make_error("read {}: {} bytes, more than the limit of {}", path, size,
                      kMaxTrackerBytes);
  if (size == 0) return make_error("read {}: empty file", path);
  // MAP_POPULATE: one pass over the page cache instead of a fault per page.
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd.get(), 0);
  if (map == MAP_FAILED) return errno_error(fmt::format("mmap {}", path));
  auto data = parse_tracker(std::string_view(static_cast<const char*>(map), size), wanted,
                            codename);
  ::munmap(map, size);
  if (!data.ok()) return data.error().wrap(path);
  return data;
}

}  // namespace nines::advisor
