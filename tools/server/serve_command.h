// The `serve` subcommand of the leanembed CLI: its flags (each also from LEANEMBED_<FLAG> and, where
// text-embeddings-inference has the flag, from TEI's variable: MODEL_ID, PORT, MAX_BATCH_TOKENS, …).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>

namespace leanembed::server {

struct ServeCommand {
  CLI::App* command = nullptr;
  std::function<int()> run;  // call when command->parsed()
};

ServeCommand add_serve_command(CLI::App& app);

}  // namespace leanembed::server
