// permissions.h — what the `online` provider lets a user do with documents: a read list and a
// write list, each entry a document ID (its text form, "portcullis:...") or "*" for every
// document. Write implies read. Roles map to permission sets in the identity service's config;
// a user's set is the union of its roles' sets and what the webhook granted.
//
// Plain value; safe to copy between threads.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "portcullis/ids.h"
#include "portcullis/result.h"

namespace portcullis::online {

// The most entries a permission list may hold (a certificate carries both lists).
inline constexpr std::size_t kMaxPermissionEntries = 1024;

struct Permissions {
  std::vector<std::string> read;   // "*" or DocumentId::toString() forms
  std::vector<std::string> write;  // write implies read

  bool mayRead(const DocumentId& doc) const;
  bool mayWrite(const DocumentId& doc) const;
  // Adds `other`'s entries (a union); keeps each list sorted and without repeats.
  void merge(const Permissions& other);

  friend bool operator==(const Permissions&, const Permissions&) = default;
};

// Checks one entry: "*" or a document ID's text form. Malformed otherwise, naming the entry.
Result<void> checkPermissionEntry(std::string_view entry);
// Checks every entry of both lists and their sizes.
Result<void> checkPermissions(const Permissions& permissions);

}  // namespace portcullis::online
