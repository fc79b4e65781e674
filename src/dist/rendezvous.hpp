// A minimal TCP rendezvous: rank 0 hands a small blob (NCCL's unique id) to every other rank over
// dist.master_addr:dist.master_port, for multi-GPU runs launched without MPI (e.g. one process per
// GPU started by a script). Rank 0 listens; the others connect, retrying until the timeout.
#pragma once

#include <string>
#include <vector>

namespace ng {

// Rank 0 sends `root_bytes` to ranks 1..world-1 and returns them; other ranks return what they
// received. UserError naming the address when a peer does not show up within timeout_s.
std::vector<char> tcp_broadcast_from_root(const std::string& addr, int port, int rank, int world,
                                          const std::vector<char>& root_bytes, double timeout_s);

}  // namespace ng
