// load_config: read a JSON file, follow `extends`, apply `--set` overrides, convert (convert.cpp).
//
// Errors name the file a value came from: each file of an `extends` chain is checked for unknown
// keys and types on its own, and the merged document remembers which file (or `--set`) each key
// came from, so a range error found after merging still names its source.
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "config/config.hpp"
#include "config/schema.hpp"
#include "core/errors.hpp"

namespace ng {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using config_detail::Origins;

std::string read_text_file(const std::string& path) {
  std::error_code ec;
  NG_REQUIRE(fs::exists(path, ec), "config file not found: {}", path);
  NG_REQUIRE(!fs::is_directory(path, ec), "cannot read config file {}: it is a directory", path);
  std::ifstream in(path, std::ios::binary);
  NG_REQUIRE(in, "cannot read config file {}", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json parse_json_text(const std::string& text, const std::string& origin) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    // nlohmann's message: "[json.exception.parse_error.101] parse error at line 3, column 6: <what>"
    static const std::regex re(R"(at line (\d+), column (\d+): (.*))");
    std::cmatch m;
    const char* msg = e.what();
    if (std::regex_search(msg, m, re))
      fail_user("{}: JSON parse error at line {} column {}: {}", origin, m[1].str(), m[2].str(), m[3].str());
    fail_user("{}: JSON parse error at byte {}: {}", origin, e.byte, msg);
  } catch (const json::exception& e) {
    // The parser's other errors, e.g. out_of_range.406 "number overflow parsing '1e400'" (found
    // by fuzz/fuzz_config.cpp): a UserError too, without nlohmann's "[json.exception...] " tag.
    std::string msg = e.what();
    if (const auto tag = msg.find("] "); tag != std::string::npos) msg.erase(0, tag + 2);
    fail_user("{}: JSON parse error: {}", origin, msg);
  }
}

// Every leaf key (in the table) present in `j`, as dotted paths.
void collect_keys(const json& j, const std::string& prefix, std::vector<std::string>& out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string path = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (config_detail::is_config_key(path)) out.push_back(path);
    else if (it->is_object()) collect_keys(*it, path, out);
  }
}

// Child values win; objects are merged key by key, everything else (arrays too) is replaced.
void deep_merge(json& base, const json& child) {
  for (auto it = child.begin(); it != child.end(); ++it) {
    auto b = base.find(it.key());
    if (b != base.end() && b->is_object() && it->is_object()) deep_merge(*b, *it);
    else base[it.key()] = *it;
  }
}

std::string chain_text(const std::vector<std::string>& chain, const std::string& last) {
  std::string s;
  for (const auto& p : chain) s += p + " -> ";
  return s + last;
}

// Loads `path` and everything it extends, merged. `chain`: the files that led here (display
// names), `seen`: their canonical paths, for cycle detection.
json load_merged(const std::string& path, std::vector<std::string>& chain, std::vector<fs::path>& seen,
                 Origins& origins) {
  std::error_code ec;
  const fs::path canon = fs::weakly_canonical(path, ec);
  for (const auto& s : seen)
    NG_REQUIRE(s != canon, "{}: extends cycle: {}", chain.back(), chain_text(chain, path));

  json doc = parse_json_text(read_text_file(path), path);
  // Unknown keys and types are reported against the file that holds them.
  config_detail::check_keys_and_types(doc, Origins{path, {}});

  json merged = json::object();
  if (auto ext = doc.find("extends"); ext != doc.end()) {
    const std::string base = (fs::path(path).parent_path() / ext->get<std::string>()).lexically_normal().string();
    std::error_code ec2;
    NG_REQUIRE(fs::exists(base, ec2), "config file not found: {} (extended by {})", base, path);
    chain.push_back(path);
    seen.push_back(canon);
    merged = load_merged(base, chain, seen, origins);
    chain.pop_back();
    seen.pop_back();
    doc.erase("extends");
  }
  std::vector<std::string> keys;
  collect_keys(doc, "", keys);
  for (const auto& k : keys) origins.by_key[k] = path;
  deep_merge(merged, doc);
  return merged;
}

// "key.path=value": the value is JSON if it parses as JSON, else the raw text as a string.
void apply_override(json& doc, const std::string& text, Origins& origins) {
  const auto eq = text.find('=');
  NG_REQUIRE(eq != std::string::npos && eq > 0, "--set {}: expected key.path=value", text);
  const std::string path = text.substr(0, eq);
  const std::string raw = text.substr(eq + 1);
  NG_REQUIRE(!config_detail::is_config_section(path),
             "--set {}: '{}' is a section, not a key; set its keys one by one", path, path);
  NG_REQUIRE(config_detail::is_config_key(path), "--set {}: unknown key '{}'{}", path, path,
             config_detail::did_you_mean(path));

  json value = json::parse(raw, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) value = raw;

  json single = json::object();
  json* cur = &single;
  size_t start = 0;
  for (size_t dot; (dot = path.find('.', start)) != std::string::npos; start = dot + 1)
    cur = &(*cur)[path.substr(start, dot - start)];
  (*cur)[path.substr(start)] = value;
  // Type-check this value on its own so that the message names --set, not the file.
  config_detail::check_keys_and_types(single, Origins{"--set", {}});
  deep_merge(doc, single);
  origins.by_key[path] = "--set";
}

}  // namespace

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  Origins origins{path, {}};
  std::vector<std::string> chain;
  std::vector<fs::path> seen;
  json doc = load_merged(path, chain, seen, origins);
  for (const auto& o : overrides) apply_override(doc, o, origins);
  return config_detail::config_from_json_traced(doc, origins);
}

}  // namespace ng
