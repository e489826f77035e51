// peak_rss RESULT PROGRAM [ARGS...]: runs PROGRAM, writes "<exit code> <peak RSS in KiB>" to RESULT.
//
// Why a separate process: a child's ru_maxrss also counts the resident size of the process it was
// forked from (Linux carries the old address space's high-water mark across exec), so a test process
// that spawns the CLI directly would add its own RSS to a small child's peak. This helper is small,
// so the peak it reports is the program's own whenever that is above ~2 MB.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: peak_rss RESULT PROGRAM [ARGS...]\n");
    return 2;
  }
  const pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    execv(argv[2], argv + 2);
    _exit(127);
  }
  int status = 0;
  rusage usage{};
  if (wait4(pid, &status, 0, &usage) != pid) return 1;
  FILE* out = std::fopen(argv[1], "w");
  if (!out) return 1;
  std::fprintf(out, "%d %ld\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1, usage.ru_maxrss);
  return std::fclose(out) == 0 ? 0 : 1;
}
