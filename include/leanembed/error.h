// leanembed/error.h — the one error type the library throws.
//
// Every failure the library reports is a leanembed::Error: a category (ErrorCode) a program can
// branch on, and a message a person can act on — which file, which field, what was expected and
// what was found. Bad input (a file, a path, text, a request) never aborts the process.
#pragma once

#include <stdexcept>
#include <string>

namespace leanembed {

enum class ErrorCode {
  invalid_argument,  // a caller's argument is out of range or malformed (options, shapes, text)
  io,                // a file or folder could not be opened, mapped or read
  model_format,      // a model or tokenizer file is malformed (truncated, corrupt, wrong type)
  unsupported,       // a well-formed file uses something we do not implement (op, component, dtype)
  out_of_memory,     // an allocation or a memory budget could not be met
  runtime,           // anything else that went wrong while running
};

const char* error_code_name(ErrorCode code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace leanembed
