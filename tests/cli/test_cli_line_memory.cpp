// Memory of the CLI on long lines (issue 16, item 8): peak RSS does not grow with the length of the
// lines (labelled "memory": RSS figures mean nothing under the sanitizers' allocators).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "cli_test_support.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace {

fs::path work_dir() { return leanembed::test::per_test_dir("test_cli_line_memory"); }

std::string tiny() { return leanembed::test::shared_dir() + "/models/tiny-bert-synthetic"; }

}  // namespace

// Peak RSS (KB) of `leanembed embed` reading `file`.
static long peak_rss_kb(const fs::path& file) {
  const fs::path rss = work_dir() / "rss.txt";
  const std::string cmd = "ASAN_OPTIONS=quarantine_size_mb=1:detect_leaks=0 /usr/bin/time -f %M -o " + rss.string() + " " +
                          LEANEMBED_CLI + " embed --threads 1 --model " + tiny() + " --format f32 -o /dev/null --input " +
                          file.string();
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  return std::stol(leanembed::test::read_file(rss.string()));
}

TEST(CliLineMemory, ManyLongLinesDoNotGrowMemory) {
  const fs::path few = work_dir() / "short-lines.txt", many = work_dir() / "long-lines.txt";
  {
    std::ofstream f(few), g(many);
    std::string line;
    for (int i = 0; i < 100000; ++i) line += "word" + std::to_string(i % 10) + " ";
    for (int i = 0; i < 100; ++i) {
      f << "word " << i << "\n";
      g << line << "\n";  // 100 lines of ~600 KB: 60 MB
    }
  }
  const long small = peak_rss_kb(few), large = peak_rss_kb(many);
  RecordProperty("peak_rss_kb_short_lines", std::to_string(small));
  RecordProperty("peak_rss_kb_long_lines", std::to_string(large));
  EXPECT_LT(large, small + 8 * 1024) << "short lines: " << small << " KB, 100 lines of 600 KB: " << large << " KB";
}

