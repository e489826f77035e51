// Ops that move or re-label elements without arithmetic: Shape, Reshape, Squeeze, Unsqueeze,
// Identity (these four share their input's storage), Transpose, Concat, Slice, Split, Gather,
// Expand. They work on any fixed-size element type and copy elements with memcpy.
#include <algorithm>
#include <cstring>
#include <limits>

#include "runtime/interpreter/broadcast.h"
#include "runtime/interpreter/ops.h"
#include "runtime/interpreter/type_dispatch.h"

namespace leanembed::interp {
namespace {

std::vector<int64_t> row_major_strides(std::span<const int64_t> shape) {
  std::vector<int64_t> s(shape.size());
  int64_t stride = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    s[i] = stride;
    stride *= shape[i];
  }
  return s;
}

// out[o] = in[base + sum_d index_d * strides[d]] over the row-major walk of out's shape.
void strided_copy(const Tensor& in, Tensor& out, int64_t base, const std::vector<int64_t>& strides) {
  const std::byte* src = in.bytes().data();
  std::byte* dst = out.mutable_bytes();
  std::array<std::vector<int64_t>, 1> st{strides};
  visit_element_size(in.dtype(), "copy", [&]<std::size_t Size>() {
    broadcast_for_each<1>(out.shape(), st, [&](const int64_t* off, int64_t o, int64_t n, const int64_t* step) {
      const int64_t start = base + off[0];
      if (step[0] == 1) {
        std::memcpy(dst + o * Size, src + start * Size, static_cast<std::size_t>(n) * Size);
      } else {
        for (int64_t i = 0; i < n; ++i) std::memcpy(dst + (o + i) * Size, src + (start + i * step[0]) * Size, Size);
      }
    });
  });
}

// ---- Shape ---------------------------------------------------------------------------------------
void run_shape(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = x.rank();
  int64_t start = 0, end = rank;
  if (ctx.opset >= 15) {
    auto clamp = [rank](int64_t v) { return std::clamp(v < 0 ? v + rank : v, int64_t{0}, rank); };
    start = clamp(attr_int(ctx.node, "start", 0));
    const onnx::Attribute* e = ctx.node.attribute("end");
    if (e) end = clamp(attr_int(ctx.node, "end", rank));
  }
  std::vector<int64_t> dims;
  for (int64_t d = start; d < end; ++d) dims.push_back(x.dim(d));
  ctx.set_output(0, Tensor::from_int64s({static_cast<int64_t>(dims.size())}, dims));
}

// ---- Reshape -------------------------------------------------------------------------------------
void run_reshape(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const std::vector<int64_t> requested = int_values(ctx.input(1), "shape");
  const bool allow_zero = ctx.opset >= 14 && attr_int(ctx.node, "allowzero", 0) != 0;
  std::vector<int64_t> shape(requested.size());
  int64_t infer_at = -1;
  int64_t known = 1;
  for (std::size_t i = 0; i < requested.size(); ++i) {
    int64_t v = requested[i];
    if (v == 0 && !allow_zero) {
      if (static_cast<int64_t>(i) >= x.rank())
        throw Error(ErrorCode::runtime, "shape " + shape_string(requested) + " copies dimension " + std::to_string(i) +
                                            " of an input of rank " + std::to_string(x.rank()));
      v = x.dim(static_cast<int64_t>(i));
    }
    if (v == -1) {
      if (infer_at >= 0) throw Error(ErrorCode::runtime, "shape " + shape_string(requested) + " has more than one -1");
      infer_at = static_cast<int64_t>(i);
      continue;
    }
    if (v < -1) throw Error(ErrorCode::runtime, "shape " + shape_string(requested) + " has a negative dimension");
    shape[i] = v;
    known = v == 0 ? 0 : (known > std::numeric_limits<int64_t>::max() / v ? -1 : known * v);
    if (known < 0) throw Error(ErrorCode::runtime, "shape " + shape_string(requested) + " overflows");
  }
  if (infer_at >= 0) {
    if (known == 0 || x.numel() % known != 0)
      throw Error(ErrorCode::runtime, "cannot infer the -1 in shape " + shape_string(requested) + " for an input of shape " +
                                          shape_string(x.shape()));
    shape[static_cast<std::size_t>(infer_at)] = x.numel() / known;
  }
  if (shape_numel(shape) != x.numel())
    throw Error(ErrorCode::runtime, "cannot reshape " + shape_string(x.shape()) + " to " + shape_string(requested) +
                                        " (resolved " + shape_string(shape) + ")");
  ctx.set_output(0, x.reshaped(shape));
}

// ---- Squeeze / Unsqueeze -------------------------------------------------------------------------
// Axes come from an attribute before opset 13 and from input 1 from 13 on.
std::optional<std::vector<int64_t>> axes_argument(const OpContext& ctx) {
  if (ctx.opset >= 13) {
    if (const Tensor* a = ctx.optional_input(1)) return int_values(*a, "axes");
    return std::nullopt;
  }
  return attr_ints(ctx.node, "axes");
}

void run_unsqueeze(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  auto axes = axes_argument(ctx);
  if (!axes) throw Error(ErrorCode::model_format, "axes are required");
  const int64_t out_rank = x.rank() + static_cast<int64_t>(axes->size());
  std::vector<bool> inserted(static_cast<std::size_t>(out_rank), false);
  for (int64_t a : *axes) {
    const auto axis = static_cast<std::size_t>(normalize_axis(a, out_rank, "axis"));
    if (inserted[axis]) throw Error(ErrorCode::runtime, "axis " + std::to_string(a) + " repeated");
    inserted[axis] = true;
  }
  std::vector<int64_t> shape;
  int64_t next = 0;
  for (int64_t d = 0; d < out_rank; ++d) shape.push_back(inserted[static_cast<std::size_t>(d)] ? 1 : x.dim(next++));
  ctx.set_output(0, x.reshaped(shape));
}

void run_squeeze(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  auto axes = axes_argument(ctx);
  std::vector<bool> removed(static_cast<std::size_t>(x.rank()), false);
  if (axes) {
    for (int64_t a : *axes) {
      const int64_t axis = normalize_axis(a, x.rank(), "axis");
      if (x.dim(axis) != 1)
        throw Error(ErrorCode::runtime, "cannot squeeze axis " + std::to_string(a) + " of size " +
                                            std::to_string(x.dim(axis)) + " in shape " + shape_string(x.shape()));
      removed[static_cast<std::size_t>(axis)] = true;
    }
  } else {
    for (int64_t d = 0; d < x.rank(); ++d) removed[static_cast<std::size_t>(d)] = x.dim(d) == 1;
  }
  std::vector<int64_t> shape;
  for (int64_t d = 0; d < x.rank(); ++d)
    if (!removed[static_cast<std::size_t>(d)]) shape.push_back(x.dim(d));
  ctx.set_output(0, x.reshaped(shape));
}

void run_identity(OpContext& ctx) { ctx.set_output(0, ctx.input(0)); }

// ---- Transpose -----------------------------------------------------------------------------------
void run_transpose(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = x.rank();
  std::vector<int64_t> perm;
  if (auto p = attr_ints(ctx.node, "perm")) {
    perm = *p;
  } else {
    for (int64_t d = rank; d-- > 0;) perm.push_back(d);
  }
  if (static_cast<int64_t>(perm.size()) != rank)
    throw Error(ErrorCode::runtime, "perm has " + std::to_string(perm.size()) + " entries for an input of rank " +
                                        std::to_string(rank));
  std::vector<bool> seen(static_cast<std::size_t>(rank), false);
  for (int64_t& p : perm) {
    p = normalize_axis(p, rank, "perm entry");
    if (seen[static_cast<std::size_t>(p)]) throw Error(ErrorCode::runtime, "perm is not a permutation");
    seen[static_cast<std::size_t>(p)] = true;
  }
  const std::vector<int64_t> in_strides = row_major_strides(x.shape());
  std::vector<int64_t> shape, strides;
  for (int64_t p : perm) {
    shape.push_back(x.dim(p));
    strides.push_back(in_strides[static_cast<std::size_t>(p)]);
  }
  Tensor out(x.dtype(), shape);
  strided_copy(x, out, 0, strides);
  ctx.set_output(0, std::move(out));
}

// ---- Concat --------------------------------------------------------------------------------------
void run_concat(OpContext& ctx) {
  std::vector<const Tensor*> parts;
  for (std::size_t i = 0; i < ctx.input_count(); ++i) parts.push_back(&ctx.input(i));
  const Tensor& first = *parts.front();
  const int64_t rank = first.rank();
  if (rank == 0) throw Error(ErrorCode::runtime, "cannot concatenate scalars");
  const int64_t axis = normalize_axis(attr_int_required(ctx.node, "axis"), rank, "axis");
  std::vector<int64_t> shape = first.shape();
  shape[static_cast<std::size_t>(axis)] = 0;
  for (const Tensor* p : parts) {
    bool fits = p->dtype() == first.dtype() && p->rank() == rank;
    for (int64_t d = 0; fits && d < rank; ++d) fits = d == axis || p->dim(d) == first.dim(d);
    if (!fits)
      throw Error(ErrorCode::runtime, "input of " + dtype_name(p->dtype()) + " shape " + shape_string(p->shape()) +
                                          " does not match the first input's " + dtype_name(first.dtype()) + " shape " +
                                          shape_string(first.shape()) + " outside axis " + std::to_string(axis));
    shape[static_cast<std::size_t>(axis)] += p->dim(axis);
  }
  Tensor out(first.dtype(), shape);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= shape[static_cast<std::size_t>(d)];
  for (int64_t d = axis + 1; d < rank; ++d) inner *= shape[static_cast<std::size_t>(d)];
  const std::size_t esize = dtype_size(first.dtype());
  const std::size_t out_row = static_cast<std::size_t>(shape[static_cast<std::size_t>(axis)] * inner) * esize;
  std::byte* dst = out.mutable_bytes();
  std::size_t column = 0;
  for (const Tensor* p : parts) {
    const std::size_t part_row = static_cast<std::size_t>(p->dim(axis) * inner) * esize;
    if (part_row > 0)
      for (int64_t o = 0; o < outer; ++o)
        std::memcpy(dst + static_cast<std::size_t>(o) * out_row + column,
                    p->bytes().data() + static_cast<std::size_t>(o) * part_row, part_row);
    column += part_row;
  }
  ctx.set_output(0, std::move(out));
}

// ---- Slice (opset >= 10: starts, ends, axes, steps are inputs) ------------------------------------
void run_slice(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t rank = x.rank();
  const std::vector<int64_t> starts = int_values(ctx.input(1), "starts");
  const std::vector<int64_t> ends = int_values(ctx.input(2), "ends");
  if (starts.size() != ends.size())
    throw Error(ErrorCode::runtime, "starts has " + std::to_string(starts.size()) + " values, ends " +
                                        std::to_string(ends.size()));
  std::vector<int64_t> axes, steps;
  if (const Tensor* a = ctx.optional_input(3)) {
    axes = int_values(*a, "axes");
  } else {
    for (std::size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  }
  if (const Tensor* s = ctx.optional_input(4)) steps = int_values(*s, "steps");
  else steps.assign(starts.size(), 1);
  if (axes.size() != starts.size() || steps.size() != starts.size())
    throw Error(ErrorCode::runtime, "starts, ends, axes and steps should have the same length");
  std::vector<int64_t> first(static_cast<std::size_t>(rank), 0), step(static_cast<std::size_t>(rank), 1);
  std::vector<int64_t> shape = x.shape();
  std::vector<bool> seen(static_cast<std::size_t>(rank), false);
  for (std::size_t i = 0; i < axes.size(); ++i) {
    const auto axis = static_cast<std::size_t>(normalize_axis(axes[i], rank, "axis"));
    if (seen[axis]) throw Error(ErrorCode::runtime, "axis " + std::to_string(axes[i]) + " repeated");
    seen[axis] = true;
    const int64_t dim = x.dim(static_cast<int64_t>(axis));
    const int64_t s = steps[i];
    if (s == 0) throw Error(ErrorCode::runtime, "step 0 on axis " + std::to_string(axes[i]));
    // Negative values count from the end (dim is small, so adding it cannot overflow), then clamp.
    int64_t b = starts[i] < 0 ? starts[i] + dim : starts[i];
    int64_t e = ends[i] < 0 ? ends[i] + dim : ends[i];
    int64_t count;
    if (s > 0) {
      b = std::clamp(b, int64_t{0}, dim);
      e = std::clamp(e, int64_t{0}, dim);
      count = e > b ? (e - b - 1) / s + 1 : 0;
    } else if (dim == 0) {
      count = 0;
    } else {
      b = std::clamp(b, int64_t{0}, dim - 1);
      e = std::clamp(e, int64_t{-1}, dim - 1);
      // -s would overflow for INT64_MIN; any step that large takes just the first element.
      count = b > e ? (s == std::numeric_limits<int64_t>::min() ? 1 : (b - e - 1) / -s + 1) : 0;
    }
    first[axis] = b;
    step[axis] = s;
    shape[axis] = count;
  }
  const std::vector<int64_t> in_strides = row_major_strides(x.shape());
  int64_t base = 0;
  std::vector<int64_t> strides(static_cast<std::size_t>(rank));
  for (std::size_t d = 0; d < static_cast<std::size_t>(rank); ++d) {
    if (shape[d] == 0) continue;  // nothing is read; avoid forming offsets from clamped bounds
    base += first[d] * in_strides[d];
    strides[d] = shape[d] == 1 ? 0 : step[d] * in_strides[d];
  }
  Tensor out(x.dtype(), shape);
  strided_copy(x, out, base, strides);
  ctx.set_output(0, std::move(out));
}

// ---- Split ---------------------------------------------------------------------------------------
// Sizes from the 'split' attribute (< 13) or input (>= 13); otherwise equal parts over the outputs
// (from opset 18 with num_outputs the last part may be smaller).
void run_split(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t axis = normalize_axis(attr_int(ctx.node, "axis", 0), x.rank(), "axis");
  const int64_t dim = x.dim(axis);
  const auto n_out = static_cast<int64_t>(ctx.node.outputs.size());
  std::vector<int64_t> sizes;
  if (ctx.opset >= 13) {
    if (const Tensor* s = ctx.optional_input(1)) sizes = int_values(*s, "split");
  } else if (auto s = attr_ints(ctx.node, "split")) {
    sizes = *s;
  }
  if (sizes.empty()) {
    if (ctx.opset >= 18 && ctx.node.attribute("num_outputs")) {
      const int64_t parts = attr_int(ctx.node, "num_outputs", n_out);
      if (parts != n_out)
        throw Error(ErrorCode::model_format, "num_outputs " + std::to_string(parts) + " but the node has " +
                                                 std::to_string(n_out) + " outputs");
      const int64_t chunk = (dim + parts - 1) / parts;
      for (int64_t i = 0; i < parts; ++i) sizes.push_back(std::clamp(dim - i * chunk, int64_t{0}, chunk));
    } else {
      if (dim % n_out != 0)
        throw Error(ErrorCode::runtime, "axis of size " + std::to_string(dim) + " does not split into " +
                                            std::to_string(n_out) + " equal parts");
      sizes.assign(static_cast<std::size_t>(n_out), dim / n_out);
    }
  }
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0) throw Error(ErrorCode::runtime, "negative split size");
    total += s;
  }
  if (static_cast<int64_t>(sizes.size()) != n_out || total != dim)
    throw Error(ErrorCode::runtime, "split sizes " + shape_string(sizes) + " do not cover axis of size " +
                                        std::to_string(dim) + " with " + std::to_string(n_out) + " outputs");
  const std::vector<int64_t> in_strides = row_major_strides(x.shape());
  int64_t offset = 0;
  for (int64_t i = 0; i < n_out; ++i) {
    std::vector<int64_t> shape = x.shape();
    shape[static_cast<std::size_t>(axis)] = sizes[static_cast<std::size_t>(i)];
    Tensor out(x.dtype(), shape);
    strided_copy(x, out, offset * in_strides[static_cast<std::size_t>(axis)], in_strides);
    offset += sizes[static_cast<std::size_t>(i)];
    ctx.set_output(static_cast<std::size_t>(i), std::move(out));
  }
}

// ---- Gather --------------------------------------------------------------------------------------
void run_gather(OpContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  if (data.rank() == 0) throw Error(ErrorCode::runtime, "data must have rank >= 1");
  const int64_t axis = normalize_axis(attr_int(ctx.node, "axis", 0), data.rank(), "axis");
  if (indices.dtype() != DataType::int64 && indices.dtype() != DataType::int32)
    throw Error(ErrorCode::runtime, "indices should be int64 or int32, found " + dtype_name(indices.dtype()));
  std::vector<int64_t> shape(data.shape().begin(), data.shape().begin() + axis);
  shape.insert(shape.end(), indices.shape().begin(), indices.shape().end());
  shape.insert(shape.end(), data.shape().begin() + axis + 1, data.shape().end());
  const int64_t dim = data.dim(axis);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= data.dim(d);
  for (int64_t d = axis + 1; d < data.rank(); ++d) inner *= data.dim(d);
  const std::size_t block = static_cast<std::size_t>(inner) * dtype_size(data.dtype());
  Tensor out(data.dtype(), shape);
  const int64_t n_idx = indices.numel();
  std::vector<int64_t> idx(static_cast<std::size_t>(n_idx));
  for (int64_t j = 0; j < n_idx; ++j) {
    int64_t k = indices.value_as_int64(j);
    if (k < -dim || k >= dim)
      throw Error(ErrorCode::runtime, "index " + std::to_string(k) + " is out of range for axis " +
                                          std::to_string(axis) + " of size " + std::to_string(dim));
    idx[static_cast<std::size_t>(j)] = k < 0 ? k + dim : k;
  }
  const std::byte* src = data.bytes().data();
  std::byte* dst = out.mutable_bytes();
  if (block > 0)
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < n_idx; ++j)
        std::memcpy(dst + static_cast<std::size_t>(o * n_idx + j) * block,
                    src + static_cast<std::size_t>(o * dim + idx[static_cast<std::size_t>(j)]) * block, block);
  ctx.set_output(0, std::move(out));
}

// ---- Expand --------------------------------------------------------------------------------------
void run_expand(OpContext& ctx) {
  const Tensor& x = ctx.input(0);
  const std::vector<int64_t> requested = int_values(ctx.input(1), "shape");
  const std::vector<int64_t> shape = broadcast_shapes(x.shape(), requested);
  Tensor out(x.dtype(), shape);
  strided_copy(x, out, 0, broadcast_strides(x.shape(), shape));
  ctx.set_output(0, std::move(out));
}

}  // namespace

void add_shape_ops(std::vector<OpSpec>& t) {
  t.push_back({"", "Shape", 1, 1, 1, 1, 1, run_shape});
  t.push_back({"", "Reshape", 5, 2, 2, 1, 1, run_reshape});
  t.push_back({"", "Squeeze", 11, 1, 2, 1, 1, run_squeeze});
  t.push_back({"", "Unsqueeze", 11, 1, 2, 1, 1, run_unsqueeze});
  t.push_back({"", "Identity", 1, 1, 1, 1, 1, run_identity});
  t.push_back({"", "Transpose", 1, 1, 1, 1, 1, run_transpose});
  t.push_back({"", "Concat", 11, 1, kVariadic, 1, 1, run_concat});
  t.push_back({"", "Slice", 10, 3, 5, 1, 1, run_slice});
  t.push_back({"", "Split", 11, 1, 2, 1, kVariadic, run_split});
  t.push_back({"", "Gather", 11, 2, 2, 1, 1, run_gather});
  t.push_back({"", "Expand", 8, 2, 2, 1, 1, run_expand});
}

}  // namespace leanembed::interp
