// ModelProto / GraphProto / NodeProto / AttributeProto / ValueInfoProto -> onnx::Model.
// Field numbers are those of onnx.proto (ONNX 1.12); unknown fields are skipped by wire type.
#include "onnx/reader.h"

#include <algorithm>
#include <set>

#include "core/mapped_file.h"
#include "leanembed/error.h"
#include "onnx/graph_check.h"
#include "onnx/parse_context.h"

namespace leanembed::onnx {

namespace {

using wire::Field;

std::span<const std::byte> bytes_of(const Field& f, ParseContext& ctx, const std::string& where, const char* name) {
  return wire::field_bytes(f, ctx.source, where, name);
}

std::string string_of(const Field& f, ParseContext& ctx, const std::string& where, const char* name) {
  return wire::field_string(f, ctx.source, where, name);
}

Graph parse_graph(std::span<const std::byte> message, ParseContext& ctx, const std::string& where, int depth);

// ---- ValueInfoProto / TypeProto ------------------------------------------------------------------

void parse_dimension(std::span<const std::byte> message, ParseContext& ctx, const std::string& where, Dim& dim) {
  wire::Reader r(message, ctx.source, where);
  Field f;
  while (r.next(f)) {
    if (f.number == 1) {
      dim.value = wire::field_int64(f, ctx.source, where, "dim_value");
      dim.param.clear();
      if (dim.value < 0) r.fail("dim_value " + std::to_string(dim.value) + " is negative");
    } else if (f.number == 2) {
      dim.param = string_of(f, ctx, where, "dim_param");
      dim.value = -1;
    }
  }
}

void parse_tensor_type(std::span<const std::byte> message, ParseContext& ctx, const std::string& where, ValueInfo& vi) {
  wire::Reader r(message, ctx.source, where);
  Field f;
  while (r.next(f)) {
    if (f.number == 1) {
      vi.elem_type = static_cast<DataType>(wire::field_int32(f, ctx.source, where, "elem_type"));
    } else if (f.number == 2) {
      vi.has_shape = true;
      vi.shape.clear();
      std::string shape_where = where + ".shape";
      wire::Reader sr(bytes_of(f, ctx, where, "shape"), ctx.source, shape_where);
      Field d;
      while (sr.next(d)) {
        if (d.number != 1) continue;
        Dim dim;
        parse_dimension(bytes_of(d, ctx, shape_where, "dim"), ctx,
                        shape_where + ".dim[" + std::to_string(vi.shape.size()) + "]", dim);
        vi.shape.push_back(std::move(dim));
      }
    }
  }
}

ValueInfo parse_value_info(std::span<const std::byte> message, ParseContext& ctx, const std::string& where) {
  ValueInfo vi;
  wire::Reader r(message, ctx.source, where);
  Field f;
  while (r.next(f)) {
    if (f.number == 1) {
      vi.name = string_of(f, ctx, where, "name");
    } else if (f.number == 2) {
      // TypeProto: only tensor_type (1) is read; sequence/map/optional/sparse types stay undefined.
      std::string type_where = where + ".type";
      wire::Reader tr(bytes_of(f, ctx, where, "type"), ctx.source, type_where);
      Field t;
      while (tr.next(t)) {
        if (t.number == 1) parse_tensor_type(bytes_of(t, ctx, type_where, "tensor_type"), ctx, type_where + ".tensor_type", vi);
      }
    }
  }
  return vi;
}

// ---- AttributeProto ------------------------------------------------------------------------------

std::shared_ptr<Graph> parse_subgraph(const Field& f, ParseContext& ctx, const std::string& where, const char* name,
                                      int depth) {
  if (depth > ctx.options.max_graph_depth) {
    throw Error(ErrorCode::unsupported, ctx.label(where) + ": subgraphs nested deeper than " +
                                            std::to_string(ctx.options.max_graph_depth) + " levels");
  }
  return std::make_shared<Graph>(parse_graph(bytes_of(f, ctx, where, name), ctx, where + "." + name, depth));
}

Attribute parse_attribute(std::span<const std::byte> message, ParseContext& ctx, const std::string& where, int depth) {
  Attribute a;
  int32_t type = 0;
  bool has_t = false;
  wire::Reader r(message, ctx.source, where);
  Field f;
  const wire::Source& src = ctx.source;
  while (r.next(f)) {
    switch (f.number) {
      case 1: a.name = string_of(f, ctx, where, "name"); break;
      case 2: a.f = wire::field_float(f, src, where, "f"); break;
      case 3: a.i = wire::field_int64(f, src, where, "i"); break;
      case 4: a.s = string_of(f, ctx, where, "s"); break;
      case 5: a.t = parse_tensor(bytes_of(f, ctx, where, "t"), ctx, where + ".t"); has_t = true; break;
      case 6: a.g = parse_subgraph(f, ctx, where, "g", depth + 1); break;
      case 7: wire::append_floats(f, src, where, "floats", a.floats); break;
      case 8: wire::append_varints(f, src, where, "ints", a.ints); break;
      case 9: a.strings.push_back(string_of(f, ctx, where, "strings")); break;
      case 10:
        a.tensors.push_back(parse_tensor(bytes_of(f, ctx, where, "tensors"), ctx,
                                         where + ".tensors[" + std::to_string(a.tensors.size()) + "]"));
        break;
      case 11: a.graphs.push_back(parse_subgraph(f, ctx, where, "graphs", depth + 1)); break;
      case 20: type = wire::field_int32(f, src, where, "type"); break;
      case 21:
        throw Error(ErrorCode::unsupported, ctx.label(where) + ": attribute references (ref_attr_name '" +
                                                string_of(f, ctx, where, "ref_attr_name") +
                                                "') are only valid inside functions, which are not supported");
      case 14: case 15: case 22: case 23:
        throw Error(ErrorCode::unsupported, ctx.label(where) + " '" + a.name +
                                                "': sparse-tensor and type-proto attributes are not supported");
      default: break;  // doc_string ...
    }
  }
  std::string what = ctx.label(where) + " '" + a.name + "'";
  if (a.name.empty()) throw Error(ErrorCode::model_format, ctx.label(where) + ": attribute has no name");
  if (type >= 11 && type <= 14) {
    throw Error(ErrorCode::unsupported, what + ": sparse-tensor and type-proto attributes are not supported");
  }
  if (type < 1 || type > 10) {
    throw Error(ErrorCode::model_format, what + (type == 0 ? std::string(": attribute has no type")
                                                           : ": unknown attribute type " + std::to_string(type)));
  }
  a.type = static_cast<AttributeType>(type);
  if (a.type == AttributeType::tensor && !has_t) throw Error(ErrorCode::model_format, what + ": TENSOR attribute without t");
  if (a.type == AttributeType::graph && !a.g) throw Error(ErrorCode::model_format, what + ": GRAPH attribute without g");
  return a;
}

// ---- NodeProto -----------------------------------------------------------------------------------

Node parse_node(std::span<const std::byte> message, ParseContext& ctx, const std::string& where, int depth) {
  Node n;
  wire::Reader r(message, ctx.source, where);
  Field f;
  while (r.next(f)) {
    switch (f.number) {
      case 1: n.inputs.push_back(string_of(f, ctx, where, "input")); break;
      case 2: n.outputs.push_back(string_of(f, ctx, where, "output")); break;
      case 3: n.name = string_of(f, ctx, where, "name"); break;
      case 4: n.op_type = string_of(f, ctx, where, "op_type"); break;
      case 5:
        n.attributes.push_back(parse_attribute(bytes_of(f, ctx, where, "attribute"), ctx,
                                               where + ".attribute[" + std::to_string(n.attributes.size()) + "]", depth));
        break;
      case 7: n.domain = string_of(f, ctx, where, "domain"); break;
      default: break;
    }
  }
  std::string what = ctx.label(where) + (n.name.empty() ? std::string() : " '" + n.name + "'");
  if (n.op_type.empty()) throw Error(ErrorCode::model_format, what + ": node has no op_type");
  std::set<std::string_view> seen;
  for (const Attribute& a : n.attributes) {
    if (!seen.insert(a.name).second) {
      throw Error(ErrorCode::model_format, what + " (" + n.op_type + "): attribute '" + a.name + "' appears twice");
    }
  }
  return n;
}

// ---- GraphProto ----------------------------------------------------------------------------------

Graph parse_graph(std::span<const std::byte> message, ParseContext& ctx, const std::string& where, int depth) {
  Graph g;
  wire::Reader r(message, ctx.source, where);
  Field f;
  auto item = [&](const char* list, std::size_t i) { return where + "." + list + "[" + std::to_string(i) + "]"; };
  while (r.next(f)) {
    switch (f.number) {
      case 1: g.nodes.push_back(parse_node(bytes_of(f, ctx, where, "node"), ctx, item("node", g.nodes.size()), depth)); break;
      case 2: g.name = string_of(f, ctx, where, "name"); break;
      case 5:
        g.initializers.push_back(
            parse_tensor(bytes_of(f, ctx, where, "initializer"), ctx, item("initializer", g.initializers.size())));
        break;
      case 11: g.inputs.push_back(parse_value_info(bytes_of(f, ctx, where, "input"), ctx, item("input", g.inputs.size()))); break;
      case 12: g.outputs.push_back(parse_value_info(bytes_of(f, ctx, where, "output"), ctx, item("output", g.outputs.size()))); break;
      case 13:
        g.value_info.push_back(
            parse_value_info(bytes_of(f, ctx, where, "value_info"), ctx, item("value_info", g.value_info.size())));
        break;
      case 15:
        throw Error(ErrorCode::unsupported, ctx.label(where) + ": sparse initializers are not supported");
      default: break;  // doc_string, quantization_annotation ...
    }
  }
  // Graph inputs that are not initializers first (the values a caller feeds), file order kept.
  std::set<std::string_view> init_names;
  for (const auto& t : g.initializers) init_names.insert(t.name);
  std::stable_partition(g.inputs.begin(), g.inputs.end(),
                        [&](const ValueInfo& v) { return init_names.count(v.name) == 0; });
  return g;
}

// ---- ModelProto ----------------------------------------------------------------------------------

void parse_opset(std::span<const std::byte> message, ParseContext& ctx, const std::string& where, Model& m) {
  std::string domain;
  int64_t version = 0;
  wire::Reader r(message, ctx.source, where);
  Field f;
  while (r.next(f)) {
    if (f.number == 1) domain = string_of(f, ctx, where, "domain");
    else if (f.number == 2) version = wire::field_int64(f, ctx.source, where, "version");
  }
  if (domain == "ai.onnx") domain.clear();
  if (!m.opset_imports.emplace(domain, version).second) {
    throw Error(ErrorCode::model_format, ctx.label(where) + ": opset_import for domain '" + domain + "' appears twice");
  }
}

}  // namespace

Model parse_model(std::span<const std::byte> bytes, std::shared_ptr<const void> owner,
                  const std::string& external_data_dir, const std::string& display_name, const ReadOptions& options) {
  return parse_model_bytes(bytes, std::move(owner), false, external_data_dir, display_name, options);
}

Model parse_model_bytes(std::span<const std::byte> bytes, std::shared_ptr<const void> owner, bool bytes_are_mapping,
                        const std::string& external_data_dir, const std::string& display_name,
                        const ReadOptions& options) {
  Model m;
  m.path = display_name;
  m.file_bytes = bytes;
  ParseContext ctx{wire::Source{display_name, bytes.data()}, owner, bytes_are_mapping, options,
                   ExternalDataFiles(external_data_dir), &m};
  const std::string where = "ModelProto";
  wire::Reader r(bytes, ctx.source, where);
  Field f;
  bool has_graph = false;
  while (r.next(f)) {
    switch (f.number) {
      case 1: m.ir_version = wire::field_int64(f, ctx.source, where, "ir_version"); break;
      case 2: m.producer_name = string_of(f, ctx, where, "producer_name"); break;
      case 3: m.producer_version = string_of(f, ctx, where, "producer_version"); break;
      case 7:
        if (has_graph) r.fail("graph appears twice");
        m.graph = parse_graph(bytes_of(f, ctx, where, "graph"), ctx, "graph", 0);
        has_graph = true;
        break;
      case 8:
        parse_opset(bytes_of(f, ctx, where, "opset_import"), ctx,
                    "opset_import[" + std::to_string(m.opset_imports.size()) + "]", m);
        break;
      default: break;  // domain, model_version, doc_string, metadata_props, training_info, functions
    }
  }
  if (!has_graph) throw Error(ErrorCode::model_format, display_name + ": not an ONNX model (ModelProto has no graph)");
  if (m.opset_imports.empty() && m.ir_version >= 3) {
    throw Error(ErrorCode::model_format, display_name + ": ModelProto has no opset_import (required since IR version 3)");
  }
  check_and_sort_graph(m.graph, display_name + ": graph");
  if (owner) m.storage.push_back(std::move(owner));
  for (auto& mapping : ctx.external.mappings()) m.storage.push_back(std::move(mapping));
  for (const auto& file : ctx.external.files()) m.source_files.push_back(file);
  return m;
}

Model read_model(const std::string& path, const ReadOptions& options) {
  auto file = std::make_shared<const MappedFile>(path);
  std::size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  std::span<const std::byte> bytes = file->bytes();
  Model m = parse_model_bytes(bytes, std::shared_ptr<const void>(file, file.get()), true, dir, path, options);
  m.file_backed = true;
  m.source_files.insert(m.source_files.begin(), file);
  return m;
}

}  // namespace leanembed::onnx
