// What the Repo may do to a Document beyond its public API.
#pragma once

#include <vector>

#include "portcullis/document.h"
#include "wire/change_codec.h"

namespace portcullis::detail {

struct DocumentAccess {
  // Applies plain changes parseChange() accepted (envelopes[i] with data[i]), as applyChanges()
  // would apply their bytes. Precondition: the document has no sealer. `data` is used up, but
  // its ops' storage is left for the caller to reuse.
  static ApplyReport applyParsed(Document& doc, std::vector<ChangeEnvelope> envelopes,
                                 std::vector<ChangeData>& data);
  // Applies sealed changes the document's sealer already parsed (checked and, for the team
  // provider, verified), opening each once: applyChanges() of their bytes would parse them again.
  // Precondition: the document has a sealer that can open.
  static ApplyReport applySealed(Document& doc, std::vector<ChangeEnvelope> envelopes);
};

}  // namespace portcullis::detail
