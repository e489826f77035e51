#include "peer_reference.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "test_support.h"

namespace leanembed::test {

std::string to_hex(const std::string& s) {
  static const char* digits = "0123456789abcdef";
  std::string h;
  h.reserve(s.size() * 2);
  for (unsigned char c : s) {
    h += digits[c >> 4];
    h += digits[c & 15];
  }
  return h;
}

std::string conformance_work_path(const std::string& name) {
  std::filesystem::path dir = std::filesystem::path(binary_dir()) / "tokenizer_conformance";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

std::map<std::string, std::vector<ReferenceEncoding>> run_reference(const std::string& tokenizer_json,
                                                                    const std::vector<std::string>& texts,
                                                                    const std::vector<std::string>& lengths,
                                                                    const std::string& tag) {
  const std::string script = peers_dir() + "/tokenizer_reference.js";
  const std::string module = peers_dir() + "/node_modules/@anush008/tokenizers/package.json";
  if (!std::filesystem::exists(script)) throw std::runtime_error("peer script missing: " + script);
  if (!std::filesystem::exists(module)) {
    throw std::runtime_error("@anush008/tokenizers is not installed in " + peers_dir() +
                             "/node_modules (run scripts/setup.sh)");
  }
  if (std::system("node --version > /dev/null 2>&1") != 0) {
    throw std::runtime_error("node is not on PATH: the tokenizer conformance tests need it to run the peer");
  }
  nlohmann::json input = nlohmann::json::array();
  for (const auto& t : texts) input.push_back(to_hex(t));
  const std::string in_path = conformance_work_path(tag + "_input.json");
  const std::string out_path = conformance_work_path(tag + "_reference.json");
  std::filesystem::remove(out_path);
  {
    std::ofstream f(in_path);
    f << input.dump();
  }
  std::string joined;
  for (const auto& l : lengths) joined += (joined.empty() ? "" : ",") + l;
  const std::string command = "node '" + script + "' encode '" + tokenizer_json + "' '" + in_path + "' '" + out_path +
                              "' " + joined;
  if (std::system(command.c_str()) != 0) throw std::runtime_error("the peer failed: " + command);
  nlohmann::json out = nlohmann::json::parse(read_file(out_path));
  std::map<std::string, std::vector<ReferenceEncoding>> result;
  for (const auto& l : lengths) {
    auto& list = result[l];
    for (const auto& e : out.at(l)) {
      ReferenceEncoding r;
      r.ids = e.at("ids").get<std::vector<std::int64_t>>();
      r.type_ids = e.at("type_ids").get<std::vector<std::int64_t>>();
      r.mask = e.at("mask").get<std::vector<std::int64_t>>();
      r.tokens = e.at("tokens").get<std::vector<std::string>>();
      list.push_back(std::move(r));
    }
    if (list.size() != texts.size()) throw std::runtime_error("the peer answered for a different number of texts");
  }
  return result;
}

}  // namespace leanembed::test
