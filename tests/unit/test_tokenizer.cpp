// Tokenizers: the byte tokenizer, GPT-2's pre-tokenizer and character classes, GPT-2 BPE against
// reference ids from js-tiktoken (tests/fixtures/bpe/cases.json, made by
// scripts/make_bpe_fixtures.js), and the `normgpt tokenize` backend.
#include <gtest/gtest.h>

#include "common/tempdir.hpp"

#include <filesystem>
#include <fstream>
#include <functional>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/errors.hpp"
#include "data/byte_tokenizer.hpp"
#include "data/pretokenize.hpp"
#include "data/shard.hpp"
#include "data/tokenize_cmd.hpp"
#include "data/tokenizer.hpp"
#include "data/unicode_class.hpp"

namespace fs = std::filesystem;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ng::UserError& e) {
    return e.what();
  }
  return "(no UserError)";
}

std::vector<std::string> pieces_of(std::string_view text) {
  std::vector<std::string_view> views;
  ng::gpt2_pretokenize(text, views);
  return {views.begin(), views.end()};
}

// The GPT-2 tokenizer, loaded once for all tests; null when the vocabulary files are absent.
const ng::Tokenizer* gpt2() {
  static const std::unique_ptr<ng::Tokenizer> tok = [] {
    const std::string dir = ng::default_gpt2_vocab_dir();
    if (!fs::exists(dir + "/encoder.json") || !fs::exists(dir + "/vocab.bpe")) return std::unique_ptr<ng::Tokenizer>();
    return ng::make_tokenizer("gpt2", dir);
  }();
  return tok.get();
}

#define REQUIRE_GPT2_VOCAB()                                                                   \
  do {                                                                                         \
    if (gpt2() == nullptr) {                                                                   \
      GTEST_SKIP() << "GPT-2 vocabulary not found in " << ng::default_gpt2_vocab_dir()         \
                   << " (run scripts/setup.sh, or set NORMGPT_DATA_DIR to a directory holding " \
                      "gpt2/encoder.json and gpt2/vocab.bpe)";                                 \
    }                                                                                          \
  } while (0)

}  // namespace

// ------------------------------------------------------------------------------------ byte

TEST(ByteTokenizer, IdsAreBytesAndEotIs256) {
  ng::ByteTokenizer tok;
  EXPECT_EQ(tok.vocab_size(), 257);
  EXPECT_EQ(tok.eot_id(), 256);
  EXPECT_EQ(tok.encode("hé\n"), (std::vector<int32_t>{104, 0xC3, 0xA9, 10}));
  EXPECT_EQ(tok.decode(std::vector<int32_t>{104, 105, 256}), "hi<|endoftext|>");
  EXPECT_THROW(tok.decode(std::vector<int32_t>{257}), ng::UserError);
  EXPECT_THROW(tok.decode(std::vector<int32_t>{-1}), ng::UserError);
}

TEST(ByteTokenizer, RoundTripsEveryByte) {
  ng::ByteTokenizer tok;
  std::string all;
  for (int b = 0; b < 256; ++b) all += char(b);
  const auto ids = tok.encode(all);
  ASSERT_EQ(ids.size(), 256u);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(ids[b], b);
  EXPECT_EQ(tok.decode(ids), all);
}

TEST(MakeTokenizer, ByNameAndByVocabSize) {
  EXPECT_EQ(ng::make_tokenizer("byte")->name(), "byte");
  const std::string msg = error_of([] { ng::make_tokenizer("sentencepiece"); });
  EXPECT_NE(msg.find("unknown tokenizer \"sentencepiece\" (expected \"gpt2\" or \"byte\")"), std::string::npos) << msg;
  EXPECT_EQ(ng::tokenizer_name_for_vocab(257), "byte");
  EXPECT_EQ(ng::tokenizer_name_for_vocab(50257), "gpt2");
  EXPECT_THROW(ng::tokenizer_name_for_vocab(50304), ng::UserError);
}

TEST(MakeTokenizer, MissingVocabularyNamesTheFile) {
  const std::string msg = error_of([] { ng::make_tokenizer("gpt2", "/nonexistent/vocab"); });
  EXPECT_NE(msg.find("/nonexistent/vocab/encoder.json: cannot open"), std::string::npos) << msg;
  EXPECT_NE(msg.find("scripts/setup.sh"), std::string::npos) << msg;
}

// ------------------------------------------------------------------ unicode, pre-tokenizer

TEST(UnicodeClass, LettersNumbersSpaces) {
  using ng::CharClass;
  EXPECT_EQ(ng::char_class('a'), CharClass::Letter);
  EXPECT_EQ(ng::char_class('Z'), CharClass::Letter);
  EXPECT_EQ(ng::char_class(0xE9), CharClass::Letter);    // é
  EXPECT_EQ(ng::char_class(0x4E2D), CharClass::Letter);  // 中 (Lo)
  EXPECT_EQ(ng::char_class(0x02B0), CharClass::Letter);  // modifier letter (Lm)
  EXPECT_EQ(ng::char_class('7'), CharClass::Number);
  EXPECT_EQ(ng::char_class(0x0663), CharClass::Number);  // Arabic-Indic three (Nd)
  EXPECT_EQ(ng::char_class(0x216B), CharClass::Number);  // Roman numeral twelve (Nl)
  EXPECT_EQ(ng::char_class(0x00BD), CharClass::Number);  // one half (No)
  for (uint32_t cp : {0x09u, 0x0Au, 0x0Bu, 0x0Cu, 0x0Du, 0x20u, 0xA0u, 0x1680u, 0x2009u, 0x2028u, 0x3000u, 0xFEFFu})
    EXPECT_EQ(ng::char_class(cp), CharClass::Space) << std::hex << cp;
  // JavaScript's \s (our reference) leaves out U+0085 and U+200B.
  for (uint32_t cp : {0x85u, 0x200Bu, 0x0301u /* combining acute */, 0x1F600u /* emoji */, uint32_t('\''), 0u})
    EXPECT_EQ(ng::char_class(cp), CharClass::Other) << std::hex << cp;
}

TEST(Utf8, DecodesValidAndPassesBadBytesThroughOneByOne) {
  EXPECT_EQ(ng::decode_utf8("A", 0).cp, 0x41u);
  const std::string euro = "\xE2\x82\xAC", emoji = "\xF0\x9F\x98\x80";
  EXPECT_EQ(ng::decode_utf8(euro, 0).cp, 0x20ACu);
  EXPECT_EQ(ng::decode_utf8(euro, 0).len, 3u);
  EXPECT_EQ(ng::decode_utf8(emoji, 0).cp, 0x1F600u);
  EXPECT_EQ(ng::decode_utf8(emoji, 0).len, 4u);
  for (std::string_view bad : {"\x80", "\xFF", "\xC3", "\xE2\x82", "\xC0\x80" /* overlong */, "\xED\xA0\x80"}) {
    const ng::Utf8Char c = ng::decode_utf8(bad, 0);
    EXPECT_EQ(c.len, 1u);
    EXPECT_EQ(ng::char_class(c.cp), ng::CharClass::Other);
  }
}

TEST(Pretokenize, FollowsGpt2Regex) {
  using V = std::vector<std::string>;
  EXPECT_EQ(pieces_of("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(pieces_of("a   b"), (V{"a", "  ", " b"}));         // run gives its last space to " b"
  EXPECT_EQ(pieces_of("a\n\nb"), (V{"a", "\n", "\n", "b"}));     // ... a newline stands alone
  EXPECT_EQ(pieces_of("a \n b"), (V{"a", " \n", " b"}));
  EXPECT_EQ(pieces_of("end  "), (V{"end", "  "}));               // trailing run stays whole
  EXPECT_EQ(pieces_of("I'm they'll"), (V{"I", "'m", " they", "'ll"}));
  EXPECT_EQ(pieces_of("DON'T"), (V{"DON", "'", "T"}));           // contractions are lowercase only
  EXPECT_EQ(pieces_of("''s"), (V{"''", "s"}));                   // punctuation run is greedy
  EXPECT_EQ(pieces_of("3.14 1,000"), (V{"3", ".", "14", " 1", ",", "000"}));
  EXPECT_EQ(pieces_of("abc123!?"), (V{"abc", "123", "!?"}));
  EXPECT_EQ(pieces_of(" !!"), (V{" !!"}));
  EXPECT_EQ(pieces_of("caf\xC3\xA9 \xE4\xB8\xAD"), (V{"caf\xC3\xA9", " \xE4\xB8\xAD"}));
  EXPECT_EQ(pieces_of("x\xE3\x80\x80y"), (V{"x", "\xE3\x80\x80", "y"}));  // U+3000 is space, not " "
  EXPECT_TRUE(pieces_of("").empty());
}

TEST(Pretokenize, PiecesConcatenateToTheInputEvenForInvalidUtf8) {
  for (std::string_view text : {"plain text, 42 words.\n", "\xFF\xFE bad \xC3 bytes\x80x", "  \t\n \xC2\xA0 x  "}) {
    std::string joined;
    for (const auto& p : pieces_of(text)) {
      EXPECT_FALSE(p.empty());
      joined += p;
    }
    EXPECT_EQ(joined, text);
  }
}

// --------------------------------------------------------------------------------- GPT-2 BPE

TEST(Gpt2Tokenizer, MatchesReferenceIdsAndRoundTrips) {
  REQUIRE_GPT2_VOCAB();
  const ng::Tokenizer& tok = *gpt2();
  EXPECT_EQ(tok.vocab_size(), 50257);
  EXPECT_EQ(tok.eot_id(), 50256);
  std::ifstream in(std::string(NORMGPT_FIXTURES) + "/bpe/cases.json");
  ASSERT_TRUE(in.good()) << "missing tests/fixtures/bpe/cases.json";
  const nlohmann::json fixture = nlohmann::json::parse(in);
  ASSERT_GE(fixture["cases"].size(), 50u);
  for (const auto& c : fixture["cases"]) {
    const std::string name = c["name"], text = c["text"];
    const std::vector<int32_t> expected = c["ids"];
    const std::vector<int32_t> got = tok.encode(text);
    EXPECT_EQ(got, expected) << "case \"" << name << "\"";
    EXPECT_EQ(tok.decode(got), text) << "case \"" << name << "\"";
  }
}

TEST(Gpt2Tokenizer, DecodesEotAndRejectsIdsOutOfRange) {
  REQUIRE_GPT2_VOCAB();
  const ng::Tokenizer& tok = *gpt2();
  EXPECT_EQ(tok.decode(std::vector<int32_t>{15496, 995, 50256}), "Hello world<|endoftext|>");
  const std::string msg = error_of([&] { tok.decode(std::vector<int32_t>{50257}); });
  EXPECT_NE(msg.find("token id 50257 out of range [0, 50257)"), std::string::npos) << msg;
}

TEST(Gpt2Tokenizer, InvalidUtf8RoundTripsThroughByteTokens) {
  REQUIRE_GPT2_VOCAB();
  const std::string text = "\xFF\xFE" "abc \xC3 d\x80";
  EXPECT_EQ(gpt2()->decode(gpt2()->encode(text)), text);
}

TEST(Gpt2Tokenizer, LongRunsEncodeAndRoundTrip) {
  REQUIRE_GPT2_VOCAB();
  // Single pieces of 100k bytes (BPE is O(n log n) per piece, so this is quick). GPT-2 has no
  // tokens for runs of spaces; the ids were checked against js-tiktoken on shorter runs.
  struct Run {
    char c;
    int32_t id;
    size_t bytes_per_token;
  };
  for (const Run r : {Run{'a', 24794, 4}, Run{' ', 220, 1}, Run{'7', 3324, 2}}) {
    const std::string text(100000, r.c);
    const auto ids = gpt2()->encode(text);
    EXPECT_EQ(ids, std::vector<int32_t>(text.size() / r.bytes_per_token, r.id)) << "run of '" << r.c << "'";
    EXPECT_EQ(gpt2()->decode(ids), text);
  }
}

TEST(Gpt2Tokenizer, ChunkedEncodingEqualsWholeEncoding) {
  REQUIRE_GPT2_VOCAB();
  std::string text;
  for (int i = 0; i < 50; ++i)
    text += "It's 3.14 o'clock,  they said.\n\n\tThe  quick brown fox jumps over the lazy dog " + std::to_string(i) + ". ";
  const auto whole = gpt2()->encode(text);
  std::vector<int32_t> chunked;
  size_t chunks = 0;
  for (size_t pos = 0; pos < text.size(); ++chunks) {
    const size_t end = ng::find_chunk_end(text, pos, 37);
    ASSERT_GT(end, pos);
    if (end < text.size()) {
      ASSERT_EQ(text[end], ' ');
    }
    gpt2()->encode_into(std::string_view(text).substr(pos, end - pos), chunked);
    pos = end;
  }
  EXPECT_GT(chunks, 20u);
  EXPECT_EQ(chunked, whole);
}

// ------------------------------------------------------------------------- tokenize command

namespace {

class TokenizeCmdTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return tmp_ / name; }
  std::string text_file(const std::string& name, const std::string& text) {
    std::ofstream(path(name), std::ios::binary) << text;
    return path(name);
  }
  ng::test::TempDir tmp_{"tokenize"};
};

}  // namespace

TEST_F(TokenizeCmdTest, ByteStreamSplitsIntoTrainShardsAndVal) {
  ng::TokenizeOptions o;
  o.inputs = {text_file("a.txt", "ab"), text_file("b.txt", "cde")};
  o.output_dir = path("out");
  o.tokenizer = "byte";
  o.val_fraction = 0.25;  // stream of 7 tokens -> floor(1.75) = 1 val token
  o.shard_tokens = 4;
  const ng::TokenizeSummary s = ng::run_tokenize(o);
  EXPECT_EQ(s.input_bytes, 5u);
  EXPECT_EQ(s.train_tokens, 6u);
  EXPECT_EQ(s.val_tokens, 1u);
  ASSERT_EQ(s.train_files.size(), 2u);
  ASSERT_EQ(s.val_files.size(), 1u);
  // End-of-text (256) goes in front of every document.
  EXPECT_EQ(ng::read_shard(path("out/train_000000.bin")), (std::vector<int32_t>{256, 'a', 'b', 256}));
  EXPECT_EQ(ng::read_shard(path("out/train_000001.bin")), (std::vector<int32_t>{'c', 'd'}));
  EXPECT_EQ(ng::read_shard(path("out/val_000000.bin")), (std::vector<int32_t>{'e'}));
}

TEST_F(TokenizeCmdTest, ZeroValFractionWritesNoValAndStaleShardsAreRemoved) {
  ng::TokenizeOptions o;
  o.inputs = {text_file("a.txt", "hello")};
  o.output_dir = path("out");
  o.tokenizer = "byte";
  o.val_fraction = 0.5;
  o.shard_tokens = 1;
  ng::run_tokenize(o);  // 6 tokens: 3 train shards, 3 val shards
  EXPECT_TRUE(fs::exists(path("out/val_000002.bin")));
  text_file("out/notes.txt", "keep me");
  text_file("out/train_old.bin", "not named like our shards: kept");
  o.val_fraction = 0;
  o.shard_tokens = 4;
  const ng::TokenizeSummary s = ng::run_tokenize(o);
  EXPECT_EQ(s.train_tokens, 6u);
  EXPECT_TRUE(s.val_files.empty());
  EXPECT_EQ(ng::expand_patterns({path("out/*_0*.bin")}, "test"),
            (std::vector<std::string>{path("out/train_000000.bin"), path("out/train_000001.bin")}));
  EXPECT_TRUE(fs::exists(path("out/notes.txt")));
  EXPECT_TRUE(fs::exists(path("out/train_old.bin")));
}

TEST_F(TokenizeCmdTest, Gpt2StreamMatchesEncodingEachDocument) {
  REQUIRE_GPT2_VOCAB();
  const std::string a = "The first document.\n", b = "And the second one, with \"quotes\".";
  ng::TokenizeOptions o;
  o.inputs = {text_file("a.txt", a), text_file("b.txt", b)};
  o.output_dir = path("out");
  o.val_fraction = 0;
  ng::run_tokenize(o);
  std::vector<int32_t> expected = {50256};
  gpt2()->encode_into(a, expected);
  expected.push_back(50256);
  gpt2()->encode_into(b, expected);
  EXPECT_EQ(ng::read_shard(path("out/train_000000.bin")), expected);
}

TEST_F(TokenizeCmdTest, BadOptionsAreUserErrors) {
  ng::TokenizeOptions o;
  o.inputs = {text_file("a.txt", "some text here")};
  o.output_dir = path("out");
  o.tokenizer = "byte";
  auto msg_with = [&](auto change) {
    ng::TokenizeOptions copy = o;
    change(copy);
    return error_of([&] { ng::run_tokenize(copy); });
  };
  std::string msg = msg_with([&](auto& c) { c.inputs.push_back(path("missing.txt")); });
  EXPECT_NE(msg.find("missing.txt"), std::string::npos) << msg;
  msg = msg_with([](auto& c) { c.tokenizer = "wordpiece"; });
  EXPECT_NE(msg.find("unknown tokenizer \"wordpiece\""), std::string::npos) << msg;
  msg = msg_with([](auto& c) { c.val_fraction = 1.0; });
  EXPECT_NE(msg.find("--val-fraction 1 must be in [0, 1)"), std::string::npos) << msg;
  msg = msg_with([](auto& c) { c.val_fraction = -0.1; });
  EXPECT_NE(msg.find("must be in [0, 1)"), std::string::npos) << msg;
  msg = msg_with([](auto& c) { c.inputs.clear(); });
  EXPECT_NE(msg.find("no input files"), std::string::npos) << msg;
  msg = msg_with([&](auto& c) { c.inputs = {text_file("empty.txt", "")}; });
  EXPECT_NE(msg.find("all empty"), std::string::npos) << msg;
  msg = msg_with([](auto& c) { c.val_fraction = 0.01; });  // 15 tokens * 0.01 rounds to 0
  EXPECT_NE(msg.find("leaves an empty val split"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(path("out")));  // nothing written by any failed run
}
