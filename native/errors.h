// The addon's error kinds and their one-line messages. Every C++ exception that reaches JS is
// classified here, and the binding gives the JS Error the matching `code` (js_values.h):
//   out of memory (libtorch's c10::OutOfMemoryError, std::bad_alloc) -> ERR_NATIVE_OOM
//   UserError (bad input, bad file, bad option)                       -> ERR_NATIVE_USER
//   DistributedError (a peer rank failed, a collective failed)        -> ERR_NATIVE_DISTRIBUTED
//   anything else (a libtorch check that should not fail, a bug)      -> ERR_NATIVE_INTERNAL
// c10::Error::what() carries a C++ backtrace of many lines; JS users get
// what_without_backtrace() instead.
#pragma once

#include <c10/util/Exception.h>

#include <exception>
#include <new>
#include <stdexcept>
#include <string>

namespace mentallam {

// A user-facing error with a message that is already clear (bad file, bad shape, bad option).
struct UserError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The process group failed: a peer rank died, hung or left with an error, or a collective failed.
// The message names the rank (distributed.h).
struct DistributedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class ErrorKind { kOutOfMemory, kUser, kDistributed, kInternal };

inline ErrorKind KindOf(const std::exception& error) {
  if (dynamic_cast<const c10::OutOfMemoryError*>(&error) != nullptr) return ErrorKind::kOutOfMemory;
  if (dynamic_cast<const std::bad_alloc*>(&error) != nullptr) return ErrorKind::kOutOfMemory;
  // libtorch's default CPU allocator (MENTALLAM_CPU_CACHE=0) reports exhaustion through
  // CAFFE_ENFORCE, a plain c10::Error, not an OutOfMemoryError (c10/core/impl/alloc_cpu.cpp).
  if (const auto* torch_error = dynamic_cast<const c10::Error*>(&error)) {
    if (std::string(torch_error->what_without_backtrace())
            .find("DefaultCPUAllocator: can't allocate memory") != std::string::npos) {
      return ErrorKind::kOutOfMemory;
    }
  }
  if (dynamic_cast<const UserError*>(&error) != nullptr) return ErrorKind::kUser;
  if (dynamic_cast<const DistributedError*>(&error) != nullptr) return ErrorKind::kDistributed;
  return ErrorKind::kInternal;
}

// The `code` a JS Error of this kind carries (typed in src/native/addonTypes.ts).
inline const char* CodeOf(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kOutOfMemory:
      return "ERR_NATIVE_OOM";
    case ErrorKind::kUser:
      return "ERR_NATIVE_USER";
    case ErrorKind::kDistributed:
      return "ERR_NATIVE_DISTRIBUTED";
    case ErrorKind::kInternal:
      return "ERR_NATIVE_INTERNAL";
  }
  return "ERR_NATIVE_INTERNAL";
}

inline std::string MessageOf(const std::exception& error) {
  if (const auto* torch_error = dynamic_cast<const c10::Error*>(&error)) {
    return torch_error->what_without_backtrace();
  }
  return error.what();
}

}  // namespace mentallam
