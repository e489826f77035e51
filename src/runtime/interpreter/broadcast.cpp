#include "runtime/interpreter/broadcast.h"

namespace leanembed::interp {

std::vector<int64_t> broadcast_shapes(std::span<const int64_t> a, std::span<const int64_t> b) {
  const std::size_t rank = std::max(a.size(), b.size());
  std::vector<int64_t> out(rank);
  for (std::size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da == db || db == 1) {
      out[i] = da;
    } else if (da == 1) {
      out[i] = db;
    } else {
      throw Error(ErrorCode::runtime, "shapes " + shape_string(a) + " and " + shape_string(b) +
                                          " cannot be broadcast together");
    }
  }
  return out;
}

std::vector<int64_t> broadcast_strides(std::span<const int64_t> shape, std::span<const int64_t> out) {
  const std::size_t rank = out.size();
  std::vector<int64_t> strides(rank, 0);
  const std::size_t lead = rank - shape.size();
  int64_t stride = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[lead + i] = shape[i] == 1 && out[lead + i] != 1 ? 0 : stride;
    stride *= shape[i];
  }
  return strides;
}

}  // namespace leanembed::interp
