// Loading tokenizer.json and vocab.txt (+ tokenizer_config.json) into a Tokenizer::Impl.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "tokenizer/tokenizer_impl.h"

namespace leanembed::tokenizer {

// Reads a whole file. Throws Error(io) naming the path and the reason.
std::string read_whole_file(const std::string& path);

// Throws Error(model_format) naming `source` if `json` nests arrays/objects deeper than
// max_depth (checked before parsing: nlohmann's DOM and its destructor recurse). Linear time.
void check_json_depth(std::string_view json, const std::string& source, int max_depth = 64);

// Parses tokenizer.json content. Errors: model_format (malformed JSON or field), unsupported
// (a component we do not implement), each naming `source`, the field path and what was found.
std::unique_ptr<Tokenizer::Impl> load_tokenizer_json(std::string_view json, const std::string& source);

// vocab.txt + optional tokenizer_config.json / special_tokens_map.json (empty path: absent).
std::unique_ptr<Tokenizer::Impl> load_vocab_txt(const std::string& vocab_path, const std::string& config_path,
                                                const std::string& special_tokens_map_path);

}  // namespace leanembed::tokenizer
