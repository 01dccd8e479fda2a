#pragma once
// Limits on JSON that reaches browsers from tokens and the app (member info).

#include <rapidjson/document.h>

namespace comet {

/** How deep member info may nest: rapidjson's Writer recurses once per level. */
constexpr int kMaxInfoDepth = 32;

/** Whether `root` nests at most `max_depth` levels (checked iteratively). */
bool nests_at_most(const rapidjson::Value& root, int max_depth);

}  // namespace comet
