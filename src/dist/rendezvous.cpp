#include "dist/rendezvous.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <thread>

#include "core/errors.hpp"

namespace ng {
namespace {

using Clock = std::chrono::steady_clock;

// Closes a socket on scope exit.
struct Socket {
  int fd = -1;
  explicit Socket(int f) : fd(f) {}
  ~Socket() {
    if (fd >= 0) ::close(fd);
  }
};

sockaddr_in address(const std::string& addr, int port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(uint16_t(port));
  NG_REQUIRE(inet_pton(AF_INET, addr.c_str(), &sa.sin_addr) == 1, "dist.master_addr: '{}' is not an IPv4 address",
             addr);
  return sa;
}

void send_all(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t k = ::send(fd, c, n, MSG_NOSIGNAL);
    NG_REQUIRE(k > 0, "rendezvous: a peer closed the connection while sending");
    c += k;
    n -= size_t(k);
  }
}

void recv_all(int fd, void* p, size_t n, Clock::time_point deadline) {
  char* c = static_cast<char*>(p);
  while (n > 0) {
    pollfd pf{fd, POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    NG_REQUIRE(left > 0 && ::poll(&pf, 1, int(left)) > 0, "rendezvous: timed out waiting for rank 0's data");
    const ssize_t k = ::recv(fd, c, n, 0);
    NG_REQUIRE(k > 0, "rendezvous: rank 0 closed the connection early");
    c += k;
    n -= size_t(k);
  }
}

}  // namespace

std::vector<char> tcp_broadcast_from_root(const std::string& addr, int port, int rank, int world,
                                          const std::vector<char>& root_bytes, double timeout_s) {
  if (world <= 1) return root_bytes;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s));
  const sockaddr_in sa = address(addr, port);
  if (rank == 0) {
    Socket server(::socket(AF_INET, SOCK_STREAM, 0));
    NG_REQUIRE(server.fd >= 0, "rendezvous: cannot create a socket");
    int one = 1;
    ::setsockopt(server.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    NG_REQUIRE(::bind(server.fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) == 0 &&
                   ::listen(server.fd, world) == 0,
               "rendezvous: cannot listen on {}:{} (dist.master_addr / dist.master_port; port in use?)", addr, port);
    for (int peer = 1; peer < world; ++peer) {
      pollfd pf{server.fd, POLLIN, 0};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      NG_REQUIRE(left > 0 && ::poll(&pf, 1, int(left)) > 0,
                 "rendezvous: only {} of {} ranks connected to {}:{} within dist.timeout_s ({} s)", peer, world, addr,
                 port, timeout_s);
      Socket client(::accept(server.fd, nullptr, nullptr));
      NG_REQUIRE(client.fd >= 0, "rendezvous: accept failed on {}:{}", addr, port);
      const uint32_t size = uint32_t(root_bytes.size());
      send_all(client.fd, &size, sizeof(size));
      send_all(client.fd, root_bytes.data(), root_bytes.size());
    }
    return root_bytes;
  }
  // Other ranks: rank 0 may not be listening yet, so retry until the deadline.
  for (;;) {
    Socket s(::socket(AF_INET, SOCK_STREAM, 0));
    NG_REQUIRE(s.fd >= 0, "rendezvous: cannot create a socket");
    if (::connect(s.fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) == 0) {
      uint32_t size = 0;
      recv_all(s.fd, &size, sizeof(size), deadline);
      NG_REQUIRE(size <= (1u << 20), "rendezvous: implausible message of {} bytes from {}:{}", size, addr, port);
      std::vector<char> bytes(size);
      recv_all(s.fd, bytes.data(), size, deadline);
      return bytes;
    }
    NG_REQUIRE(Clock::now() < deadline, "rendezvous: rank {} could not reach rank 0 at {}:{} within dist.timeout_s ({} s)",
               rank, addr, port, timeout_s);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace ng
