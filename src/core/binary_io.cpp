#include "core/binary_io.hpp"

#include <cstdio>
#include <filesystem>
#include <fcntl.h>
#include <unistd.h>

#include "core/errors.hpp"

namespace ng {

uint64_t file_size_or_fail(const std::string& path) {
  std::error_code ec;
  auto st = std::filesystem::status(path, ec);
  NG_REQUIRE(!ec && std::filesystem::exists(st), "file not found: {}", path);
  NG_REQUIRE(std::filesystem::is_regular_file(st), "not a regular file: {}", path);
  return std::filesystem::file_size(path);
}

void read_exact(const std::string& path, uint64_t offset, void* dst, uint64_t bytes, const char* what) {
  FILE* f = std::fopen(path.c_str(), "rb");
  NG_REQUIRE(f != nullptr, "cannot open {}", path);
  // bytes == 0 skips fread: dst may then be null (an empty vector's data()), and passing null to
  // fread is undefined even for zero bytes (UBSan, asan preset).
  bool ok = std::fseek(f, long(offset), SEEK_SET) == 0 && (bytes == 0 || std::fread(dst, 1, bytes, f) == bytes);
  std::fclose(f);
  NG_REQUIRE(ok, "{}: file too short while reading {} ({} bytes at offset {})", path, what, bytes, offset);
}

void write_file_atomic(const std::string& path, const std::vector<std::pair<const void*, uint64_t>>& chunks) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  NG_REQUIRE(f != nullptr, "cannot write {}", tmp);
  bool ok = true;
  for (const auto& [ptr, n] : chunks) ok = ok && (n == 0 || std::fwrite(ptr, 1, n, f) == n);  // as in read_exact
  ok = ok && std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    std::remove(tmp.c_str());
    fail_user("failed writing {} (disk full?)", path);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  NG_REQUIRE(!ec, "cannot rename {} to {}: {}", tmp, path, ec.message());
}

}  // namespace ng
