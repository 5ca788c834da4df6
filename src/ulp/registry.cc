#include "ulp/registry.h"

#include <cstring>
#include <stdexcept>

#include "proc/maps.h"
#include "proc/memory.h"

namespace nines::ulp {

using nlohmann::json;

static constexpr char kMagic[8] = {'N', 'I', 'N', 'E', 'S', 'R', 'E', 'G'};

const AppliedPatch* Registry::find_by_target(const std::string& build_id) const {
  for (const auto& p : patches)
    if (p.target_build_id == build_id) return &p;
  return nullptr;
}

const AppliedPatch* Registry::find_by_id(const std::string& id) const {
  for (const auto& p : patches)
    if (p.id == id) return &p;
  return nullptr;
}

json registry_to_json(const Registry& r) {
  json ps = json::array();
  for (const auto& p : r.patches) {
    json fs = json::array();
    for (const auto& f : p.function_details)
      fs.push_back({{"name", f.name}, {"replacement", f.replacement}, {"address", f.address}, {"size", f.size},
                    {"site", f.site}, {"original", f.original_hex}, {"destination", f.destination}});
    json e = {{"id", p.id}, {"version", p.version}, {"target_name", p.target_name},
              {"target_build_id", p.target_build_id}, {"target_path", p.target_path},
              {"applied_unix", p.applied_unix}, {"base", p.base}, {"size", p.size},
              {"functions", fs}};
    if (!p.digest.empty()) e["digest"] = p.digest;  // optional: older readers ignore it
    ps.push_back(std::move(e));
  }
  json rs = json::array();
  for (const auto& r : r.retired) rs.push_back({{"base", r.base}, {"size", r.size}, {"id", r.id}});
  return {{"patches", ps}, {"retired", rs}};
}

namespace {
// A member that must be an integer. nlohmann's get<int64_t>() converts a floating-point
// value by a plain cast, undefined when it is out of range (1e24): never on hostile data.
struct NotAnInteger : std::runtime_error {
  using std::runtime_error::runtime_error;
};
template <typename T>
T integer_at(const json& o, const char* key) {
  const json& v = o.at(key);
  if (!v.is_number_integer()) throw NotAnInteger(fmt::format("'{}' is not an integer", key));
  return v.get<T>();
}
}  // namespace

Result<Registry> registry_from_json(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("patches") || !j["patches"].is_array())
    return make_error("registry: not a registry document");
  Registry r;
  try {
    for (const auto& p : j["patches"]) {
      AppliedPatch a;
      a.id = p.at("id").get<std::string>();
      a.version = integer_at<int64_t>(p, "version");
      a.target_name = p.at("target_name").get<std::string>();
      a.target_build_id = p.at("target_build_id").get<std::string>();
      a.target_path = p.at("target_path").get<std::string>();
      a.applied_unix = integer_at<int64_t>(p, "applied_unix");
      a.base = integer_at<uint64_t>(p, "base");
      a.size = integer_at<uint64_t>(p, "size");
      a.digest = p.value("digest", std::string());
      for (const auto& f : p.at("functions")) {
        AppliedFunction af;
        af.name = f.at("name").get<std::string>();
        af.replacement = f.at("replacement").get<std::string>();
        af.address = integer_at<uint64_t>(f, "address");
        af.size = f.contains("size") ? integer_at<uint64_t>(f, "size") : 0;
        af.site = integer_at<uint64_t>(f, "site");
        af.original_hex = f.at("original").get<std::string>();
        af.destination = integer_at<uint64_t>(f, "destination");
        a.functions.push_back(af.name);
        a.function_details.push_back(std::move(af));
      }
      r.patches.push_back(std::move(a));
    }
    if (j.contains("retired"))
      for (const auto& x : j["retired"])
        r.retired.push_back({integer_at<uint64_t>(x, "base"), integer_at<uint64_t>(x, "size"),
                             x.at("id").get<std::string>()});
  } catch (const json::exception& e) {
    return make_error("registry: malformed entry: {}", e.what());
  } catch (const NotAnInteger& e) {
    return make_error("registry: malformed entry: {}", e.what());
  }
  return r;
}

std::string encode_header(uint32_t active_slot, uint64_t generation, uint32_t len0, uint32_t len1) {
  std::string h(32, '\0');
  std::memcpy(h.data(), kMagic, 8);
  uint32_t fmt = 1;
  std::memcpy(h.data() + 8, &fmt, 4);
  std::memcpy(h.data() + 12, &active_slot, 4);
  std::memcpy(h.data() + 16, &generation, 8);
  std::memcpy(h.data() + 24, &len0, 4);
  std::memcpy(h.data() + 28, &len1, 4);
  return h;
}

namespace {
constexpr char kJournalMagic[8] = {'N', 'I', 'N', 'E', 'S', 'J', 'N', 'L'};
constexpr size_t kJournalHead = 48, kJournalEntry = 48;
}  // namespace

Result<std::string> encode_journal(const Journal& j) {
  if (j.writes.size() > kJournalMaxWrites)
    return make_error("registry journal: {} writes, more than {}", j.writes.size(), kJournalMaxWrites);
  std::string out(kJournalHead + j.writes.size() * kJournalEntry, '\0');
  std::memcpy(out.data(), kJournalMagic, 8);
  std::memcpy(out.data() + 8, &j.commit_generation, 8);
  std::memcpy(out.data() + 16, &j.image_base, 8);
  std::memcpy(out.data() + 24, &j.image_size, 8);
  uint32_t count = static_cast<uint32_t>(j.writes.size());
  std::memcpy(out.data() + 32, &count, 4);
  for (size_t i = 0; i < j.writes.size(); ++i) {
    const JournalWrite& w = j.writes[i];
    if (w.before.size() != w.after.size() || w.before.size() > 16)
      return make_error("registry journal: a write of {} bytes over {}", w.after.size(), w.before.size());
    char* e = out.data() + kJournalHead + i * kJournalEntry;
    std::memcpy(e, &w.site, 8);
    e[8] = static_cast<char>(w.before.size());
    std::memcpy(e + 16, w.before.data(), w.before.size());
    std::memcpy(e + 32, w.after.data(), w.after.size());
  }
  return out;
}

Result<std::optional<Journal>> decode_journal(std::string_view image) {
  if (image.size() < kJournalOffset + kJournalHead) return std::optional<Journal>();
  std::string_view j = image.substr(kJournalOffset);
  if (std::memcmp(j.data(), kJournalMagic, 8) != 0) return std::optional<Journal>();
  Journal out;
  uint32_t count;
  std::memcpy(&out.commit_generation, j.data() + 8, 8);
  std::memcpy(&out.image_base, j.data() + 16, 8);
  std::memcpy(&out.image_size, j.data() + 24, 8);
  std::memcpy(&count, j.data() + 32, 4);
  if (count > kJournalMaxWrites || kJournalHead + count * kJournalEntry > j.size())
    return make_error("registry journal: {} writes, out of range", count);
  for (uint32_t i = 0; i < count; ++i) {
    const char* e = j.data() + kJournalHead + i * kJournalEntry;
    JournalWrite w;
    std::memcpy(&w.site, e, 8);
    size_t len = static_cast<uint8_t>(e[8]);
    if (len == 0 || len > 16) return make_error("registry journal: a write of {} bytes", len);
    w.before.assign(e + 16, len);
    w.after.assign(e + 32, len);
    out.writes.push_back(std::move(w));
  }
  return std::optional<Journal>(std::move(out));
}

Result<Registry> decode_registry(std::string_view image) {
  if (image.size() < 32 || std::memcmp(image.data(), kMagic, 8) != 0)
    return make_error("registry: bad magic");
  uint32_t fmt, slot, len[2];
  uint64_t gen;
  std::memcpy(&fmt, image.data() + 8, 4);
  std::memcpy(&slot, image.data() + 12, 4);
  std::memcpy(&gen, image.data() + 16, 8);
  std::memcpy(&len[0], image.data() + 24, 4);
  std::memcpy(&len[1], image.data() + 28, 4);
  if (fmt != 1) return make_error("registry: format {} is not one this nines reads", fmt);
  if (slot > 1) return make_error("registry: active slot {} out of range", slot);
  if (len[slot] > kSlotSize) return make_error("registry: slot length {} out of range", len[slot]);
  uint64_t off = kSlotOffset + slot * kSlotSize;
  auto journal = NINES_TRY(decode_journal(image));
  if (gen == 0 && len[slot] == 0) {
    Registry empty;
    empty.journal = std::move(journal);
    return empty;
  }
  if (off + len[slot] > image.size()) return make_error("registry: slot beyond the mapping");
  auto r = registry_from_json(image.substr(off, len[slot]));
  if (!r) return r;
  r->generation = gen;
  r->active_slot = slot;
  r->journal = std::move(journal);
  return r;
}

Result<std::optional<uint64_t>> find_registry_mapping(pid_t pid) {
  auto maps = NINES_TRY(proc::read_maps(pid));
  const std::string name = std::string("/memfd:") + kRegistryName;
  for (const auto& m : maps)
    if (m.path == name && m.size() >= kRegistrySize) return std::optional<uint64_t>(m.start);
  return std::optional<uint64_t>();
}

Result<std::optional<Registry>> read_registry(pid_t pid) {
  auto addr = NINES_TRY(find_registry_mapping(pid));
  if (!addr) return std::optional<Registry>();
  auto mem = NINES_TRY(proc::ProcessMemory::open(pid, false));
  std::string image = NINES_TRY(mem.read(*addr, kRegistrySize));
  auto r = decode_registry(image);
  if (!r) return r.error().wrap(fmt::format("pid {}", pid));
  r->address = *addr;
  return std::optional<Registry>(std::move(*r));
}

}  // namespace nines::ulp
