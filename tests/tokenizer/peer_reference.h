// Runs peers/tokenizer_reference.js (the Rust Hugging Face tokenizers through
// @anush008/tokenizers) and reads its answers. Missing node or peer -> the calling test FAILS.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace leanembed::test {

struct ReferenceEncoding {
  std::vector<std::int64_t> ids, type_ids, mask;
  std::vector<std::string> tokens;
};

// Encodes `texts` with the tokenizer.json at `tokenizer_json` for each max length in `lengths`
// ("128", "512", "none"). Files go to <build>/tokenizer_conformance/<tag>_*.json.
// Throws std::runtime_error with a clear message if node or the peer is missing or fails.
std::map<std::string, std::vector<ReferenceEncoding>> run_reference(const std::string& tokenizer_json,
                                                                    const std::vector<std::string>& texts,
                                                                    const std::vector<std::string>& lengths,
                                                                    const std::string& tag);

// Path of a work file for these tests in the build folder (the folder is created).
std::string conformance_work_path(const std::string& name);

// Lowercase hex of the bytes of s.
std::string to_hex(const std::string& s);

}  // namespace leanembed::test
