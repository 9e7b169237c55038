// json_edit.h — `portcullis doc set`: writes a JSON value at an RFC 6901 JSON Pointer.
//
// Maps along the pointer are created where missing; list elements must exist (or be the end,
// "-" or the length, to append at). Strings are written as plain string values, numbers as
// int64 where they fit and double otherwise.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "portcullis/document.h"
#include "portcullis/result.h"

namespace portcullis::tool {

// The reference tokens of `pointer` ("/todo/0/title" -> todo, 0, title; "~1" is '/', "~0" '~').
// Errc::Malformed for a pointer that does not start with '/' or has a bad escape.
Result<std::vector<std::string>> parseJsonPointer(std::string_view pointer);

// Sets the value at `pointer` to `value` inside `tx`, reading the current state from `doc` (the
// document `tx` edits). Every error names the part of the pointer where it failed ("/l/3: ...").
// On error nothing is meant to be committed: the caller rolls back.
Result<void> setAtPointer(Transaction& tx, const Document& doc, std::string_view pointer,
                          const nlohmann::json& value);

}  // namespace portcullis::tool
