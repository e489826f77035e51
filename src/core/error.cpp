#include "leanembed/error.h"

namespace leanembed {

const char* error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::io: return "io";
    case ErrorCode::model_format: return "model_format";
    case ErrorCode::unsupported: return "unsupported";
    case ErrorCode::out_of_memory: return "out_of_memory";
    case ErrorCode::runtime: return "runtime";
  }
  return "unknown";
}

}  // namespace leanembed
