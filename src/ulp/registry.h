// The in-process registry: what nines applied to a process lives in the process itself,
// in a small shared memfd mapping named "nines-registry" (visible in /proc/PID/maps as
// /memfd:nines-registry). Any later nines process finds and reads it; nothing goes stale
// when the process exits.
//
// Layout (little-endian), kRegistrySize bytes:
//   0   magic "NINESREG"            8 bytes
//   8   format version (1)          u32
//   12  active slot (0 or 1)        u32
//   16  generation                  u64 (grows with every update)
//   24  length of slot 0 JSON       u32
//   28  length of slot 1 JSON       u32
//   64  the switch journal (below), up to offset 4096
//   4096 + slot * kSlotSize: the JSON text of the registry
// An update writes the inactive slot, then the 32-byte header in one write, so a reader
// (or a crash) sees the old state or the new one, never a torn one.
//
// The code a switch writes (one 5-byte jump per function) cannot change in one write. So
// before writing any code, a switch records in the journal every write it will make (site,
// bytes before, bytes after), the generation the header will have once the switch commits,
// and the patch image it staged; it clears the journal once the header is written. A
// journal left behind (the patching process was killed between two writes) with an
// uncommitted generation names a half-done switch, which the next nines operation on the
// process rolls back (ulp::recover_interrupted_switch) before anything else.
//   64  magic "NINESJNL" | commit generation u64 | image base u64 | image size u64 |
//       count u32 | 4 bytes reserved | count entries of 48 bytes:
//       site u64 | length u8 | 7 bytes reserved | before[16] | after[16]
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace nines::ulp {

inline constexpr const char* kRegistryName = "nines-registry";
inline constexpr uint64_t kRegistrySize = 64 * 1024;
inline constexpr uint64_t kSlotOffset = 4096;
inline constexpr uint64_t kSlotSize = 30 * 1024;

struct AppliedFunction {
  std::string name;          // the target's function
  std::string replacement;
  uint64_t address = 0;      // entry of the target function
  uint64_t size = 0;         // its length in bytes
  uint64_t site = 0;         // where the jump is written (after endbr64)
  std::string original_hex;  // the bytes at `site` before the jump
  uint64_t destination = 0;  // the replacement's address
};

struct AppliedPatch {
  std::string id;
  int64_t version = 0;
  std::string target_name, target_build_id, target_path;
  int64_t applied_unix = 0;
  uint64_t base = 0, size = 0;  // the patch code mapping
  std::string digest;  // sha256 of the patch object ("" when recorded by an older nines)
  std::vector<AppliedFunction> function_details;
  // Names of the replaced functions (for display and other parts).
  std::vector<std::string> functions;
};

// Patch code that a switch retired (replaced or reverted) but could not unmap yet because
// a thread was still in it; every later switch tries again.
struct RetiredRange {
  uint64_t base = 0, size = 0;
  std::string id;
};

struct JournalWrite {
  uint64_t site = 0;
  std::string before, after;  // at most 16 bytes each, of the same length
};

struct Journal {
  uint64_t commit_generation = 0;  // the header's generation once the switch committed
  uint64_t image_base = 0, image_size = 0;  // the patch image the switch staged (or 0)
  std::vector<JournalWrite> writes;
};

inline constexpr uint64_t kJournalOffset = 64;
inline constexpr size_t kJournalMaxWrites = (kSlotOffset - kJournalOffset - 48) / 48;

// The journal's bytes; fails beyond kJournalMaxWrites writes or 16 bytes per write.
Result<std::string> encode_journal(const Journal& j);
// nullopt when no journal is recorded (cleared or never written); bounds are checked.
Result<std::optional<Journal>> decode_journal(std::string_view image);

struct Registry {
  std::vector<AppliedPatch> patches;
  std::vector<RetiredRange> retired;
  uint64_t generation = 0;
  uint64_t address = 0;      // where the registry is mapped in the process
  uint32_t active_slot = 0;
  std::optional<Journal> journal;  // a switch in progress, or one interrupted
  // True when the journal names a switch that never committed (half done, to roll back).
  bool interrupted() const { return journal && journal->commit_generation > generation; }

  const AppliedPatch* find_by_target(const std::string& build_id) const;
  const AppliedPatch* find_by_id(const std::string& id) const;
};

nlohmann::json registry_to_json(const Registry& r);
Result<Registry> registry_from_json(std::string_view text);

// Serializes the header for a given state (used by the writer and tests).
std::string encode_header(uint32_t active_slot, uint64_t generation, uint32_t len0, uint32_t len1);
// Decodes a full registry image (kRegistrySize bytes or fewer: bounds are checked).
Result<Registry> decode_registry(std::string_view image);

// Reads the registry of a running process: nullopt when nines never patched it.
// Every field read from the process is bounds-checked.
Result<std::optional<Registry>> read_registry(pid_t pid);

// The address of the registry mapping of a process, if any (from /proc/PID/maps).
Result<std::optional<uint64_t>> find_registry_mapping(pid_t pid);

}  // namespace nines::ulp
