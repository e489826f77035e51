// Shared by the hub download tests: scratch cache folders, folder listings, a clean environment.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "test_support.h"

namespace leanembed::test {

inline std::string tiny_model() { return shared_dir() + "/models/tiny-bert-synthetic"; }
inline std::string minilm_model() { return shared_dir() + "/models/minilm-l6-synthetic"; }

// A fresh folder under the build tree.
inline std::filesystem::path hub_scratch(const std::string& name) {
  std::filesystem::path p = std::filesystem::path(binary_dir()) / "test_hub" / name;
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

// No hub setting leaks in from the caller's environment; loopback never goes through a proxy.
inline void clean_hub_environment() {
  for (const char* v : {"HF_ENDPOINT", "HF_TOKEN", "LEANEMBED_OFFLINE", "HF_HUB_OFFLINE", "CURL_CA_BUNDLE"}) ::unsetenv(v);
  ::setenv("NO_PROXY", "127.0.0.1,localhost", 1);
  ::setenv("no_proxy", "127.0.0.1,localhost", 1);
}

// Every regular file under `folder` (relative names), the hub's own bookkeeping files excepted.
inline std::set<std::string> files_in(const std::filesystem::path& folder) {
  std::set<std::string> names;
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string name = std::filesystem::relative(it->path(), folder, ec).string();
    if (name == ".leanembed-hub.lock" || name == ".leanembed-hub-absent") continue;
    names.insert(name);
  }
  return names;
}

// Whether every file of `names` is byte-identical in both folders.
inline bool same_files(const std::filesystem::path& a, const std::filesystem::path& b, const std::set<std::string>& names) {
  for (const auto& n : names)
    if (read_file((a / n).string()) != read_file((b / n).string())) return false;
  return true;
}

}  // namespace leanembed::test
