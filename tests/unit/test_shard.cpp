// Token shards: llm.c's uint16 format (written and read) and uint32 variant (read), header and
// size validation with messages naming the file, and glob expansion of data.train / data.val.
#include <gtest/gtest.h>

#include "common/tempdir.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <unistd.h>

#include "core/errors.hpp"
#include "data/shard.hpp"

namespace fs = std::filesystem;

namespace {

// A fresh directory per test, removed afterwards.
class ShardTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return tmp_ / name; }

  // Writes a raw file: a 256-int header with the given first three ints, then `body`.
  std::string write_raw(const std::string& name, int32_t magic, int32_t version, int32_t count,
                        const std::vector<char>& body) {
    std::vector<int32_t> header(256, 0);
    header[0] = magic, header[1] = version, header[2] = count;
    std::ofstream out(path(name), std::ios::binary);
    out.write(reinterpret_cast<const char*>(header.data()), 1024);
    out.write(body.data(), std::streamsize(body.size()));
    return path(name);
  }

  ng::test::TempDir tmp_{"shard"};
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ng::UserError& e) {
    return e.what();
  }
  return "(no UserError)";
}

}  // namespace

TEST_F(ShardTest, WriteThenReadRoundTripsAndLaysOutLlmcHeader) {
  const std::vector<int32_t> tokens = {0, 1, 50256, 65535, 7, 42};
  ng::write_shard(path("a.bin"), tokens);

  EXPECT_EQ(fs::file_size(path("a.bin")), 1024u + 2 * tokens.size());
  std::vector<int32_t> header(256);
  std::ifstream in(path("a.bin"), std::ios::binary);
  in.read(reinterpret_cast<char*>(header.data()), 1024);
  EXPECT_EQ(header[0], 20240520);
  EXPECT_EQ(header[1], 1);
  EXPECT_EQ(header[2], 6);
  for (int i = 3; i < 256; ++i) ASSERT_EQ(header[i], 0) << "header slot " << i;
  uint16_t first_two[2];
  in.read(reinterpret_cast<char*>(first_two), 4);
  EXPECT_EQ(first_two[0], 0);
  EXPECT_EQ(first_two[1], 1);

  const ng::ShardInfo info = ng::open_shard(path("a.bin"));
  EXPECT_EQ(info.num_tokens, 6u);
  EXPECT_EQ(info.token_bytes, 2);
  EXPECT_EQ(ng::read_shard(path("a.bin")), tokens);
  EXPECT_FALSE(fs::exists(path("a.bin.tmp")));
}

TEST_F(ShardTest, ReadsARangeOfTokens) {
  std::vector<int32_t> tokens(1000);
  for (int i = 0; i < 1000; ++i) tokens[i] = i * 3;
  ng::write_shard(path("r.bin"), tokens);
  const ng::ShardInfo info = ng::open_shard(path("r.bin"));
  std::vector<int32_t> got(10);
  ng::read_shard_tokens(info, 990, 10, got.data());
  EXPECT_EQ(got, std::vector<int32_t>(tokens.begin() + 990, tokens.end()));
  const std::string msg = error_of([&] { ng::read_shard_tokens(info, 995, 10, got.data()); });
  EXPECT_NE(msg.find("r.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("past its 1000 tokens"), std::string::npos) << msg;
}

TEST_F(ShardTest, EmptyShardIsValid) {
  ng::write_shard(path("e.bin"), std::vector<int32_t>{});
  EXPECT_EQ(ng::open_shard(path("e.bin")).num_tokens, 0u);
  EXPECT_TRUE(ng::read_shard(path("e.bin")).empty());
}

TEST_F(ShardTest, WriterRefusesIdsThatDoNotFitUint16) {
  const std::string msg = error_of([&] { ng::write_shard(path("w.bin"), std::vector<int32_t>{1, 2, 65536}); });
  EXPECT_NE(msg.find("w.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("token id 65536 at position 2"), std::string::npos) << msg;
  EXPECT_THROW(ng::write_shard(path("w.bin"), std::vector<int32_t>{-1}), ng::UserError);
  EXPECT_FALSE(fs::exists(path("w.bin")));
}

TEST_F(ShardTest, ReadsLlmcUint32Variant) {
  const std::vector<uint32_t> ids = {0, 65536, 128000, 5};
  std::vector<char> body(ids.size() * 4);
  std::memcpy(body.data(), ids.data(), body.size());
  write_raw("u32.bin", 20240801, 7, 4, body);
  const ng::ShardInfo info = ng::open_shard(path("u32.bin"));
  EXPECT_EQ(info.token_bytes, 4);
  EXPECT_EQ(info.num_tokens, 4u);
  EXPECT_EQ(ng::read_shard(path("u32.bin")), (std::vector<int32_t>{0, 65536, 128000, 5}));
}

TEST_F(ShardTest, RejectsBadMagic) {
  write_raw("m.bin", 123, 1, 0, {});
  const std::string msg = error_of([&] { ng::open_shard(path("m.bin")); });
  EXPECT_NE(msg.find(path("m.bin") + ": bad magic 123 (expected 20240520 token shard"), std::string::npos) << msg;
}

TEST_F(ShardTest, RejectsBadVersion) {
  write_raw("v16.bin", 20240520, 2, 0, {});
  std::string msg = error_of([&] { ng::open_shard(path("v16.bin")); });
  EXPECT_NE(msg.find(path("v16.bin") + ": bad version 2 (expected 1"), std::string::npos) << msg;
  write_raw("v32.bin", 20240801, 1, 0, {});
  msg = error_of([&] { ng::open_shard(path("v32.bin")); });
  EXPECT_NE(msg.find(path("v32.bin") + ": bad version 1 (expected 7"), std::string::npos) << msg;
}

TEST_F(ShardTest, RejectsSizeThatDoesNotMatchHeader) {
  write_raw("trunc.bin", 20240520, 1, 10, std::vector<char>(19));
  std::string msg = error_of([&] { ng::open_shard(path("trunc.bin")); });
  EXPECT_NE(msg.find(path("trunc.bin") + ": file size 1043 does not match its header (10 tokens of 2 bytes need "
                                         "1044 bytes); truncated?"),
            std::string::npos)
      << msg;
  write_raw("long.bin", 20240520, 1, 10, std::vector<char>(21));
  msg = error_of([&] { ng::open_shard(path("long.bin")); });
  EXPECT_NE(msg.find(path("long.bin") + ": file size 1045 does not match"), std::string::npos) << msg;

  std::ofstream(path("tiny.bin"), std::ios::binary) << "abc";
  msg = error_of([&] { ng::open_shard(path("tiny.bin")); });
  EXPECT_NE(msg.find(path("tiny.bin") + ": file too short for a token shard (3 bytes"), std::string::npos) << msg;
}

TEST_F(ShardTest, RejectsMissingFile) {
  const std::string msg = error_of([&] { ng::open_shard(path("nope.bin")); });
  EXPECT_NE(msg.find("nope.bin"), std::string::npos) << msg;
  EXPECT_THROW(ng::open_shard(path("nope.bin")), ng::UserError);
}

TEST_F(ShardTest, ExpandPatternsSortsEachPatternAndKeepsPatternOrder) {
  for (const char* name : {"train_000002.bin", "train_000000.bin", "train_000001.bin", "val_000000.bin"})
    ng::write_shard(path(name), std::vector<int32_t>{1});
  const auto files = ng::expand_patterns({path("val_*.bin"), path("train_*.bin")}, "data.train");
  ASSERT_EQ(files.size(), 4u);
  EXPECT_EQ(files[0], path("val_000000.bin"));
  EXPECT_EQ(files[1], path("train_000000.bin"));
  EXPECT_EQ(files[2], path("train_000001.bin"));
  EXPECT_EQ(files[3], path("train_000002.bin"));
  // A plain path is a pattern matching itself.
  EXPECT_EQ(ng::expand_patterns({path("val_000000.bin")}, "data.val"), std::vector<std::string>{path("val_000000.bin")});
}

TEST_F(ShardTest, ExpandPatternsRejectsPatternMatchingNothing) {
  ng::write_shard(path("train_000000.bin"), std::vector<int32_t>{1});
  const std::string msg = error_of([&] { ng::expand_patterns({path("train_*.bin"), path("val_*.bin")}, "data.val"); });
  EXPECT_NE(msg.find("data.val: \"" + path("val_*.bin") + "\" matches no file"), std::string::npos) << msg;
  EXPECT_THROW(ng::expand_patterns({}, "data.train"), ng::UserError);
}
