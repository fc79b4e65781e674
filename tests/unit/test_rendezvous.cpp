// The TCP rendezvous on loopback: rank 0's bytes reach every rank, and a missing peer is a clear
// error after the timeout instead of a hang. Bounded: every wait has a deadline.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "core/errors.hpp"
#include "dist/rendezvous.hpp"

namespace {

// A port that was free a moment ago (bind to port 0, read it back, release it).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  socklen_t len = sizeof(sa);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  ::close(fd);
  return ntohs(sa.sin_port);
}

TEST(Rendezvous, RootBytesReachEveryRank) {
  const int port = free_port();
  const std::vector<char> id = {'n', 'c', 'c', 'l', '\0', '\x7f', '\x01'};
  std::vector<std::future<std::vector<char>>> ranks;
  for (int r = 3; r >= 0; --r)  // the others start before rank 0 listens: they must retry
    ranks.push_back(std::async(std::launch::async, [=] {
      return ng::tcp_broadcast_from_root("127.0.0.1", port, r, 4, r == 0 ? id : std::vector<char>{}, 10.0);
    }));
  for (auto& f : ranks) EXPECT_EQ(f.get(), id);
}

TEST(Rendezvous, MissingRootIsAClearErrorNotAHang) {
  const int port = free_port();
  try {
    ng::tcp_broadcast_from_root("127.0.0.1", port, 1, 2, {}, 0.3);
    FAIL() << "expected a UserError";
  } catch (const ng::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("could not reach rank 0"), std::string::npos) << e.what();
  }
}

TEST(Rendezvous, MissingPeerIsAClearErrorAndBadAddressIsRejected) {
  const int port = free_port();
  try {
    ng::tcp_broadcast_from_root("127.0.0.1", port, 0, 3, {'x'}, 0.3);
    FAIL() << "expected a UserError";
  } catch (const ng::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("only 1 of 3 ranks connected"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ng::tcp_broadcast_from_root("not-an-ip", port, 1, 2, {}, 0.1), ng::UserError);
}

}  // namespace
