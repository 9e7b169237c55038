// document_id.h — the `document-id` auth provider (architecture §7): the Rumpelstiltskin rule.
// Knowing a document's ID is the capability to read and write it; IDs carry 128 random bits and are
// bearer secrets. Peers still authenticate with Secure Scuttlebutt's secret handshake, under a
// fixed, published network key, so that a dialer pins its server's key (no one in the middle)
// and every frame is encrypted; every device has its own key, made on first use.
//
// Layer: an AuthProvider plugin (libportcullis-auth-document-id.so), or linked directly with
// registerProvider(). Its table in a config file:
//
//   identity = "device.key"   # required; this install's key file, created (mode 0600) if absent
//   upstream = ["net:HOST:PORT~shs:KEY", ...]   # optional; the sync servers this node uses
//   state    = "documents"    # optional; where which document belongs to which upstream is kept
//
// The rule, as the hooks apply it:
//   - upstreams are the servers in `upstream` and any server this node dialed itself (whose key
//     its dial address pinned); dialAddresses() asks the application to dial the former;
//   - a document is announced and pushed only to the upstreams it was created with (documents
//     made here go to every upstream) or found from (the upstream that answered a request);
//   - requests, which name a document, go only to upstreams; any other peer gets a document only
//     after it names the document itself, by asking for it or sending changes to it;
//   - `unavailable` for an unknown and for a forbidden document is the same (the Repo sees to
//     it), so IDs cannot be enumerated.
// Which document came from where is kept in `state` (appended and fsync'd, mode 0600: it holds
// IDs); without it, in memory only (README.md says what that means after a restart).
//
// Runs on its Repo's executor, like every AuthProvider.
#pragma once

#include <string_view>

#include "portcullis/provider_registry.h"
#include "portcullis/result.h"

namespace portcullis::documentid {

// The published network key of the document-id mode: SHA-256 of "portcullis/document-id/v1".
inline constexpr std::string_view kNetworkKeyHex =
    "83d9d208c54174b886f498131c6526988b2a78c0c7ffa5e4a1e23322adafbd5e";

// Adds the `document-id` factory to `registry`. Errc::Config if the name is already registered.
// create() refuses unknown keys, a missing identity, a key file it can neither read nor create,
// and an upstream that is not net:HOST:PORT~shs:KEY, naming the file, line and key.
Result<void> registerProvider(ProviderRegistry& registry);

}  // namespace portcullis::documentid
