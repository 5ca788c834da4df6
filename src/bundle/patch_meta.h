// The `.nines.meta` section of a patch object (the output of `nines build`): UTF-8 JSON that
// names the kind, the target and the replaced functions. `bundle create` reads it to fill
// the manifest's target and to refuse a manifest that contradicts the patch.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "bundle/bundle.h"
#include "core/result.h"

namespace nines::bundle {

inline constexpr size_t kMaxMetaBytes = 1u << 20;

// Parses the ELF image in memory (libelf) and returns the JSON of its `.nines.meta` section.
// Fails when the bytes are not ELF, the section is missing, larger than kMaxMetaBytes, or not
// a JSON object with "format": 1.
Result<nlohmann::json> read_patch_meta(std::string_view elf_bytes);

// Fills the target fields (and kind) of `m` that are empty from the patch metadata, and
// fails naming the field when a field the manifest states differs from the patch:
// "manifest target.build_id 'ab..' contradicts the patch object ('cd..')".
Status reconcile_with_patch(Manifest& m, const nlohmann::json& meta);

// The payload of a bundle must be a patch object whose `.nines.meta` agrees with the
// manifest (kind, id, target): checked when a bundle is created and when it is verified, so
// a signed manifest can never describe other code than the payload it carries.
Status check_payload_matches(const Manifest& m, std::string_view payload);

}  // namespace nines::bundle
