// libFuzzer target: the config parser (src/config/).
//
// Input: one or more JSON documents separated by lines "===". The whole input is first fed to
// config_from_json as one document; then document 1..4 are written to a.json, b.json, c.json,
// d.json in a private temp dir and load_config("a.json") runs, following any `extends` chain
// between them. A last piece that starts with "SET\n" holds one `--set key.path=value` override
// per line instead of a document.
// Expected: success or ng::UserError. Oracles beyond the sanitizers: any other exception; a
// config that loads but whose resolved form (config_to_json, what runs write to config.json) does
// not load again, or loads as something else.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "core/errors.hpp"
#include "fuzz_util.hpp"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr std::string_view kSep = "\n===\n";
constexpr const char* kNames[] = {"a.json", "b.json", "c.json", "d.json"};

// The resolved config must survive a round trip (resume reloads RUN_DIR/config.json).
void check_round_trip(const ng::Config& c) {
  const json resolved = ng::config_to_json(c);
  ng::Config again;
  try {
    again = ng::config_from_json(resolved, "resolved");
  } catch (const ng::UserError& e) {
    std::fprintf(stderr, "resolved config rejected: %s\n%s\n", e.what(), resolved.dump().c_str());
    ng_fuzz::finding("a loaded config's resolved JSON does not load again");
  }
  if (ng::config_to_json(again) != resolved) ng_fuzz::finding("resolved config changes on reload");
}

// `extends` must not lead the harness out of its temp dir (e.g. to /dev/zero or /dev/stdin, which
// would hang it: reading a device is the user's own choice, not a parser bug).
bool extends_stays_inside(std::string_view doc, const fs::path& dir) {
  const json j = json::parse(doc, nullptr, false);
  if (!j.is_object()) return true;
  auto it = j.find("extends");
  if (it == j.end() || !it->is_string()) return true;
  const std::string target = (dir / it->get<std::string>()).lexically_normal().string();
  const std::string prefix = dir.string() + "/";
  return target.compare(0, prefix.size(), prefix) == 0 && target.find('\0') == std::string::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // 1. One document, straight to the converter.
  try {
    const json j = json::parse(input, nullptr, /*allow_exceptions=*/false);
    const ng::Config c = ng::config_from_json(j, "fuzz");
    check_round_trip(c);
  } catch (const ng::UserError& e) {
    ng_fuzz::rejected(e);
  }

  // 2. Up to four files and --set overrides through load_config.
  std::vector<std::string_view> pieces;
  std::vector<std::string> overrides;
  for (size_t start = 0;;) {
    const size_t at = input.find(kSep, start);
    pieces.push_back(input.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) break;
    start = at + kSep.size();
  }
  if (pieces.size() > 1 && pieces.back().substr(0, 4) == "SET\n") {
    std::string_view rest = pieces.back().substr(4);
    pieces.pop_back();
    while (!rest.empty()) {
      const size_t nl = rest.find('\n');
      overrides.emplace_back(rest.substr(0, nl));
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    }
  }
  if (pieces.size() > 4) return -1;  // not added to the corpus
  const fs::path dir = ng_fuzz::temp_dir();
  for (std::string_view p : pieces)
    if (!extends_stays_inside(p, dir)) return -1;
  for (size_t i = 0; i < 4; ++i) {
    const std::string path = (dir / kNames[i]).string();
    if (i < pieces.size()) ng_fuzz::write_file(path, pieces[i]);
    else ng_fuzz::remove_file(path);
  }
  try {
    const ng::Config c = ng::load_config((dir / kNames[0]).string(), overrides);
    check_round_trip(c);
  } catch (const ng::UserError& e) {
    ng_fuzz::rejected(e);
  }
  return 0;
}
