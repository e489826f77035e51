#include "core/fault_guard.h"

#include <signal.h>

#include <csetjmp>
#include <mutex>

namespace leanembed::fault_guard {
namespace {

struct sigaction g_previous_bus {}, g_previous_segv {};
std::once_flag g_installed;

// The jump target of call_catching_faults on this thread (initial-exec: no allocation on first
// access from the handler, also when built into a shared object).
__attribute__((tls_model("initial-exec"))) thread_local sigjmp_buf* t_jump = nullptr;

// Hands a fault we do not own to whoever had the signal before us.
void chain(int sig, siginfo_t* info, void* context) {
  const struct sigaction& previous = sig == SIGBUS ? g_previous_bus : g_previous_segv;
  if ((previous.sa_flags & SA_SIGINFO) != 0 && previous.sa_sigaction != nullptr) {
    previous.sa_sigaction(sig, info, context);
    return;
  }
  if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(sig);
    return;
  }
  // Default action: restore it and return; the faulting instruction runs again and the kernel
  // delivers the signal with its default action (the process ends as it would have without us).
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
}

void on_fault(int sig, siginfo_t* info, void* context) {
  if (sigjmp_buf* jump = t_jump) {
    t_jump = nullptr;
    siglongjmp(*jump, 1);  // restores the signal mask saved by sigsetjmp
  }
  chain(sig, info, context);
}

void install() {
  std::call_once(g_installed, [] {
    struct sigaction action {};
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGBUS, &action, &g_previous_bus);
    ::sigaction(SIGSEGV, &action, &g_previous_segv);
  });
}

}  // namespace

bool call_catching_faults(void (*fn)(void*), void* arg) noexcept {
  install();
  if (t_jump != nullptr) {  // nested: the outer guard catches
    fn(arg);
    return true;
  }
  sigjmp_buf jump;
  if (sigsetjmp(jump, 1) != 0) return false;  // t_jump was cleared by the handler
  t_jump = &jump;
  fn(arg);
  t_jump = nullptr;
  return true;
}

}  // namespace leanembed::fault_guard
