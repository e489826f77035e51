#include <algorithm>

#include "runtime/interpreter/ops.h"

namespace leanembed::interp {

std::string canonical_domain(const std::string& domain) { return domain == "ai.onnx" ? std::string() : domain; }

const std::vector<OpSpec>& all_ops() {
  static const std::vector<OpSpec> table = [] {
    std::vector<OpSpec> t;
    add_elementwise_ops(t);
    add_matmul_ops(t);
    add_normalization_ops(t);
    add_shape_ops(t);
    add_constant_ops(t);
    add_microsoft_ops(t);
    add_quantized_ops(t);
    return t;
  }();
  return table;
}

const OpSpec* find_op(const std::string& domain, const std::string& op_type) {
  const std::string d = canonical_domain(domain);
  for (const OpSpec& s : all_ops())
    if (d == s.domain && op_type == s.op_type) return &s;
  return nullptr;
}

}  // namespace leanembed::interp
