// Turning C++ exceptions into one-line messages for JS. c10::Error::what() carries a C++
// backtrace of many lines; JS users get what_without_backtrace() instead.
#pragma once

#include <c10/util/Exception.h>

#include <exception>
#include <string>

namespace mentallam {

// A user-facing error with a message that is already clear (bad file, bad shape, bad option).
struct UserError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline std::string MessageOf(const std::exception& error) {
  if (const auto* torch_error = dynamic_cast<const c10::Error*>(&error)) {
    return torch_error->what_without_backtrace();
  }
  return error.what();
}

}  // namespace mentallam
