// leanembed — the command-line tool. Commands are added by the embeddings issue; for now it reports
// its version so the build has its executable.
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc > 1 && (std::strcmp(argv[1], "--version") == 0)) {
    std::puts("leanembed 0.1.0");
    return 0;
  }
  std::fprintf(stderr, "usage: leanembed --version\n");
  return 2;
}
