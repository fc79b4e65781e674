#include "data/gpt2_tokenizer.hpp"

#include <fstream>
#include <queue>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/errors.hpp"
#include "data/pretokenize.hpp"
#include "data/unicode_class.hpp"

namespace ng {

namespace {

// GPT-2's byte-to-unicode table, inverted: code point (as written in the vocab files) -> byte.
// Bytes that are printable Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the other
// 68 bytes, in increasing order, are written as U+0100, U+0101, ...
std::vector<int> unicode_to_byte_table() {
  std::vector<int> table(256 + 68, -1);
  int shifted = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    table[printable ? b : 256 + shifted++] = b;
  }
  return table;
}

// A vocab-file string back to raw bytes. Strings that are not made of mapped code points (the
// special "<|endoftext|>" is the only one in GPT-2's files) are taken literally.
std::string vocab_string_to_bytes(const std::string& s, const std::vector<int>& table) {
  std::string out;
  for (size_t pos = 0; pos < s.size();) {
    const Utf8Char c = decode_utf8(s, pos);
    if (c.cp >= table.size() || table[c.cp] < 0) return s;
    out += static_cast<char>(table[c.cp]);
    pos += c.len;
  }
  return out;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  NG_REQUIRE(in.good(), "{}: cannot open (GPT-2 vocabulary file; run scripts/setup.sh)", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Gpt2Tokenizer::Gpt2Tokenizer(const std::string& vocab_dir) {
  load_encoder(vocab_dir + "/encoder.json");
  load_merges(vocab_dir + "/vocab.bpe");
}

void Gpt2Tokenizer::load_encoder(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail_user("{}: not valid JSON ({})", path, e.what());
  }
  NG_REQUIRE(j.is_object() && !j.empty(), "{}: expected a JSON object of token -> id", path);
  const std::vector<int> table = unicode_to_byte_table();
  token_bytes_.assign(j.size(), std::string());
  std::vector<bool> seen(j.size(), false);
  for (const auto& [key, value] : j.items()) {
    NG_REQUIRE(value.is_number_integer(), "{}: id of token \"{}\" is not an integer", path, key);
    const int64_t id = value.get<int64_t>();
    NG_REQUIRE(id >= 0 && id < int64_t(j.size()) && !seen[id],
               "{}: token ids must be 0..{} each used once; bad id {} for \"{}\"", path, j.size() - 1, id, key);
    seen[id] = true;
    token_bytes_[id] = vocab_string_to_bytes(key, table);
    bytes_to_id_.emplace(token_bytes_[id], int32_t(id));
    if (key == "<|endoftext|>") eot_ = int32_t(id);
  }
  NG_REQUIRE(eot_ >= 0, "{}: no <|endoftext|> token", path);
  for (int b = 0; b < 256; ++b) {
    auto it = bytes_to_id_.find(std::string(1, char(b)));
    NG_REQUIRE(it != bytes_to_id_.end(), "{}: no token for byte {}", path, b);
    byte_id_[b] = it->second;
  }
}

void Gpt2Tokenizer::load_merges(const std::string& path) {
  const std::vector<int> table = unicode_to_byte_table();
  std::istringstream in(read_text_file(path));
  // Rank of the merge that creates each token; the BPE below relies on a merge never using a token
  // that a later merge creates (true of any list learned by BPE training, checked here).
  std::unordered_map<int32_t, int32_t> created_at;
  std::string line;
  int line_no = 0;
  int32_t rank = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line.starts_with("#version")) continue;
    const size_t sp = line.find(' ');
    NG_REQUIRE(sp != std::string::npos && sp > 0 && sp + 1 < line.size() && line.find(' ', sp + 1) == std::string::npos,
               "{}:{}: expected two tokens separated by one space, got \"{}\"", path, line_no, line);
    const std::string a = vocab_string_to_bytes(line.substr(0, sp), table);
    const std::string b = vocab_string_to_bytes(line.substr(sp + 1), table);
    auto ia = bytes_to_id_.find(a), ib = bytes_to_id_.find(b), iab = bytes_to_id_.find(a + b);
    NG_REQUIRE(ia != bytes_to_id_.end() && ib != bytes_to_id_.end() && iab != bytes_to_id_.end(),
               "{}:{}: merge \"{}\" uses or makes a token missing from encoder.json", path, line_no, line);
    for (auto part : {ia, ib}) {
      if (part->first.size() == 1) continue;
      auto c = created_at.find(part->second);
      NG_REQUIRE(c != created_at.end() && c->second < rank,
                 "{}:{}: merge \"{}\" uses a token no earlier merge creates", path, line_no, line);
    }
    created_at.emplace(iab->second, rank);
    merges_.emplace(pair_key(ia->second, ib->second), Merge{rank, iab->second});
    ++rank;
  }
  NG_REQUIRE(rank > 0, "{}: no merges found", path);
}

// BPE on one piece, in O(n log n): a linked list of symbols and a min-heap of candidate pairs
// ordered by (rank, position). GPT-2's reference merges every occurrence of the best pair left to
// right, then looks for the next best pair; popping (rank, position) does the same, because every
// pair a merge creates contains the new token and so has a higher rank than the merge itself (the
// property load_merges checks). Stale heap entries are recognised by their changed ids.
void Gpt2Tokenizer::bpe(std::string_view piece, std::vector<int32_t>& out) const {
  const int n = static_cast<int>(piece.size());
  if (n == 0) return;
  std::vector<int32_t> id(n);
  std::vector<int> next(n), prev(n);
  for (int i = 0; i < n; ++i) {
    id[i] = byte_id_[static_cast<unsigned char>(piece[i])];
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Cand {
    int32_t rank, left, left_id, right_id, merged;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<>> heap;
  auto push = [&](int left) {
    if (left < 0 || next[left] < 0) return;
    auto it = merges_.find(pair_key(id[left], id[next[left]]));
    if (it != merges_.end()) heap.push({it->second.rank, left, id[left], id[next[left]], it->second.merged});
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    const int right = next[c.left];
    // A symbol's id only changes by growing, so unchanged ids mean the pair is still there.
    if (right < 0 || id[c.left] != c.left_id || id[right] != c.right_id) continue;
    id[c.left] = c.merged;
    next[c.left] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.left;
    id[right] = -1;  // removed
    push(prev[c.left]);
    push(c.left);
  }
  for (int i = 0; i >= 0; i = next[i]) out.push_back(id[i]);
}

void Gpt2Tokenizer::encode_into(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<std::string_view> pieces;
  gpt2_pretokenize(text, pieces);
  for (std::string_view piece : pieces) {
    auto it = cache_.find(piece);
    if (it == cache_.end()) {
      if (cache_.size() >= kMaxCacheEntries) cache_.clear();
      std::vector<int32_t> ids;
      bpe(piece, ids);
      it = cache_.emplace(std::string(piece), std::move(ids)).first;
    }
    out.insert(out.end(), it->second.begin(), it->second.end());
  }
}

std::string Gpt2Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string s;
  for (int32_t id : ids) {
    NG_REQUIRE(id >= 0 && id < vocab_size(), "gpt2 tokenizer: token id {} out of range [0, {})", id, vocab_size());
    s += token_bytes_[id];
  }
  return s;
}

}  // namespace ng
