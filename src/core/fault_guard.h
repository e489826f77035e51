// Memory faults (SIGSEGV, SIGBUS) raised by C code that follows pointers it found in a file, turned
// into a return value: call_catching_faults(fn, arg) runs fn(arg) and returns false if fn raised
// either signal on the calling thread (siglongjmp out of the handler), instead of ending the process.
// Used around LMDB's lookups (src/cache/lmdb_store.cpp): LMDB follows page numbers and offsets read
// from the store's pages, which a damaged file can point anywhere.
//
// Rules for fn: it must not throw, and the frames between this call and a fault are abandoned, not
// unwound: no C++ object with a destructor, no lock, no allocation may be live in them (plain C
// code and memcpy). A fault outside a guarded call (any other thread, any other code) goes to the
// handler installed before ours, or gets the default action (the process ends, as without us).
//
// Limits: the handlers are installed process-wide on first use; a program that installs its own
// SIGSEGV/SIGBUS handlers afterwards replaces ours (a fault in a guarded call then ends the process
// as before). Not reentrant on one thread (a nested call runs fn inside the outer guard).
#pragma once

namespace leanembed::fault_guard {

bool call_catching_faults(void (*fn)(void*), void* arg) noexcept;

}  // namespace leanembed::fault_guard
