// Element type conversion (the Cast op): every fixed-size dtype to every other.
#pragma once

#include "runtime/interpreter/tensor.h"

namespace leanembed::interp {

// x converted element by element to `to`. Rules (ONNX Cast, with its undefined cases defined):
// float -> float rounds to nearest even (float16 correctly rounded once, subnormals kept, overflow
// to inf); float -> integer truncates toward zero, saturates at the type's limits, NaN -> 0;
// integer -> integer wraps modulo 2^bits; anything -> bool is `!= 0` (NaN -> true); bool -> 0/1.
// Returns x itself (shared storage) when the type already matches. Error(unsupported) for
// string/unknown types.
Tensor cast_tensor(const Tensor& x, DataType to);

}  // namespace leanembed::interp
