// Bearer tokens of the patch server. A token is "n9<k>_" + 64 hex characters of
// randombytes (256 bits), where <k> says the kind (a admin, e enroll, m machine, r mirror).
// The server stores only SHA-256(token); a presented token is hashed and its row looked up,
// then the stored hash is compared with the computed one in constant time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nines::server {

// What a token may do: admin everything; enroll only enroll machines into its tier;
// machine check in, download, report, read its own reports (one enrolled machine); mirror
// read the catalogue (for chained servers).
enum class TokenKind { kAdmin, kEnroll, kMachine, kMirror };
inline constexpr TokenKind kTokenKinds[] = {TokenKind::kAdmin, TokenKind::kEnroll,
                                            TokenKind::kMachine, TokenKind::kMirror};
// "admin", "enroll", "machine", "mirror".
std::string_view to_string(TokenKind kind);
std::optional<TokenKind> parse_token_kind(std::string_view text);
// How long a token of `kind` lives unless its creator says otherwise: 0 (never) for admin,
// machine and mirror tokens; 30 days for enroll tokens, which provision machines and are
// copied around for it.
int64_t default_token_lifetime_s(TokenKind kind);

// A fresh random token of `kind`.
std::string generate_token(TokenKind kind);
// Lowercase hex SHA-256 of the token text.
std::string hash_token(std::string_view token);
// The public name of a token in lists and revocations: the first 16 hex digits of its hash
// (which reveals nothing of the token).
std::string token_id(std::string_view hash_hex);
// True when a and b are equal; the time taken depends only on their lengths.
bool constant_time_equal(std::string_view a, std::string_view b);
// True when `token` has the shape of a token (prefix and 64 lowercase hex characters):
// anything else is refused before touching the database.
bool token_well_formed(std::string_view token);

}  // namespace nines::server
