// bounds.h — the bounds every part of the `online` provider applies to what a user, a token, an
// identity provider or a peer hands it: one place, so that a certificate the service issues is
// always one its peers accept.
#pragma once

#include <cstddef>

namespace portcullis::online {

// A user ID: 1..256 bytes of printable ASCII (JWT `sub`, the webhook's userId, a certificate's).
inline constexpr std::size_t kMaxUserIdBytes = 256;
// A role: 1..128 bytes of printable ASCII; at most 64 of them.
inline constexpr std::size_t kMaxRoleBytes = 128;
inline constexpr std::size_t kMaxRoles = 64;
// A login token, as the device sends it and as the JWT verifier and the webhook take it.
inline constexpr std::size_t kMaxTokenBytes = 16u << 10;
// The webhook's clientInfo, passed on to the device as JSON text.
inline constexpr std::size_t kMaxClientInfoBytes = 4096;

}  // namespace portcullis::online
