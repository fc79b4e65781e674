// One error idiom for the whole program (DESIGN.md, style 5).
//
// UserError: the user gave us something wrong (config, flag, file). main() prints its one-line
// message and exits with code 2. InternalError: a broken invariant inside normgpt; main() prints
// it with file and line and exits with code 1. Nothing else is thrown on purpose.
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace ng {

struct UserError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct InternalError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class... Args>
[[noreturn]] void fail_user(fmt::format_string<Args...> f, Args&&... args) {
  throw UserError(fmt::format(f, std::forward<Args>(args)...));
}

[[noreturn]] inline void fail_internal(const char* file, int line, const std::string& what) {
  throw InternalError(fmt::format("{}:{}: internal error: {}", file, line, what));
}

}  // namespace ng

// NG_CHECK(cond, "message {}", arg): an invariant of the program, not of the user's input.
#define NG_CHECK(cond, ...)                                                        \
  do {                                                                             \
    if (!(cond)) ::ng::fail_internal(__FILE__, __LINE__, fmt::format(__VA_ARGS__)); \
  } while (0)

// NG_REQUIRE(cond, "message {}", arg): a condition on the user's input; raises UserError (exit 2).
#define NG_REQUIRE(cond, ...)                \
  do {                                       \
    if (!(cond)) ::ng::fail_user(__VA_ARGS__); \
  } while (0)
