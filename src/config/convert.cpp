// JSON <-> Config over the key table (schema.hpp): strict types, unknown keys, ranges.
#include <climits>
#include <cmath>
#include <type_traits>

#include "config/config.hpp"
#include "config/schema.hpp"
#include "core/errors.hpp"

namespace ng {
namespace config_detail {
namespace {

using json = nlohmann::json;

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t dot; (dot = path.find('.', start)) != std::string::npos; start = dot + 1)
    parts.push_back(path.substr(start, dot - start));
  parts.push_back(path.substr(start));
  return parts;
}

// The value at a dotted path, or nullptr. Sections were checked to be objects beforehand.
const json* find_path(const json& j, const std::string& path) {
  const json* cur = &j;
  for (const auto& part : split_path(path)) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(part);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

std::string describe_value(const json& v) {
  if (v.is_number()) return v.dump();
  return v.type_name();  // "string", "boolean", "array", "object", "null"
}

[[noreturn]] void type_error(const std::string& at, const char* expected, const json& v) {
  fail_user("{}: expected {}, got {}", at, expected, v.is_number() ? "number" : v.type_name());
}

// Integral value of a JSON number (2.0 is fine, 1.5 is not), or a UserError.
template <class Int>
Int read_integral(const json& v, const std::string& at, const char* expected) {
  if (!v.is_number()) type_error(at, expected, v);
  constexpr auto lo = std::numeric_limits<Int>::min();
  constexpr auto hi = std::numeric_limits<Int>::max();
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u <= static_cast<uint64_t>(hi)) return static_cast<Int>(u);
  } else if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i >= static_cast<int64_t>(lo) && (i < 0 || static_cast<uint64_t>(i) <= static_cast<uint64_t>(hi)))
      return static_cast<Int>(i);
  } else {
    const double d = v.get<double>();
    // hi + 1.0 is a power of two, exact in double.
    if (std::floor(d) == d && d >= static_cast<double>(lo) && d < static_cast<double>(hi) + 1.0)
      return static_cast<Int>(d);
  }
  fail_user("{}: expected {}, got {}", at, expected, describe_value(v));
}

void read(const json& v, const std::string& at, int& out) { out = read_integral<int>(v, at, "integer"); }

void read(const json& v, const std::string& at, uint64_t& out) {
  out = read_integral<uint64_t>(v, at, "non-negative integer");
}

void read(const json& v, const std::string& at, double& out) {
  if (!v.is_number()) type_error(at, "number", v);
  out = v.get<double>();
}

void read(const json& v, const std::string& at, bool& out) {
  if (!v.is_boolean()) type_error(at, "boolean", v);
  out = v.get<bool>();
}

void read(const json& v, const std::string& at, std::string& out) {
  if (!v.is_string()) type_error(at, "string", v);
  out = v.get<std::string>();
}

void read(const json& v, const std::string& at, std::optional<bool>& out) {
  if (v.is_null()) {
    out.reset();
  } else {
    if (!v.is_boolean()) type_error(at, "boolean or null", v);
    out = v.get<bool>();
  }
}

void read(const json& v, const std::string& at, std::vector<std::string>& out) {
  const char* expected = "string or array of strings";
  out.clear();
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string()) type_error(fmt::format("{}[{}]", at, i), "string", v[i]);
      out.push_back(v[i].get<std::string>());
    }
  } else {
    type_error(at, expected, v);
  }
  for (const auto& p : out) NG_REQUIRE(!p.empty(), "{}: empty path", at);
}

// Rejects keys that are not in the table, with the JSON path of the first one found.
void check_unknown_keys(const json& obj, const std::string& prefix, const Origins& origins) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const std::string path = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (prefix.empty() && it.key() == "extends") {
      // Already resolved by load_config; only its type is checked here.
      if (!it->is_string()) type_error(where(origins.fallback, "extends"), "string", *it);
    } else if (is_config_key(path)) {
      continue;  // the type is checked when the value is read
    } else if (is_config_section(path)) {
      if (!it->is_object()) type_error(where(origins.of(path), path), "object", *it);
      check_unknown_keys(*it, path, origins);
    } else {
      fail_user("{}: unknown key '{}'{}", origins.of(path), path, did_you_mean(path));
    }
  }
}

void check_cross_key_rules(const Config& c, const Origins& origins) {
  // The origin named is the second key's when that one came from --set, else the first key's.
  auto origin = [&](const char* a, const char* b) -> const std::string& {
    return origins.of(b) == "--set" ? origins.of(b) : origins.of(a);
  };
  const ModelConfig& m = c.model;
  NG_REQUIRE(m.d_model % m.n_head == 0, "{}: model.d_model ({}) must be divisible by model.n_head ({})",
             origin("model.d_model", "model.n_head"), m.d_model, m.n_head);
  NG_REQUIRE(m.max_seq_len == 0 || m.max_seq_len >= m.seq_len,
             "{}: model.max_seq_len ({}) must be 0 or >= model.seq_len ({})",
             origin("model.max_seq_len", "model.seq_len"), m.max_seq_len, m.seq_len);
  NG_REQUIRE(m.padded_vocab == 0 || m.padded_vocab >= m.vocab_size,
             "{}: model.padded_vocab ({}) must be 0 or >= model.vocab_size ({})",
             origin("model.padded_vocab", "model.vocab_size"), m.padded_vocab, m.vocab_size);
}

}  // namespace

Config check_keys_and_types(const json& j, const Origins& origins) {
  if (!j.is_object())
    fail_user("{}: expected a JSON object at the top level, got {}", origins.fallback, j.type_name());
  check_unknown_keys(j, "", origins);
  Config c;
  visit_config(c, [&](const char* path, auto& field, const Rule&) {
    if (const json* v = find_path(j, path)) read(*v, where(origins.of(path), path), field);
  });
  return c;
}

Config config_from_json_traced(const json& j, const Origins& origins) {
  Config c = check_keys_and_types(j, origins);
  visit_config(c, [&](const char* path, const auto& field, const Rule& rule) {
    using T = std::decay_t<decltype(field)>;
    std::optional<std::string> problem;
    if constexpr (std::is_same_v<T, int> || std::is_same_v<T, double>)
      problem = rule.check(static_cast<double>(field));
    else if constexpr (std::is_same_v<T, std::string>)
      problem = rule.check(field);
    if (problem) fail_user("{}: {}", where(origins.of(path), path), *problem);
  });
  check_cross_key_rules(c, origins);
  return c;
}

}  // namespace config_detail

Config config_from_json(const nlohmann::json& j, const std::string& origin) {
  return config_detail::config_from_json_traced(j, config_detail::Origins{origin, {}});
}

nlohmann::json config_to_json(const Config& c) {
  nlohmann::json j = nlohmann::json::object();
  config_detail::visit_config(c, [&](const char* path, const auto& field, const config_detail::Rule&) {
    nlohmann::json* cur = &j;
    for (const auto& part : config_detail::split_path(path)) cur = &(*cur)[part];
    *cur = config_detail::field_to_json(field);
  });
  return j;
}

}  // namespace ng
