// The part of the error idiom that .cu files may include: no fmt/spdlog (they do not compile
// under nvcc in C++20 mode, DESIGN.md). Defined in core/errors_plain.cpp.
#pragma once

#include <string>

namespace ng {

[[noreturn]] void throw_internal(const char* file, int line, const std::string& what);
[[noreturn]] void throw_user(const std::string& what);

}  // namespace ng
