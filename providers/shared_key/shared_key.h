// shared_key.h — the `shared-key` auth provider (architecture §7): everyone who holds one network
// key is trusted with every document, but every peer is a specific device key, proven by Secure
// Scuttlebutt's secret handshake (shs1), and every frame after it travels in box-stream.
//
// Layer: an AuthProvider plugin. Link the static library and call registerProvider() to use it
// without loading anything, or let ProviderRegistry load libportcullis-auth-shared-key.so by
// name. Either way the provider is made from the `[auth.shared-key]` table of a config file:
//
//   network-key = "<64 hex or base64>"   # required; the shared secret (SSB's caps.shs)
//   identity    = "device.key"           # required; this device's key file (DeviceKey::save,
//                                        # or an ssb-keys secret file), mode 0600
//   deny        = ["<hex or @base64.ed25519>", ...]   # optional; devices this node refuses
//
// The provider's objects run on their Repo's executor, like every AuthProvider: authenticate(),
// the hooks and reload() must all be called there (`portcullis serve` posts its SIGHUP reload to
// it). README.md in this folder is the user documentation, with the security notes.
#pragma once

#include "portcullis/provider_registry.h"
#include "portcullis/result.h"

namespace portcullis::sharedkey {

// Adds the `shared-key` factory to `registry`. Errc::Config if the name is already registered.
// The factory's create() checks the table once: unknown keys, a missing or malformed
// network-key, an unreadable, world- or group-readable or broken identity file and a deny entry
// that is not a device public key are Errc::Config errors naming the file, line and key.
Result<void> registerProvider(ProviderRegistry& registry);

}  // namespace portcullis::sharedkey
