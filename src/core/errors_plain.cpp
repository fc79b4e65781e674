#include "core/errors_plain.hpp"

#include "core/errors.hpp"

namespace ng {

void throw_internal(const char* file, int line, const std::string& what) { fail_internal(file, line, what); }
void throw_user(const std::string& what) { throw UserError(what); }

}  // namespace ng
