// The CUDA runtime helpers themselves (label cuda; skips without a device).
#include "cuda_test_util.hpp"

using namespace ng::test;

TEST(CudaRuntime, RoundTripAndPoison) {
  NG_SKIP_WITHOUT_GPU();
  const auto x = random_floats(1001, 1);
  Dev d(x);
  EXPECT_EQ(d.host(), x);
  Dev p(7);
  for (float v : p.host()) EXPECT_GT(v, 1e38f);
}
