// A deterministic set of texts that stress every rule of the BERT tokenizer (accents, combining
// marks, CJK incl. extension B, emoji and ZWJ sequences, zero-width and control characters,
// no-break spaces, very long words, punctuation runs, mixed scripts, Greek sigma, Turkish I,
// special-token strings inside text, invalid UTF-8, characters whose Unicode data changed
// between versions). Generated here once; the peer reads the same bytes from a file.
#pragma once

#include <string>
#include <vector>

namespace leanembed::test {

// Hand-written cases followed by `n_random` pseudo-random mixtures (fixed seed).
std::vector<std::string> adversarial_texts(int n_random = 400);

}  // namespace leanembed::test
