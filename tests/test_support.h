// Paths and small helpers shared by the tests.
#pragma once

#include <cstdlib>
#include <filesystem>
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

// A folder with the full-size MiniLM variants (model_int8.onnx, model_fp16.onnx, model_q4.onnx, and
// a copy of everything in ../shared/models/minilm-l6-synthetic), which ../shared keeps only as a
// recipe: made once per build folder by ../shared/tools/make-variants (python3-onnx, ~30 s),
// under a file lock so parallel tests make it once; LEANEMBED_VARIANTS_DIR names a ready folder.
// Throws (the test fails) if it cannot be made.
inline std::string minilm_variants_dir() {
  if (const char* ready = std::getenv("LEANEMBED_VARIANTS_DIR"); ready && *ready) return ready;
  const std::string dir = binary_dir() + "/variants/minilm-l6-synthetic";
  const std::string command = "mkdir -p '" + binary_dir() + "/variants' && flock '" + binary_dir() +
                              "/variants/.lock' sh -c 'test -f \"" + dir + "/onnx/model_q4.onnx\" || " +
                              shared_dir() + "/tools/make-variants " + shared_dir() +
                              "/models/minilm-l6-synthetic \"" + dir + "\" int8,fp16,q4 >/dev/null'";
  if (std::system(command.c_str()) != 0) throw std::runtime_error("test: could not make the MiniLM variants: " + command);
  return dir;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("test: cannot open " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A fresh empty folder <build>/<suite>/<name> (removed first), for the files one test writes.
inline std::filesystem::path fresh_dir(const std::string& suite, const std::string& name) {
  const std::filesystem::path p = std::filesystem::path(binary_dir()) / suite / name;
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

// Writes `text` to `p`, making its folder.
inline void write_text(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

}  // namespace leanembed::test
