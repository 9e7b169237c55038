// tests/providers/team/outcome.h — a vector's expected outcome and what a TeamGraph gives, in the
// vector's names (ids for links, names for keys), as the reference model's outcome() compares
// them: members, admins, removed, devices, servers, invalid, dropped, and where the vector has
// them access, send, changes and unbacked. Shared by the golden-vector and differential tests.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "team_graph.h"
#include "vector_builder.h"

namespace portcullis::team::vectors {

[[nodiscard]] nlohmann::json sortedStrings(std::vector<std::string> xs);
// The id of a hash the graph reports; one keyed by H256 of a link's message instead of its link
// hash (§2.2) is named as such.
[[nodiscard]] std::string idOf(const BuiltVector& bv, const Hash& h);
// Link ids (sorted) of hashes the graph reports; names (sorted) of keys.
[[nodiscard]] nlohmann::json ids(const BuiltVector& bv, const std::vector<Hash>& hs);
[[nodiscard]] nlohmann::json names(const BuiltVector& bv, const std::vector<Key>& ks);

// The vector's `expect`, lists sorted and empty lists filled in.
[[nodiscard]] nlohmann::json expectedOutcome(const nlohmann::json& vector);
// What `g` says for every field of `exp`.
[[nodiscard]] nlohmann::json observedOutcome(const TeamGraph& g, const BuiltVector& bv,
                                             const nlohmann::json& exp);
// "field: expected X, got Y" for every field that differs; empty if none does.
[[nodiscard]] std::string differences(const nlohmann::json& exp, const nlohmann::json& got);

}  // namespace portcullis::team::vectors
