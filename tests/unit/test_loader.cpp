// DataLoader: sample order and offsets, wrap-around, skipping small shards, shuffle, resume,
// multi-rank slicing, bad files. Shard k holds tokens base_k + i (i = position), so every token
// tells which shard and position it came from and tests can assert exact values.
#include <gtest/gtest.h>

#include "common/tempdir.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <unistd.h>

#include "core/errors.hpp"
#include "data/loader.hpp"
#include "data/shard.hpp"

namespace fs = std::filesystem;

namespace {

struct Batch {
  std::vector<int32_t> x, y;
  bool operator==(const Batch&) const = default;
};

Batch next(ng::DataLoader& dl, int B, int T) {
  Batch b{std::vector<int32_t>(size_t(B) * T), std::vector<int32_t>(size_t(B) * T)};
  dl.next_batch(b.x.data(), b.y.data());
  return b;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ng::UserError& e) {
    return e.what();
  }
  return "(no UserError)";
}

class LoaderTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return tmp_ / name; }

  // Shard `name` with n tokens: base, base+1, ..., base+n-1.
  std::string shard(const std::string& name, int n, int base) {
    std::vector<int32_t> t(n);
    for (int i = 0; i < n; ++i) t[i] = base + i;
    ng::write_shard(path(name), t);
    return path(name);
  }

  ng::LoaderOptions opts(int B, int T, bool shuffle = false, uint64_t seed = 0) const {
    ng::LoaderOptions o;
    o.patterns = {path("*.bin")};
    o.B = B, o.T = T, o.shuffle = shuffle, o.seed = seed;
    return o;
  }

  ng::test::TempDir tmp_{"loader"};
};

// The batch that sample `s` of a shard starting at token value `base` must give (world 1).
void expect_sample(const Batch& b, int B, int T, int base, int s) {
  for (int r = 0; r < B; ++r)
    for (int t = 0; t < T; ++t) {
      const int i = r * T + t;
      ASSERT_EQ(b.x[i], base + s * B * T + r * T + t) << "row " << r << " col " << t;
      ASSERT_EQ(b.y[i], b.x[i] + 1) << "row " << r << " col " << t;
    }
}

}  // namespace

TEST_F(LoaderTest, SamplesAreConsecutiveSpansWithShiftedTargets) {
  const int B = 2, T = 4;
  shard("a.bin", 1 + 3 * B * T + 5, 1000);  // 3 samples and a 5-token tail
  ng::DataLoader dl(opts(B, T));
  EXPECT_EQ(dl.samples_per_epoch(), 3u);
  EXPECT_EQ(dl.total_tokens(), uint64_t(1 + 3 * B * T + 5));
  for (int s = 0; s < 3; ++s) expect_sample(next(dl, B, T), B, T, 1000, s);
  expect_sample(next(dl, B, T), B, T, 1000, 0);  // the only shard starts again
  EXPECT_EQ(dl.state().epoch, 1u);
}

TEST_F(LoaderTest, ExactFitUsesTheLastToken) {
  const int B = 1, T = 8;
  shard("a.bin", B * T + 1, 0);  // exactly one sample: the last target is the last token
  ng::DataLoader dl(opts(B, T));
  EXPECT_EQ(dl.samples_per_epoch(), 1u);
  const Batch b = next(dl, B, T);
  EXPECT_EQ(b.y.back(), B * T);
}

TEST_F(LoaderTest, WrapsToNextShardThenBackToFirst) {
  const int B = 2, T = 3;
  shard("a.bin", 2 * B * T + 1, 0);      // 2 samples
  shard("b.bin", 3 * B * T + 4, 20000);  // 3 samples
  ng::DataLoader dl(opts(B, T));
  EXPECT_EQ(dl.samples_per_epoch(), 5u);
  const std::vector<std::pair<int, int>> order = {{0, 0}, {0, 1}, {20000, 0}, {20000, 1}, {20000, 2}, {0, 0}, {0, 1}};
  for (size_t k = 0; k < order.size(); ++k) {
    SCOPED_TRACE("batch " + std::to_string(k));
    const ng::LoaderState st = dl.state();
    EXPECT_EQ(st.shard, order[k].first == 0 ? 0u : 1u);
    EXPECT_EQ(st.sample, uint64_t(order[k].second));
    EXPECT_EQ(st.epoch, k < 5 ? 0u : 1u);
    expect_sample(next(dl, B, T), B, T, order[k].first, order[k].second);
  }
}

TEST_F(LoaderTest, SkipsShardsTooSmallForOneSample) {
  const int B = 2, T = 4;
  shard("a.bin", B * T + 1, 0);      // one sample
  shard("b.bin", B * T, 30000);      // one token short: skipped
  shard("c.bin", 0, 0);              // empty: skipped
  shard("d.bin", B * T + 1, 40000);  // one sample
  ng::DataLoader dl(opts(B, T));
  EXPECT_EQ(dl.samples_per_epoch(), 2u);
  EXPECT_EQ(dl.files().size(), 4u);
  EXPECT_EQ(dl.total_tokens(), uint64_t(3 * B * T + 2));
  expect_sample(next(dl, B, T), B, T, 0, 0);
  expect_sample(next(dl, B, T), B, T, 40000, 0);
  expect_sample(next(dl, B, T), B, T, 0, 0);
}

TEST_F(LoaderTest, NoUsableShardIsAUserErrorNamingPatternAndShape) {
  shard("a.bin", 16, 0);
  auto o = opts(4, 4);
  o.what = "data.val";
  const std::string msg = error_of([&] { ng::DataLoader dl(o); });
  EXPECT_NE(msg.find("data.val: no shard holds one batch"), std::string::npos) << msg;
  EXPECT_NE(msg.find("4*4*1+1 = 17 tokens"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path("*.bin")), std::string::npos) << msg;
  EXPECT_NE(msg.find("has 16"), std::string::npos) << msg;
}

TEST_F(LoaderTest, ResetStartsOverForEvaluation) {
  const int B = 1, T = 5;
  shard("a.bin", 4 * B * T + 1, 0);
  ng::DataLoader dl(opts(B, T));
  next(dl, B, T);
  next(dl, B, T);
  dl.reset();
  expect_sample(next(dl, B, T), B, T, 0, 0);
  EXPECT_EQ(dl.state().epoch, 0u);
}

// Identifies a batch by the global sample it came from (shard base / (B*T) + sample index).
int sample_id(const Batch& b, int B, int T) { return b.x[0] / (B * T); }

TEST_F(LoaderTest, ShuffleVisitsEverySampleOncePerEpochInANewOrder) {
  const int B = 2, T = 4;  // 8 tokens per sample; shard bases are multiples of 8
  shard("a.bin", 7 * B * T + 1, 0);
  shard("b.bin", 3, 800);  // skipped
  shard("c.bin", 6 * B * T + 3, 8000);
  ng::DataLoader dl(opts(B, T, true, 1234));
  ASSERT_EQ(dl.samples_per_epoch(), 13u);
  std::set<int> expected;
  for (int s = 0; s < 7; ++s) expected.insert(s);
  for (int s = 0; s < 6; ++s) expected.insert(1000 + s);

  std::vector<std::vector<int>> epochs(3);
  for (auto& order : epochs) {
    for (int k = 0; k < 13; ++k) {
      const Batch b = next(dl, B, T);
      // Every row of a shuffled sample is still a consecutive span with shifted targets.
      for (size_t i = 0; i < b.x.size(); ++i) {
        ASSERT_EQ(b.x[i], b.x[0] + int(i));
        ASSERT_EQ(b.y[i], b.x[i] + 1);
      }
      ASSERT_EQ(b.x[0] % (B * T), 0);
      order.push_back(sample_id(b, B, T));
    }
    EXPECT_EQ(std::set<int>(order.begin(), order.end()), expected);
    EXPECT_EQ(order.size(), expected.size());
  }
  EXPECT_NE(epochs[0], epochs[1]);
  EXPECT_NE(epochs[1], epochs[2]);
  std::vector<int> sorted_order(expected.begin(), expected.end());
  EXPECT_NE(epochs[0], sorted_order);  // 1 chance in 13! of a false failure
  EXPECT_EQ(dl.state().epoch, 3u);

  // Same seed, same orders; another seed, another order.
  ng::DataLoader again(opts(B, T, true, 1234));
  for (int k = 0; k < 13; ++k) ASSERT_EQ(sample_id(next(again, B, T), B, T), epochs[0][k]);
  ng::DataLoader other(opts(B, T, true, 99));
  std::vector<int> other_order;
  for (int k = 0; k < 13; ++k) other_order.push_back(sample_id(next(other, B, T), B, T));
  EXPECT_NE(other_order, epochs[0]);
}

void check_resume(const ng::LoaderOptions& o, int B, int T, int before, int after) {
  ng::DataLoader a(o);
  for (int k = 0; k < before; ++k) next(a, B, T);
  const ng::LoaderState saved = a.state();
  std::vector<Batch> expected;
  for (int k = 0; k < after; ++k) expected.push_back(next(a, B, T));

  ng::DataLoader b(o);
  next(b, B, T);  // a different position first, to be overwritten
  b.set_state(saved);
  EXPECT_EQ(b.state().shard, saved.shard);
  EXPECT_EQ(b.state().sample, saved.sample);
  EXPECT_EQ(b.state().epoch, saved.epoch);
  for (int k = 0; k < after; ++k) ASSERT_EQ(next(b, B, T), expected[k]) << "batch " << k << " after resume";
}

TEST_F(LoaderTest, SetStateResumesExactly) {
  const int B = 2, T = 3;
  shard("a.bin", 4 * B * T + 1, 0);
  shard("b.bin", 3 * B * T + 1, 10000);
  // Resume mid-shard, at a shard boundary, and in a later epoch; in order and shuffled.
  for (bool shuffle : {false, true}) {
    SCOPED_TRACE(shuffle ? "shuffled" : "in order");
    check_resume(opts(B, T, shuffle, 7), B, T, 2, 10);
    check_resume(opts(B, T, shuffle, 7), B, T, 4, 10);
    check_resume(opts(B, T, shuffle, 7), B, T, 16, 12);
  }
}

TEST_F(LoaderTest, SetStateRejectsPositionsOutsideTheData) {
  const int B = 2, T = 3;
  shard("a.bin", 4 * B * T + 1, 0);
  ng::DataLoader dl(opts(B, T));
  ng::LoaderState bad{0, 4, 0, {}};
  std::string msg = error_of([&] { dl.set_state(bad); });
  EXPECT_NE(msg.find("(shard 0, sample 4) does not fit"), std::string::npos) << msg;
  bad = {1, 0, 0, {}};
  EXPECT_THROW(dl.set_state(bad), ng::UserError);

  ng::DataLoader shuffled(opts(B, T, true, 1));
  const ng::LoaderState unshuffled_state{0, 1, 0, {}};  // rng all zero: saved without shuffle
  msg = error_of([&] { shuffled.set_state(unshuffled_state); });
  EXPECT_NE(msg.find("does not fit this shuffled data"), std::string::npos) << msg;
}

TEST_F(LoaderTest, TwoRanksCoverWhatOneRankWithTwiceTheRowsCovers) {
  const int B = 2, T = 4;
  shard("a.bin", 5 * 2 * B * T + 3, 0);
  shard("b.bin", 2 * B * T + 1, 30000);  // exactly one span of 2*B*T tokens (+1 for the last target)
  shard("c.bin", 3 * 2 * B * T + 1, 40000);
  for (bool shuffle : {false, true}) {
    SCOPED_TRACE(shuffle ? "shuffled" : "in order");
    ng::LoaderOptions one = opts(2 * B, T, shuffle, 5);
    ng::LoaderOptions r0 = opts(B, T, shuffle, 5), r1 = opts(B, T, shuffle, 5);
    r0.world = r1.world = 2;
    r1.rank = 1;
    ng::DataLoader whole(one), rank0(r0), rank1(r1);
    EXPECT_EQ(whole.samples_per_epoch(), 9u);
    EXPECT_EQ(rank0.samples_per_epoch(), 9u);
    for (int k = 0; k < 20; ++k) {  // more than two epochs
      const Batch w = next(whole, 2 * B, T), a = next(rank0, B, T), b = next(rank1, B, T);
      std::vector<int32_t> x = a.x, y = a.y;
      x.insert(x.end(), b.x.begin(), b.x.end());
      y.insert(y.end(), b.y.begin(), b.y.end());
      ASSERT_EQ(x, w.x) << "batch " << k;
      ASSERT_EQ(y, w.y) << "batch " << k;
    }
  }
}

TEST_F(LoaderTest, RankReadsItsRowsAtOffsetRankTimesBT) {
  const int B = 1, T = 4;
  shard("a.bin", 2 * 3 * B * T + 1, 0);  // world 3: 2 samples of 12 tokens
  ng::LoaderOptions o = opts(B, T);
  o.world = 3, o.rank = 2;
  ng::DataLoader dl(o);
  EXPECT_EQ(dl.samples_per_epoch(), 2u);
  EXPECT_EQ(next(dl, B, T).x, (std::vector<int32_t>{8, 9, 10, 11}));
  EXPECT_EQ(next(dl, B, T).y, (std::vector<int32_t>{21, 22, 23, 24}));
  o.rank = 3;
  EXPECT_THROW(ng::DataLoader bad(o), ng::UserError);
}

TEST_F(LoaderTest, ReadsUint32Shards) {
  const int B = 1, T = 3;
  std::vector<int32_t> header(256, 0);
  header[0] = 20240801, header[1] = 7, header[2] = 5;
  const std::vector<uint32_t> ids = {100000, 100001, 100002, 100003, 100004};
  std::ofstream out(path("u.bin"), std::ios::binary);
  out.write(reinterpret_cast<const char*>(header.data()), 1024);
  out.write(reinterpret_cast<const char*>(ids.data()), 20);
  out.close();
  ng::DataLoader dl(opts(B, T));
  const Batch b = next(dl, B, T);
  EXPECT_EQ(b.x, (std::vector<int32_t>{100000, 100001, 100002}));
  EXPECT_EQ(b.y, (std::vector<int32_t>{100001, 100002, 100003}));
}

TEST_F(LoaderTest, BadFilesAreUserErrorsNamingTheFile) {
  const int B = 1, T = 2;
  shard("a.bin", 10, 0);
  {
    std::vector<int32_t> header(256, 0);
    header[0] = 123, header[1] = 1;
    std::ofstream(path("magic.bin"), std::ios::binary).write(reinterpret_cast<const char*>(header.data()), 1024);
  }
  std::string msg = error_of([&] { ng::DataLoader dl(opts(B, T)); });
  EXPECT_NE(msg.find(path("magic.bin") + ": bad magic 123"), std::string::npos) << msg;
  fs::remove(path("magic.bin"));

  {
    std::vector<int32_t> header(256, 0);
    header[0] = 20240520, header[1] = 3;
    std::ofstream(path("version.bin"), std::ios::binary).write(reinterpret_cast<const char*>(header.data()), 1024);
  }
  msg = error_of([&] { ng::DataLoader dl(opts(B, T)); });
  EXPECT_NE(msg.find(path("version.bin") + ": bad version 3"), std::string::npos) << msg;
  fs::remove(path("version.bin"));

  shard("trunc.bin", 10, 0);
  fs::resize_file(path("trunc.bin"), 1024 + 15);
  msg = error_of([&] { ng::DataLoader dl(opts(B, T)); });
  EXPECT_NE(msg.find(path("trunc.bin") + ": file size 1039 does not match"), std::string::npos) << msg;
  fs::remove(path("trunc.bin"));

  auto missing = opts(B, T);
  missing.patterns = {path("a.bin"), path("missing.bin")};
  missing.what = "data.train";
  msg = error_of([&] { ng::DataLoader dl(missing); });
  EXPECT_NE(msg.find("data.train: \"" + path("missing.bin") + "\" matches no file"), std::string::npos) << msg;

  auto nothing = opts(B, T);
  nothing.patterns = {path("val_*.bin")};
  nothing.what = "data.val";
  msg = error_of([&] { ng::DataLoader dl(nothing); });
  EXPECT_NE(msg.find("data.val: \"" + path("val_*.bin") + "\" matches no file"), std::string::npos) << msg;

  ng::DataLoader ok(opts(B, T));  // a.bin alone is fine
  EXPECT_EQ(ok.samples_per_epoch(), 4u);
}

TEST_F(LoaderTest, CheckTokenIdsNamesFilePositionAndId) {
  shard("a.bin", 100, 0);
  std::vector<int32_t> t(50, 7);
  t[17] = 60000;
  t[30] = 61000;
  ng::write_shard(path("b.bin"), t);
  ng::DataLoader dl(opts(1, 4));
  EXPECT_NO_THROW(dl.check_token_ids(65536));
  const std::string msg = error_of([&] { dl.check_token_ids(50257); });
  EXPECT_NE(msg.find(path("b.bin") + ": token id 60000 at position 17 is outside the model's vocabulary [0, 50257)"),
            std::string::npos)
      << msg;
}
