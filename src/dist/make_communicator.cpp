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

[[maybe_unused]] bool launched_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK"})
    if (std::getenv(var)) return true;
  return false;
}

bool g_mpi_active = false;
Communicator* g_comm = nullptr;  // deliberately leaked on error paths (see the header)

}  // namespace

Communicator& process_communicator(double timeout_s) {
  if (g_comm) return *g_comm;
#ifdef NORMGPT_HAVE_MPI
  if (launched_by_mpi()) {
    g_mpi_active = true;
    g_comm = make_mpi_communicator(timeout_s).release();
    return *g_comm;
  }
#endif
  NG_REQUIRE(launcher_world_size() == 1,
             "launched as {} processes, but this normgpt was built without MPI (install libopenmpi-dev and rebuild "
             "with -DNORMGPT_MPI=ON)",
             launcher_world_size());
  (void)timeout_s;
  g_comm = new LocalCommunicator();
  return *g_comm;
}

void Communicator::broadcast_bytes(char*, size_t) {
  NG_CHECK(world() == 1, "{} cannot broadcast bytes between {} ranks", name(), world());
}

void finalize_communicator() {
  delete g_comm;
  g_comm = nullptr;
  g_mpi_active = false;
}

void abort_all_ranks(int exit_code) {
#ifdef NORMGPT_HAVE_MPI
  if (g_mpi_active) mpi_abort_all(exit_code);
#endif
  (void)exit_code;
}

}  // namespace ng
