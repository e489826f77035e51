// The flags of `leanembed serve` (tools/server/serve_command.cpp) and their environment variables,
// parsed in-process: every flag reads LEANEMBED_<FLAG>, and a variable of each kind of flag (text,
// choice, integer, unsigned, byte count, seconds, switch, list) gives the flag its value; the
// command line wins. (test_server.cpp checks, end to end, that such values reach the server.)
#include "server/serve_command.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>
#include <vector>

namespace {

using leanembed::server::add_serve_command;

// Sets environment variables for one test and removes them (and any it names in `also_clear`, set
// as a side effect of parsing) afterwards.
using Vars = std::vector<std::pair<std::string, std::string>>;

class ScopedEnv {
 public:
  explicit ScopedEnv(Vars vars, std::vector<std::string> also_clear = {})
      : vars_(std::move(vars)), also_clear_(std::move(also_clear)) {
    for (const auto& [name, value] : vars_) ::setenv(name.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : vars_) ::unsetenv(name.c_str());
    for (const auto& name : also_clear_) ::unsetenv(name.c_str());
  }

 private:
  Vars vars_;
  std::vector<std::string> also_clear_;
};

std::string variable_of(const std::string& long_name) {
  std::string v = "LEANEMBED_" + long_name;
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return c == '-' ? '_' : std::toupper(c); });
  return v;
}

}  // namespace

TEST(ServeCommand, EveryFlagReadsItsLeanembedVariable) {
  // Fails if a flag is added without an environment variable, or with one not named
  // LEANEMBED_<first long name> (README: "Every flag also reads LEANEMBED_<FLAG>").
  CLI::App app;
  const auto serve = add_serve_command(app);
  int flags = 0;
  for (const CLI::Option* o : serve.command->get_options()) {
    if (o->get_lnames().empty() || o->get_lnames().front() == "help") continue;
    ++flags;
    EXPECT_EQ(o->get_envname(), variable_of(o->get_lnames().front())) << "--" << o->get_lnames().front();
  }
  EXPECT_GE(flags, 30);  // the model's flags and the server's: the loop did look at them
}

TEST(ServeCommand, VariablesOfEveryKindGiveTheirFlagsValues) {
  ScopedEnv env(Vars{{"LEANEMBED_SERVED_MODEL_NAME", "from-env"},                         // text
                 {"LEANEMBED_POOLING", "cls"},                                        // choice
                 {"LEANEMBED_MAX_BATCH_REQUESTS", "7"},                               // integer
                 {"LEANEMBED_MAX_CONNECTIONS", "3"},                                  // unsigned
                 {"LEANEMBED_PAYLOAD_LIMIT", "12345"},                                // byte count
                 {"LEANEMBED_GRACEFUL_TIMEOUT", "0.25"},                              // seconds
                 {"LEANEMBED_AUTO_TRUNCATE", "true"},                                 // switch
                 {"LEANEMBED_CORS_ALLOW_ORIGIN", "http://a.example,http://b.example"}, // list
                 {"LEANEMBED_CLIENT_TIMEOUT", "4"}});
  CLI::App app;
  const auto serve = add_serve_command(app);
  app.parse(std::string("serve --client-timeout 9"), false);
  ASSERT_TRUE(serve.command->parsed());
  const CLI::App& c = *serve.command;
  EXPECT_EQ(c.get_option("--served-model-name")->as<std::string>(), "from-env");
  EXPECT_EQ(c.get_option("--pooling")->as<std::string>(), "cls");
  EXPECT_EQ(c.get_option("--max-batch-requests")->as<int64_t>(), 7);
  EXPECT_EQ(c.get_option("--max-connections")->as<unsigned>(), 3u);
  EXPECT_EQ(c.get_option("--payload-limit")->as<std::size_t>(), 12345u);
  EXPECT_EQ(c.get_option("--graceful-timeout")->as<double>(), 0.25);
  EXPECT_TRUE(c.get_option("--auto-truncate")->as<bool>());
  EXPECT_EQ(c.get_option("--cors-allow-origin")->as<std::vector<std::string>>(),
            (std::vector<std::string>{"http://a.example", "http://b.example"}));
  EXPECT_EQ(c.get_option("--client-timeout")->as<unsigned>(), 9u);  // the command line wins
}

TEST(ServeCommand, OlderEmbeddingCacheVariableIsRead) {
  // `--cache` is the older name of --embedding-cache and LEANEMBED_CACHE the older name of its
  // variable (as `leanembed embed` reads it); LEANEMBED_EMBEDDING_CACHE wins over it. Fails if
  // the serve command ignores LEANEMBED_CACHE.
  {
    ScopedEnv env(Vars{{"LEANEMBED_CACHE", "/tmp/older-cache"}}, {"LEANEMBED_EMBEDDING_CACHE"});
    CLI::App app;
    const auto serve = add_serve_command(app);
    app.parse(std::string("serve"), false);
    EXPECT_EQ(serve.command->get_option("--embedding-cache")->as<std::string>(), "/tmp/older-cache");
  }
  {
    ScopedEnv env(Vars{{"LEANEMBED_CACHE", "/tmp/older-cache"}, {"LEANEMBED_EMBEDDING_CACHE", "/tmp/newer-cache"}});
    CLI::App app;
    const auto serve = add_serve_command(app);
    app.parse(std::string("serve"), false);
    EXPECT_EQ(serve.command->get_option("--embedding-cache")->as<std::string>(), "/tmp/newer-cache");
  }
}
