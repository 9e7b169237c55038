// The plugin's one exported symbol, portcullis_provider_entry (see portcullis/provider_registry.h).
#include "portcullis/provider_registry.h"
#include "shared_key.h"

PORTCULLIS_PROVIDER_PLUGIN("shared-key", portcullis::sharedkey::registerProvider)
