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
  // From now on, notes where each op applied (local or received) takes effect, until
  // takeChangedPaths. Costs one small record per op while on; nothing while off.
  static void recordPaths(Document& doc);
  // The paths noted since recordPaths, sorted and unique, and stops noting. A map op gives the
  // path of its key; a list op the path of its element's index now (where it was, for one
  // deleted); a text op the path of the text. Ops in objects no longer in the document (a
  // concurrent overwrite or delete of a parent) give none.
  static std::vector<Path> takeChangedPaths(Document& doc);
};

}  // namespace portcullis::detail
