// Tokenizer throughput: leanembed vs the Rust Hugging Face tokenizers (@anush008/tokenizers,
// single-threaded: RAYON_NUM_THREADS=1) on the shared corpus. Prints figures; asserts nothing.
//   tokenizer_bench [--min-seconds S] [--no-peer]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "leanembed/tokenizer.h"

namespace {

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

struct Measure {
  double seconds_per_pass = 0;
  std::size_t tokens = 0;
};

Measure measure_leanembed(const leanembed::Tokenizer& tok, const std::vector<std::string>& texts,
                          std::size_t max_length, double min_seconds) {
  leanembed::Encoding e;
  auto pass = [&] {
    std::size_t tokens = 0;
    for (const auto& t : texts) {
      tok.encode_into(t, max_length, e);
      tokens += e.ids.size();
    }
    return tokens;
  };
  pass();  // warm-up
  Measure m;
  int passes = 0;
  auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < min_seconds || passes < 2) {
    m.tokens = pass();
    ++passes;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  m.seconds_per_pass = elapsed / passes;
  return m;
}

// Runs bench/tokenizer_peer.js; returns false (and says why) if it cannot.
bool measure_peer(const std::string& tokenizer_json, const std::string& corpus, const std::string& max_length,
                  double min_seconds, Measure& encode, Measure& batch) {
  std::string out = "/tmp/leanembed_tokenizer_peer_" + std::to_string(::getpid()) + ".json";
  std::string command = "RAYON_NUM_THREADS=1 node '" LEANEMBED_SOURCE_DIR "/bench/tokenizer_peer.js' '" LEANEMBED_PEERS_DIR
                        "' '" + tokenizer_json + "' '" + corpus + "' " + max_length + " " + std::to_string(min_seconds) +
                        " > '" + out + "'";
  if (std::system(command.c_str()) != 0) {
    std::cerr << "peer failed: " << command << "\n";
    return false;
  }
  std::ifstream in(out);
  auto j = nlohmann::json::parse(in);
  std::remove(out.c_str());
  encode = {j.at("encode_s").get<double>(), j.at("tokens").get<std::size_t>()};
  batch = {j.at("batch_s").get<double>(), j.at("tokens").get<std::size_t>()};
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  double min_seconds = 2;
  bool peer = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--min-seconds" && i + 1 < argc) min_seconds = std::atof(argv[++i]);
    else if (a == "--no-peer") peer = false;
  }
  const std::string shared = LEANEMBED_SHARED_DIR;
  const std::string tokenizer_json = shared + "/models/minilm-l6-synthetic/tokenizer.json";
  auto tok = leanembed::Tokenizer::load(tokenizer_json);

  std::printf("tokenizer throughput, one thread, tokens/s (special tokens included)\n");
  std::printf("%-14s %-6s %8s %12s %14s %14s %8s %8s\n", "corpus", "maxlen", "tokens", "leanembed", "peer encode",
              "peer batch", "x enc", "x batch");
  for (const char* name : {"sentences.txt", "docs.txt"}) {
    const std::string corpus = shared + "/corpus/" + name;
    auto texts = read_lines(corpus);
    for (const char* len : {"128", "512", "none"}) {
      std::size_t max_length = std::string(len) == "none" ? leanembed::no_truncation : std::stoul(len);
      Measure ours = measure_leanembed(tok, texts, max_length, min_seconds);
      double ours_rate = ours.tokens / ours.seconds_per_pass;
      Measure enc, bat;
      if (peer && measure_peer(tokenizer_json, corpus, len, min_seconds, enc, bat)) {
        if (enc.tokens != ours.tokens) std::printf("  (token counts differ: %zu vs peer %zu)\n", ours.tokens, enc.tokens);
        double enc_rate = enc.tokens / enc.seconds_per_pass, bat_rate = bat.tokens / bat.seconds_per_pass;
        std::printf("%-14s %-6s %8zu %12.0f %14.0f %14.0f %8.1f %8.1f\n", name, len, ours.tokens, ours_rate, enc_rate,
                    bat_rate, ours_rate / enc_rate, ours_rate / bat_rate);
      } else {
        std::printf("%-14s %-6s %8zu %12.0f %14s %14s\n", name, len, ours.tokens, ours_rate, "-", "-");
      }
      std::fflush(stdout);
    }
  }
  return 0;
}
