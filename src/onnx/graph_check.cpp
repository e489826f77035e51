#include "onnx/graph_check.h"

#include <functional>
#include <queue>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "leanembed/error.h"
#include "onnx/reader.h"

namespace leanembed::onnx {

namespace {

constexpr std::size_t kGraphLevel = static_cast<std::size_t>(-1);  // "defined by a graph input / initializer"

std::string node_text(const Graph& g, std::size_t i) {
  const Node& n = g.nodes[i];
  return "node " + std::to_string(i) + (n.name.empty() ? "" : " '" + n.name + "'") + " (" + n.op_type + ")";
}

[[noreturn]] void fail(const std::string& label, const std::string& what) {
  throw Error(ErrorCode::model_format, label + ": " + what);
}

// The analysis of one graph: a topological order of its nodes and the names it uses without
// defining them (to be provided by an enclosing graph), with the node that uses each first
// (kGraphLevel for a graph output).
struct Analysis {
  std::vector<std::size_t> order;
  std::vector<std::pair<std::string, std::size_t>> free_names;
};

Analysis analyze(const Graph& g, const std::string& label) {
  const std::size_t n = g.nodes.size();
  // Every defined value -> its producer (node index or kGraphLevel). Views into g's strings.
  std::unordered_map<std::string_view, std::size_t> producer;
  producer.reserve(g.initializers.size() + g.inputs.size() + 2 * n);
  for (const auto& t : g.initializers) {
    if (t.name.empty()) fail(label, "an initializer has no name");
    if (!producer.emplace(t.name, kGraphLevel).second) fail(label, "initializer '" + t.name + "' appears twice");
  }
  std::unordered_set<std::string_view> input_names;
  for (const auto& v : g.inputs) {
    if (v.name.empty()) fail(label, "a graph input has no name");
    if (!input_names.insert(v.name).second) fail(label, "graph input '" + v.name + "' appears twice");
    producer.emplace(v.name, kGraphLevel);  // may also be an initializer (its default value)
  }
  for (std::size_t i = 0; i < n; ++i) {
    for (const std::string& out : g.nodes[i].outputs) {
      if (out.empty()) continue;  // optional output left out
      auto [it, inserted] = producer.emplace(out, i);
      if (!inserted) {
        fail(label, "value '" + out + "' is produced twice: by " + node_text(g, i) + " and by " +
                        (it->second == kGraphLevel ? std::string("a graph input or initializer") : node_text(g, it->second)));
      }
    }
  }

  Analysis result;
  std::unordered_set<std::string> free_seen;  // owning: some names come from subgraph analyses
  auto use_free = [&](std::string_view name, std::size_t user) {
    if (free_seen.emplace(name).second) result.free_names.emplace_back(std::string(name), user);
  };
  // Edges producer -> consumer, as in-degrees and successor lists.
  std::vector<std::vector<std::size_t>> successors(n);
  std::vector<std::size_t> in_degree(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    const Node& node = g.nodes[i];
    std::vector<std::string_view> deps(node.inputs.begin(), node.inputs.end());
    // Subgraphs depend on the enclosing values they use (implicit inputs of the node).
    std::vector<std::string> implicit;
    for (const Attribute& a : node.attributes) {
      std::vector<const Graph*> subs;
      if (a.g) subs.push_back(a.g.get());
      for (const auto& sg : a.graphs) if (sg) subs.push_back(sg.get());
      for (const Graph* sg : subs) {
        Analysis inner = analyze(*sg, label + " > " + node_text(g, i) + " attribute '" + a.name + "'");
        for (auto& [name, user] : inner.free_names) implicit.push_back(std::move(name));
      }
    }
    for (const std::string& s : implicit) deps.emplace_back(s);
    for (std::string_view dep : deps) {
      if (dep.empty()) continue;  // optional input left out
      auto it = producer.find(dep);
      if (it == producer.end()) {
        use_free(dep, i);
        continue;
      }
      if (it->second == kGraphLevel) continue;
      successors[it->second].push_back(i);
      ++in_degree[i];
    }
  }
  for (const auto& v : g.outputs) {
    if (v.name.empty()) fail(label, "a graph output has no name");
    if (producer.find(v.name) == producer.end()) use_free(v.name, kGraphLevel);
  }

  // Kahn's algorithm, always taking the lowest index ready: yields the file order when it is valid.
  std::priority_queue<std::size_t, std::vector<std::size_t>, std::greater<>> ready;
  for (std::size_t i = 0; i < n; ++i) if (in_degree[i] == 0) ready.push(i);
  result.order.reserve(n);
  while (!ready.empty()) {
    std::size_t i = ready.top();
    ready.pop();
    result.order.push_back(i);
    for (std::size_t s : successors[i]) if (--in_degree[s] == 0) ready.push(s);
  }
  if (result.order.size() != n) {
    // Walk back from a node left over along left-over producers until a node repeats: that is a cycle.
    std::vector<std::vector<std::size_t>> preds(n);
    for (std::size_t p = 0; p < n; ++p) for (std::size_t s : successors[p]) if (in_degree[p] > 0) preds[s].push_back(p);
    std::size_t cur = 0;
    while (in_degree[cur] == 0) ++cur;
    std::vector<std::size_t> step(n, SIZE_MAX);
    std::vector<std::size_t> path;
    while (step[cur] == SIZE_MAX) {
      step[cur] = path.size();
      path.push_back(cur);
      cur = preds[cur].front();  // a left-over node always has a left-over producer
    }
    std::string cycle;
    for (std::size_t k = path.size(); k-- > step[cur];) cycle += node_text(g, path[k]) + " -> ";
    cycle += node_text(g, cur);
    fail(label, "the graph has a cycle: " + cycle);
  }
  return result;
}

// Sorts the subgraphs, then g; returns g's analysis.
Analysis sort_recursive(Graph& g, const std::string& label) {
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    for (Attribute& a : g.nodes[i].attributes) {
      if (a.g) sort_recursive(*a.g, label + " > " + node_text(g, i) + " attribute '" + a.name + "'");
      for (auto& sg : a.graphs) if (sg) sort_recursive(*sg, label + " > " + node_text(g, i) + " attribute '" + a.name + "'");
    }
  }
  Analysis an = analyze(g, label);
  bool identity = true;
  for (std::size_t k = 0; k < an.order.size(); ++k) identity = identity && an.order[k] == k;
  if (!identity) {
    std::vector<Node> sorted;
    sorted.reserve(g.nodes.size());
    for (std::size_t i : an.order) sorted.push_back(std::move(g.nodes[i]));
    g.nodes = std::move(sorted);
    std::vector<std::size_t> new_index(an.order.size());
    for (std::size_t k = 0; k < an.order.size(); ++k) new_index[an.order[k]] = k;
    for (auto& [name, user] : an.free_names) if (user != kGraphLevel) user = new_index[user];
    for (std::size_t k = 0; k < an.order.size(); ++k) an.order[k] = k;
  }
  return an;
}

}  // namespace

void check_and_sort_graph(Graph& graph, const std::string& label) {
  // Subgraphs are checked (and their free names resolved) while analysing their parents.
  Analysis top = sort_recursive(graph, label);
  if (!top.free_names.empty()) {
    const auto& [name, user] = top.free_names.front();
    if (user == kGraphLevel) fail(label, "graph output '" + name + "' is not produced by any node, input or initializer");
    fail(label, node_text(graph, user) + " uses '" + name +
                    "', which is neither a graph input, an initializer, nor the output of any node");
  }
}

std::vector<std::size_t> topological_order(const Graph& graph) {
  Analysis a = analyze(graph, "graph '" + graph.name + "'");
  if (!a.free_names.empty()) {
    const auto& [name, user] = a.free_names.front();
    fail("graph '" + graph.name + "'", (user == kGraphLevel ? std::string("a graph output") : node_text(graph, user)) +
                                           " uses undefined value '" + name + "'");
  }
  return std::move(a.order);
}

}  // namespace leanembed::onnx
