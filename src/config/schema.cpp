// Key-table queries: the list of keys, sections, rule texts and "did you mean" suggestions.
#include "config/schema.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>

namespace ng::config_detail {

namespace {

std::string num(double v) {
  if (v == kPi) return "pi";
  return fmt::format("{}", v);
}

std::string join_choices(const std::vector<std::string_view>& c) {
  std::string s;
  for (size_t i = 0; i < c.size(); ++i) s += (i ? " | " : "") + std::string(c[i]);
  return s;
}

std::string last_component(const std::string& path) {
  auto dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
size_t edit_distance(const std::string& a, const std::string& b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[n][m];
}

struct Tables {
  std::vector<KeyInfo> keys;
  std::set<std::string> key_set;
  std::set<std::string> sections;
};

const Tables& tables() {
  static const Tables t = [] {
    Tables t;
    const Config defaults;
    visit_config(defaults, [&](const char* path, const auto& field, const Rule& rule) {
      t.keys.push_back({path, type_name(&field), field_to_json(field), rule.describe()});
      t.key_set.insert(path);
      std::string p = path;
      for (auto dot = p.rfind('.'); dot != std::string::npos; dot = p.rfind('.')) {
        p.resize(dot);
        t.sections.insert(p);
      }
    });
    return t;
  }();
  return t;
}

}  // namespace

std::string Rule::describe() const {
  if (!choices.empty()) return "one of " + join_choices(choices);
  if (non_empty) return "non-empty";
  const bool has_lo = std::isfinite(lo), has_hi = std::isfinite(hi);
  if (has_lo && has_hi)
    return fmt::format("in {}{}, {}{}", lo_open ? "(" : "[", num(lo), num(hi), hi_open ? ")" : "]");
  if (has_lo) return fmt::format("{} {}", lo_open ? ">" : ">=", num(lo));
  if (has_hi) return fmt::format("{} {}", hi_open ? "<" : "<=", num(hi));
  return "";
}

std::optional<std::string> Rule::check(double v) const {
  const bool ok_lo = lo_open ? v > lo : v >= lo;
  const bool ok_hi = hi_open ? v < hi : v <= hi;
  if (ok_lo && ok_hi) return std::nullopt;
  return fmt::format("must be {}, got {}", describe(), v);
}

std::optional<std::string> Rule::check(const std::string& v) const {
  if (non_empty && v.empty()) return std::string("must be a non-empty string");
  if (!choices.empty() && std::find(choices.begin(), choices.end(), v) == choices.end())
    return fmt::format("must be {}, got '{}'", describe(), v);
  return std::nullopt;
}

const std::vector<KeyInfo>& config_keys() { return tables().keys; }

bool is_config_key(const std::string& path) { return tables().key_set.count(path) > 0; }

bool is_config_section(const std::string& path) { return tables().sections.count(path) > 0; }

std::string did_you_mean(const std::string& unknown) {
  const Tables& t = tables();
  std::vector<std::string> candidates(t.key_set.begin(), t.key_set.end());
  candidates.insert(candidates.end(), t.sections.begin(), t.sections.end());

  // 1. A known path within a small edit distance (typos: n_layers, modle.n_head).
  const size_t limit = std::max<size_t>(1, unknown.size() / 5);
  std::string best;
  size_t best_d = limit + 1;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(unknown, c);
    if (d < best_d) best_d = d, best = c;
  }
  if (!best.empty()) return fmt::format(" (did you mean '{}'?)", best);

  // 2. The same key name (or a near miss of it) in another section (train.lr -> optim.lr).
  const std::string leaf = last_component(unknown);
  std::vector<std::string> hits;
  for (size_t tolerance = 0; tolerance <= 1 && hits.empty(); ++tolerance)
    for (const auto& k : t.key_set)
      if (edit_distance(leaf, last_component(k)) <= tolerance) hits.push_back(k);
  if (hits.size() == 1) return fmt::format(" (did you mean '{}'?)", hits[0]);
  return "";
}

std::string where(const std::string& origin, const std::string& path) {
  if (origin == "--set") return "--set " + path;
  return origin.empty() ? path : origin + ": " + path;
}

}  // namespace ng::config_detail
