#pragma once
// Errors a user can act on. The CLI prints `what()` as one line and exits non-zero; anything
// else that escapes is a bug and is reported as such.
#include <stdexcept>
#include <string>

namespace lingshu {

class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace lingshu
