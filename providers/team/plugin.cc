// The plugin's one exported symbol, portcullis_provider_entry (see portcullis/provider_registry.h).
#include "portcullis/provider_registry.h"
#include "team_provider.h"

PORTCULLIS_PROVIDER_PLUGIN("team", portcullis::team::registerProvider)
