// online.h — the `online` auth provider: identities from the application's own identity provider
// (a JWT verified locally, or the application's webhook), then peer certificates that work
// offline. providers/online/README.md is the user guide.
//
// Layer: an AuthProvider plugin (libportcullis-auth-online.so), or linked directly with
// registerProvider(). Its table in a config file:
//
//   app-id       = "com.example.notes"   # required; peers of different apps never meet
//   identity     = "device.key"          # required; this node's key, created (0600) if absent
//   certificate  = "device.cert"         # this node's certificate (`portcullis login` writes
//                                        # it); required unless the node is an identity service
//   service-keys = ["<hex>", ...]        # required; the identity services whose certificates
//                                        # this node accepts (a list, so a key can be rotated)
//   clock-skew   = 60                    # optional; seconds of clock difference allowed
//   revocations  = "revocations.bin"     # optional; where the newest revocation list is kept
//   [auth.online.service]                # optional; this node is an identity service
//                                        # (service.h lists its keys)
//
// Every peer enforces the permissions of the other's certificate: okToAdvertise, okToSend and
// okToRequest need read, okToReceive needs write. Runs on its Repo's executor.
#pragma once

#include "portcullis/provider_registry.h"
#include "portcullis/result.h"

namespace portcullis::online {

// Adds the `online` factory to `registry`. Errc::Config if the name is already registered.
// create() checks the table once and fails with Errc::Config naming the file, line and key:
// unknown keys, a missing app-id or service key, a certificate file that is missing, not signed
// by a service key, issued to another key or app, or expired ("run `portcullis login`").
Result<void> registerProvider(ProviderRegistry& registry);

}  // namespace portcullis::online
