// The NCCL communicator on one GPU, one process (label cuda; skips without a device or NCCL):
// collectives over a world of 1 must leave the data as it was and scalars averaged trivially.
#include "cuda_test_util.hpp"

#ifdef NORMGPT_HAVE_NCCL
#include "dist/nccl_communicator.hpp"

using namespace ng::test;

TEST(Nccl, OneRankCollectivesAreIdentities) {
  NG_SKIP_WITHOUT_GPU();
  auto comm = ng::make_nccl_communicator(0, 1, 0, ng::nccl_unique_id());
  EXPECT_EQ(comm->world(), 1);
  const auto x = random_floats(1000, 3);
  Dev d(x);
  comm->allreduce_mean(d.get(), x.size());
  EXPECT_EQ(d.host(), x);
  Dev shard(x.size());
  comm->reduce_scatter_mean(d.get(), shard.get(), x.size());
  EXPECT_EQ(shard.host(), x);
  comm->allgather_shards(d.get(), x.size());
  EXPECT_EQ(d.host(), x);
  double m[2] = {1.5, -2.0};
  comm->allreduce_mean(m, 2);
  EXPECT_EQ(m[0], 1.5);
  comm->allreduce_sum(m, 2);
  EXPECT_EQ(m[1], -2.0);
  comm->barrier();
}
#endif
