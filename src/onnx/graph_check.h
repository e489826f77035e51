// Name and dependency checks on a parsed graph, and its topological order. Internal to the reader
// (the public entry point is topological_order() in reader.h).
#pragma once

#include <string>

#include "onnx/model.h"

namespace leanembed::onnx {

// Checks `graph` and, recursively, its subgraphs: initializer names unique and non-empty; graph
// input names unique; no value produced twice (by two nodes, or by a node and a graph input or
// initializer); every node input and graph output defined (in a subgraph, possibly by an enclosing
// graph); no cycle. Then reorders every graph's nodes into topological order (kept as they are when
// the file order already is one). Throws Error(model_format) prefixed with `label`.
void check_and_sort_graph(Graph& graph, const std::string& label);

}  // namespace leanembed::onnx
