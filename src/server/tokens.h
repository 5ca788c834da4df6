// Bearer tokens of the patch server. A token is "n9<k>_" + 64 hex characters of
// randombytes (256 bits), where <k> says the kind (a admin, e enroll, m machine, r mirror).
// The server stores only SHA-256(token); a presented token is hashed and its row looked up,
// then the stored hash is compared with the computed one in constant time.
#pragma once

#include <string>
#include <string_view>

namespace nines::server {

// A fresh random token of `kind` ("admin", "enroll", "machine", "mirror").
std::string generate_token(std::string_view kind);
// Lowercase hex SHA-256 of the token text.
std::string hash_token(std::string_view token);
// True when a and b are equal; the time taken depends only on their lengths.
bool constant_time_equal(std::string_view a, std::string_view b);
// True when `token` has the shape of a token (prefix and 64 lowercase hex characters):
// anything else is refused before touching the database.
bool token_well_formed(std::string_view token);

}  // namespace nines::server
