// Paths and small helpers shared by the tests.
#pragma once

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace leanembed::test {

// ../shared beside the checkout (models, corpus, expected outputs).
inline std::string shared_dir() { return LEANEMBED_SHARED_DIR; }
// peers/ (npm reference implementations).
inline std::string peers_dir() { return LEANEMBED_PEERS_DIR; }
inline std::string source_dir() { return LEANEMBED_SOURCE_DIR; }
// The build folder, for files tests generate.
inline std::string binary_dir() { return LEANEMBED_BINARY_DIR; }

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("test: cannot open " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace leanembed::test
