// Choosing the communicator from the launcher's environment.
#include <cstdlib>

#include "core/errors.hpp"
#include "dist/communicator.hpp"

namespace ng {

#ifdef NORMGPT_HAVE_MPI
std::unique_ptr<Communicator> make_mpi_communicator(double timeout_s);
void mpi_abort_all(int exit_code);
#endif

namespace {

// World size the launcher announced, 1 when not launched by one.
int launcher_world_size() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS"}) {
    if (const char* v = std::getenv(var)) return std::max(1, std::atoi(v));
  }
  return 1;
}

bool launched_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK"})
    if (std::getenv(var)) return true;
  return false;
}

bool g_mpi_active = false;

}  // namespace

std::unique_ptr<Communicator> make_communicator(double timeout_s) {
#ifdef NORMGPT_HAVE_MPI
  if (launched_by_mpi()) {
    g_mpi_active = true;
    return make_mpi_communicator(timeout_s);
  }
#endif
  NG_REQUIRE(launcher_world_size() == 1,
             "launched as {} processes, but this normgpt was built without MPI (install libopenmpi-dev and rebuild "
             "with -DNORMGPT_MPI=ON)",
             launcher_world_size());
  (void)timeout_s;
  return std::make_unique<LocalCommunicator>();
}

void abort_all_ranks(int exit_code) {
#ifdef NORMGPT_HAVE_MPI
  if (g_mpi_active) mpi_abort_all(exit_code);
#endif
  (void)exit_code;
}

}  // namespace ng
