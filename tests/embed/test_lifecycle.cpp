// The model's life cycle: unload and reload under concurrent callers, idle unload, dispose, and
// the memory budget.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "leanembed/embedder.h"
#include "leanembed/error.h"
#include "embed_test_support.h"

using namespace leanembed;
using test::cosine;
using test::charged_model_bytes;
using test::model_dir;
using test::options_for;
using test::same;

TEST(Lifecycle, HundredUnloadReloadCyclesUnderConcurrentCallers) {
  Embedder e(options_for("tiny-bert-synthetic"));
  const std::vector<std::string> texts = {"first text", "a second, longer text with more words", ""};
  std::vector<std::vector<float>> want = e.embed(texts);
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, calls{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 3; ++t) {
    callers.emplace_back([&, t] {
      while (!stop) {
        try {
          if (!same(e.embed_one(texts[t]), want[t])) ++failures;
          ++calls;
        } catch (const std::exception&) {
          ++failures;
        }
      }
    });
  }
  for (int cycle = 0; cycle < 100; ++cycle) {
    // Each cycle: the callers have the model loaded again, then it is unloaded under them.
    for (int wait = 0; wait < 5000 && !e.info().loaded; ++wait) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (!e.info().loaded) {  // (no ASSERT here: the caller threads must be joined below)
      ADD_FAILURE() << "the callers did not reload the model (cycle " << cycle << ")";
      break;
    }
    e.unload();
    EXPECT_EQ(e.info().unloads, static_cast<uint64_t>(cycle + 1));  // info() does not wake the model
  }
  stop = true;
  for (auto& th : callers) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(calls.load(), 0);
  EXPECT_GE(e.info().loads, 101u);
}

TEST(Lifecycle, InfoDoesNotWakeTheModelAndDisposeIsFinal) {
  Embedder e(options_for("tiny-bert-synthetic"));
  e.unload();
  EmbedderInfo i = e.info();
  EXPECT_FALSE(i.loaded);
  EXPECT_EQ(i.dims, 64);
  EXPECT_FALSE(e.info().loaded);
  EXPECT_EQ(e.embed_one("wake up").size(), 64u);
  EXPECT_TRUE(e.info().loaded);
  EXPECT_EQ(e.info().loads, 2u);
  e.dispose();
  EXPECT_TRUE(e.info().disposed);
  EXPECT_FALSE(e.info().loaded);
  EXPECT_THROW(e.embed_one("too late"), Error);
}

TEST(Lifecycle, IdleUnloadFreesTheModelAndTheNextCallReloads) {
  EmbedderOptions o = options_for("tiny-bert-synthetic");
  o.idle_unload_seconds = 0.05;
  Embedder e(o);
  std::vector<float> before = e.embed_one("idle test");
  for (int i = 0; i < 200 && e.info().loaded; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(e.info().loaded);
  EXPECT_TRUE(same(e.embed_one("idle test"), before));
  EXPECT_GE(e.info().loads, 2u);
}

TEST(Lifecycle, MemoryBudgetRefusesWhatCannotFitAndCutsBatches) {
  EmbedderOptions o = options_for("minilm-l6-synthetic");
  o.max_memory_bytes = 50u << 20;  // less than the file's charged part + the runtime and tokenizer
  try {
    Embedder e(o);
    FAIL() << "a budget below the model file must be refused";
  } catch (const Error& err) {
    EXPECT_EQ(err.code(), ErrorCode::out_of_memory);
    EXPECT_NE(std::string(err.what()).find("MB"), std::string::npos);
  }
  // The file's charged part (all but the word table) plus almost nothing: one 256-token text needs more.
  o.max_memory_bytes = charged_model_bytes("minilm-l6-synthetic") + (64u << 10);
  EXPECT_THROW(Embedder e(o), Error);
  // A budget that fits: same vectors as without one, smaller batches.
  EmbedderOptions tiny = options_for("tiny-bert-synthetic");
  std::vector<std::string> texts;
  for (int i = 0; i < 40; ++i) texts.push_back("sentence number " + std::to_string(i) + " with some words in it");
  std::vector<std::vector<float>> want = Embedder(tiny).embed(texts);
  // (the budget also charges the tokenizer, thread stacks and a fixed runtime allowance: see
  // embedder.h; test_memory.cpp forces split batches under a tight budget)
  tiny.max_memory_bytes = charged_model_bytes("tiny-bert-synthetic") + (17u << 20);
  Embedder budgeted(tiny);
  std::vector<std::vector<float>> got = budgeted.embed(texts);
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_TRUE(same(got[i], want[i])) << i;
}
