// providers/team/contests.h — the contests and kills of the team spec's §4.5 (strong removal,
// no witnesses; v3.7's K4 rules), computed from one pass's valid links.
//
// This is the part of the spec most likely to be revised after review: everything about
// contests, victims, "rests on", mutual answers, seniority, K4's forks and K5's conflicting
// admissions lives here, behind the pass machinery of evaluator.h, so a revision touches this
// file and its tests only. Not thread-safe; called by Evaluator::evaluate.
#pragma once

#include <cstdint>
#include <vector>

#include "evaluator.h"

namespace portcullis::team::detail {

// The kills of pass `pass` (§4.5), as node indices. Marks in `active` the links of the pass that
// are valid and not condemned (§10's unbacked links need them). May run side passes through
// `ev.resting`.
std::vector<std::uint32_t> computeKills(const Evaluator& ev, const PassState& pass,
                                        std::vector<std::uint8_t>& active);

}  // namespace portcullis::team::detail
