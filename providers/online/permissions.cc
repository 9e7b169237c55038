// permissions.cc — the online provider's document permissions.

#include "permissions.h"

#include <fmt/format.h>

#include <algorithm>

namespace portcullis::online {

namespace {

constexpr std::string_view kAll = "*";

bool listCovers(const std::vector<std::string>& list, const DocumentId& doc) {
  if (list.empty()) return false;
  const std::string text = doc.toString();
  return std::any_of(list.begin(), list.end(),
                     [&](const std::string& entry) { return entry == kAll || entry == text; });
}

void addAll(std::vector<std::string>& into, const std::vector<std::string>& from) {
  into.insert(into.end(), from.begin(), from.end());
  std::sort(into.begin(), into.end());
  into.erase(std::unique(into.begin(), into.end()), into.end());
}

Result<void> checkList(const std::vector<std::string>& list, std::string_view name) {
  if (list.size() > kMaxPermissionEntries) {
    return Error(Errc::Malformed, fmt::format("{}: {} entries (at most {})", name, list.size(),
                                              kMaxPermissionEntries));
  }
  for (const std::string& entry : list) {
    if (auto ok = checkPermissionEntry(entry); !ok) {
      return Error(Errc::Malformed, fmt::format("{}: {}", name, ok.error().message()));
    }
  }
  return {};
}

}  // namespace

bool Permissions::mayRead(const DocumentId& doc) const {
  return listCovers(read, doc) || listCovers(write, doc);
}

bool Permissions::mayWrite(const DocumentId& doc) const { return listCovers(write, doc); }

void Permissions::merge(const Permissions& other) {
  addAll(read, other.read);
  addAll(write, other.write);
}

Result<void> checkPermissionEntry(std::string_view entry) {
  if (entry == kAll || DocumentId::parse(entry)) return {};
  // The entry itself is not echoed: a malformed one may be a mistyped document ID, a secret
  // under the document-id provider and worth keeping out of logs here too.
  return Error(Errc::Malformed,
               fmt::format("an entry of {} bytes is neither \"*\" nor a document ID "
                           "(portcullis:...)", entry.size()));
}

Result<void> checkPermissions(const Permissions& permissions) {
  if (auto ok = checkList(permissions.read, "read"); !ok) return ok;
  return checkList(permissions.write, "write");
}

}  // namespace portcullis::online
