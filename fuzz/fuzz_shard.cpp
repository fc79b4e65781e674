// libFuzzer target: token shards (src/data/shard.hpp) and the DataLoader over them.
//
// Input: 4 control bytes, then the bytes of the shard file.
//   byte 0: B = 1 + b%3, T = 1 + (b/3)%8, shuffle = (b/24)&1, world = 1 + (b/48)%2
//   byte 1: next_batch calls = 1 + b%8, rank = (b/8)%world, seed = b
//   byte 2: bit 0 set_state before reading; bits 1..: saved shard index; byte 3: saved sample
// Expected: success or ng::UserError. Oracles beyond the sanitizers: any other exception; tokens
// from read_shard that differ from the file's bytes; loader rows whose targets are not the inputs
// shifted by one.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "core/errors.hpp"
#include "data/loader.hpp"
#include "data/shard.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return -1;
  const uint8_t c0 = data[0], c1 = data[1], c2 = data[2], c3 = data[3];
  const std::string_view file(reinterpret_cast<const char*>(data + 4), size - 4);
  const std::string path = ng_fuzz::temp_dir() + "/shard.bin";
  ng_fuzz::write_file(path, file);

  try {
    const ng::ShardInfo info = ng::open_shard(path);
    const std::vector<int32_t> all = ng::read_shard(path);
    if (all.size() != info.num_tokens) ng_fuzz::finding("read_shard returned the wrong number of tokens");
    for (size_t i = 0; i < all.size(); ++i) {
      const char* p = file.data() + ng::kShardHeaderBytes + i * info.token_bytes;
      int32_t expect = 0;
      if (info.token_bytes == 2) {
        uint16_t u;
        std::memcpy(&u, p, 2);
        expect = u;
      } else {
        std::memcpy(&expect, p, 4);
      }
      if (all[i] != expect) ng_fuzz::finding("read_shard token differs from the file");
    }
    // Ranges at and past the end must be UserErrors, not reads out of bounds.
    const uint64_t n = info.num_tokens;
    const uint64_t firsts[] = {0, n / 2, n, n + 1, uint64_t(c3), ~uint64_t(0)};
    const uint64_t counts[] = {0, 1, n, n + 1, uint64_t(c2), ~uint64_t(0)};
    for (uint64_t first : firsts)
      for (uint64_t count : counts) {
        if (first <= n && count <= n - first) {
          std::vector<int32_t> part(count);
          ng::read_shard_tokens(info, first, count, part.data());
          if (count && std::memcmp(part.data(), all.data() + first, count * 4) != 0)
            ng_fuzz::finding("read_shard_tokens differs from read_shard");
        } else {
          try {
            int32_t sink[1];
            ng::read_shard_tokens(info, first, count, sink);
            ng_fuzz::finding("read_shard_tokens accepted a range past the end");
          } catch (const ng::UserError&) {
          }
        }
      }
  } catch (const ng::UserError& e) {
    ng_fuzz::rejected(e);
  }

  try {
    ng::LoaderOptions o;
    o.patterns = {path};
    o.B = 1 + c0 % 3;
    o.T = 1 + (c0 / 3) % 8;
    o.shuffle = (c0 / 24) & 1;
    o.world = 1 + (c0 / 48) % 2;
    o.rank = (c1 / 8) % o.world;
    o.seed = c1;
    o.what = "data.train";
    ng::DataLoader loader(o);
    try {
      loader.check_token_ids(1 + c3 * 257);
    } catch (const ng::UserError& e) {
      ng_fuzz::rejected(e);
    }
    if (c2 & 1) {
      ng::LoaderState s;
      s.shard = c2 >> 1;
      s.sample = c3;
      s.epoch = c1;
      if (o.shuffle) s.rng = {c0 | 1u, c1, c2, c3};
      loader.set_state(s);
    }
    const size_t bt = size_t(o.B) * o.T;
    std::vector<int32_t> in(bt), tg(bt);
    for (int k = 0, n = 1 + c1 % 8; k < n; ++k) {
      loader.next_batch(in.data(), tg.data());
      for (size_t i = 0; i + 1 < bt; ++i)
        if (tg[i] != in[i + 1]) ng_fuzz::finding("targets are not the inputs shifted by one");
    }
    const ng::LoaderState st = loader.state();
    loader.reset();
    loader.set_state(st);
    loader.next_batch(in.data(), tg.data());
  } catch (const ng::UserError& e) {
    ng_fuzz::rejected(e);
  }
  return 0;
}
