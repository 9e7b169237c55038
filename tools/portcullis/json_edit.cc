// json_edit.cc — see json_edit.h.

#include "json_edit.h"

#include <charconv>
#include <limits>

namespace portcullis::tool {

namespace {

Error bad(std::string message) { return Error(Errc::Malformed, std::move(message)); }

// Where a value goes: a key of a map, or an index of a list (set, or insert at the end).
struct Slot {
  ObjId obj;
  std::string key;
  std::size_t index = 0;
  bool isList = false;
  bool append = false;
};

Result<ScalarValue> scalar(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null: return ScalarValue(Null{});
    case nlohmann::json::value_t::boolean: return ScalarValue(v.get<bool>());
    case nlohmann::json::value_t::number_integer: return ScalarValue(v.get<std::int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      auto u = v.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return ScalarValue(static_cast<double>(u));
      }
      return ScalarValue(static_cast<std::int64_t>(u));
    }
    case nlohmann::json::value_t::number_float: return ScalarValue(v.get<double>());
    case nlohmann::json::value_t::string: return ScalarValue(v.get<std::string>());
    default: return bad("cannot store this JSON value");
  }
}

Result<void> write(Transaction& tx, const Slot& slot, const nlohmann::json& value);

Result<void> fill(Transaction& tx, const ObjId& obj, const nlohmann::json& value) {
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      if (auto ok = write(tx, Slot{.obj = obj, .key = key}, item); !ok) return ok;
    }
  } else {
    for (std::size_t i = 0; i < value.size(); ++i) {
      Slot slot{.obj = obj, .key = {}, .index = i, .isList = true, .append = true};
      if (auto ok = write(tx, slot, value[i]); !ok) return ok;
    }
  }
  return {};
}

Result<void> write(Transaction& tx, const Slot& slot, const nlohmann::json& value) {
  if (value.is_object() || value.is_array()) {
    const ObjType type = value.is_object() ? ObjType::Map : ObjType::List;
    auto made = !slot.isList   ? tx.putObject(slot.obj, slot.key, type)
                : slot.append ? tx.insertObject(slot.obj, slot.index, type)
                              : tx.setObject(slot.obj, slot.index, type);
    if (!made) return made.error();
    return fill(tx, *made, value);
  }
  auto v = scalar(value);
  if (!v) return v.error();
  if (!slot.isList) return tx.put(slot.obj, slot.key, std::move(*v));
  if (slot.append) return tx.insert(slot.obj, slot.index, std::move(*v));
  return tx.set(slot.obj, slot.index, std::move(*v));
}

std::string prefix(const std::vector<std::string>& tokens, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += "/" + tokens[i];
  return out;
}

// A list index token: digits without a leading zero, or "-" (the end).
Result<std::size_t> listIndex(const std::string& token, std::size_t length, bool last) {
  if (token == "-" && last) return length;
  std::size_t index = 0;
  const char* end = token.data() + token.size();
  auto [p, ec] = std::from_chars(token.data(), end, index);
  if (token.empty() || ec != std::errc() || p != end || (token.size() > 1 && token[0] == '0')) {
    return bad("'" + token + "' is not a list index");
  }
  if (index > length || (index == length && !last)) {
    return bad("index " + token + " is out of range (the list has " + std::to_string(length) +
               " elements)");
  }
  return index;
}

}  // namespace

Result<std::vector<std::string>> parseJsonPointer(std::string_view pointer) {
  std::vector<std::string> tokens;
  if (pointer.empty()) return tokens;
  if (pointer[0] != '/') return bad("a JSON Pointer starts with '/'");
  std::string token;
  for (std::size_t i = 1; i <= pointer.size(); ++i) {
    if (i == pointer.size() || pointer[i] == '/') {
      tokens.push_back(std::move(token));
      token.clear();
    } else if (pointer[i] == '~') {
      if (i + 1 >= pointer.size() || (pointer[i + 1] != '0' && pointer[i + 1] != '1')) {
        return bad("'~' in a JSON Pointer must be followed by 0 or 1");
      }
      token += pointer[++i] == '0' ? '~' : '/';
    } else {
      token += pointer[i];
    }
  }
  return tokens;
}

Result<void> setAtPointer(Transaction& tx, const Document& doc, std::string_view pointer,
                          const nlohmann::json& value) {
  auto tokens = parseJsonPointer(pointer);
  if (!tokens) return tokens.error();
  if (tokens->empty()) return bad("the pointer must name a key below the root, e.g. /title");
  ObjId obj = ObjId::root();
  ObjType type = ObjType::Map;
  for (std::size_t i = 0; i < tokens->size(); ++i) {
    const std::string& token = (*tokens)[i];
    const bool last = i + 1 == tokens->size();
    Slot slot{.obj = obj, .key = {}, .index = 0, .isList = type == ObjType::List, .append = false};
    std::optional<Value> current;
    if (type == ObjType::Map) {
      slot.key = token;
      current = doc.get(obj, token);
    } else {
      auto index = listIndex(token, doc.length(obj), last);
      if (!index) return bad(prefix(*tokens, i + 1) + ": " + index.error().message());
      slot.index = *index;
      slot.append = *index == doc.length(obj);
      if (!slot.append) current = doc.get(obj, *index);
    }
    if (last) {
      auto written = write(tx, slot, value);
      if (!written) {
        return Error(written.error().code(),
                     prefix(*tokens, i + 1) + ": " + written.error().message());
      }
      return written;
    }
    const auto* ref = current ? std::get_if<ObjectRef>(&*current) : nullptr;
    if (ref != nullptr && ref->type != ObjType::Text) {
      obj = ref->id;
      type = ref->type;
    } else if (!current && type == ObjType::Map) {
      auto made = tx.putObject(obj, token, ObjType::Map);
      if (!made) {
        return Error(made.error().code(), prefix(*tokens, i + 1) + ": " + made.error().message());
      }
      obj = *made;
    } else {
      return bad(prefix(*tokens, i + 1) + " is not a map or a list");
    }
  }
  return {};
}

}  // namespace portcullis::tool
