// Helpers for the reader tests: parse a hand-built model, expect an error with given words.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "leanembed/error.h"
#include "onnx/reader.h"
#include "proto_writer.h"

namespace leanembed::test {

// Parses `p` from a heap copy that the returned Model keeps alive.
inline onnx::Model parse(const Proto& p, const onnx::ReadOptions& opt = {}, const std::string& dir = "") {
  auto buf = std::make_shared<const std::string>(p.str());
  return onnx::parse_model(std::as_bytes(std::span(buf->data(), buf->size())), buf, dir, "test.onnx", opt);
}

// Runs f and checks it throws leanembed::Error with `code` and a message containing every one of `words`.
inline void expect_error(const std::function<void()>& f, ErrorCode code, std::initializer_list<std::string> words) {
  try {
    f();
    ADD_FAILURE() << "expected an Error(" << error_code_name(code) << ")";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const auto& w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << "'" << w << "' not in: " << e.what();
  }
}

// A model whose graph has `init` as its only initializer, used by one Identity node.
inline Proto model_with_initializer(const Proto& init, const std::string& name = "w") {
  Proto g;
  g.message(1, node("Identity", {name}, {"y"}, "id"));
  g.message(5, init);
  g.message(12, value_info("y", 1, {}));
  return model(g);
}

}  // namespace leanembed::test
