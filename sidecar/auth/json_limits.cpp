#include "auth/json_limits.h"

#include <utility>
#include <vector>

namespace comet {

bool nests_at_most(const rapidjson::Value& root, int max_depth) {
  std::vector<std::pair<const rapidjson::Value*, int>> stack{{&root, 1}};
  while (!stack.empty()) {
    const auto [value, depth] = stack.back();
    stack.pop_back();
    if (depth > max_depth) return false;
    if (value->IsObject()) {
      for (const auto& member : value->GetObject()) stack.emplace_back(&member.value, depth + 1);
    } else if (value->IsArray()) {
      for (const auto& element : value->GetArray()) stack.emplace_back(&element, depth + 1);
    }
  }
  return true;
}

}  // namespace comet
