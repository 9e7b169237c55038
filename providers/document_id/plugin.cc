// plugin.cc — the plugin's one exported symbol (architecture §8).
#include "document_id.h"

PORTCULLIS_PROVIDER_PLUGIN("document-id", portcullis::documentid::registerProvider)
