// plugin.cc — the plugin's one exported symbol (STYLE §6).
#include "document_id.h"

PORTCULLIS_PROVIDER_PLUGIN("document-id", portcullis::documentid::registerProvider)
