// team.h (installed as <portcullis/providers/team.h>) — the `team` auth provider for a program
// that links it statically (libportcullis-team.a) instead of loading libportcullis-auth-team.so:
// one call adds its factory to the program's ProviderRegistry, and the provider is then made, as
// every provider is, from the `[auth.team]` table of a config (team_provider.h lists its keys;
// README.md in this folder is the user guide).
//
// Call it at start-up, on the thread that fills the registry; the providers it makes run on their
// Repo's executor.
#pragma once

#include "portcullis/provider_registry.h"
#include "portcullis/result.h"

namespace portcullis::team {

// Adds the `team` factory to `registry`. The factory's create() checks the table: unknown keys,
// a missing `state`, a change-wait outside 1..600000 ms, and a state directory that does not
// open are Errc::Config errors naming the file, line and key.
Result<void> registerProvider(ProviderRegistry& registry);

}  // namespace portcullis::team
