#pragma once
// How deep a JSON text nests, counted on its bytes before any parser builds or walks a
// document (nlohmann's parser and serializer recurse: a 100,000-deep text overflows the
// stack). One scanner for the server's request bodies and the agent's server answers.

#include <cstddef>
#include <string_view>

namespace nines {

// True when `text` nests arrays/objects at most `max_depth` deep. Brackets inside strings
// (escapes included) are skipped; unbalanced text is left for the parser to refuse.
bool json_depth_within(std::string_view text, size_t max_depth);

}  // namespace nines
