// options.h — JavaScript options of Embedder.load() → leanembed::EmbedderOptions.
//
// The one place where the JS option names (README.md, types/index.d.cts) meet the C++ fields.
#pragma once

#include <napi.h>

#include <stdexcept>
#include <string>

#include "leanembed/embedder.h"

namespace leanembed_node {

// A JS argument of the wrong type (or an unknown option name): surfaces as a TypeError with
// code "invalid_argument". Values of the right type but out of range are leanembed::Error.
struct ArgumentTypeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Reads every known key of `js`; throws ArgumentTypeError for an unknown key or a wrong type, and
// leanembed::Error(invalid_argument) for a bad value (negative count, unknown dtype / pooling).
leanembed::EmbedderOptions embedder_options_from_js(const Napi::Object& js);

}  // namespace leanembed_node
