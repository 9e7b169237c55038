// plugin.cc — the plugin's one exported symbol (architecture §8).
#include "online.h"

PORTCULLIS_PROVIDER_PLUGIN("online", portcullis::online::registerProvider)
