// cond and while_loop: eager execution, and subgraph tracing with captured outer values.
#include "compiler/trace/control_flow.h"

#include <unordered_map>

#include "compiler/trace/tracer.h"

namespace kiln {
namespace {

trace::Tracer* innermost_tracer() {
  for (ops::Level* l = ops::current_level(); l; l = l->below())
    if (l->is_trace()) return dynamic_cast<trace::Tracer*>(l);
  return nullptr;
}

bool scalar_bool(const Tensor& pred, const char* op) {
  if (!pred.defined()) fail<InvalidArgument>(op, "the predicate is undefined (None)");
  if (pred.dtype() != DType::Bool || pred.num_elements() != 1)
    fail<InvalidArgument>(op, "the predicate must be a bool tensor with one element, got ", dtype_name(pred.dtype()),
                          " with shape ", pred.shape().to_string());
  return !pred.is_symbolic() ? pred.item<bool>() : false;
}

// A branch or loop part traced into its own graph; outer tensors become captures.
struct SubTrace {
  std::unique_ptr<ir::Graph> graph;
  std::vector<Tensor> captures;
  size_t explicit_params = 0;
};

SubTrace trace_sub(trace::Tracer& outer, const char* name, std::span<const ir::TensorType> params,
                   const std::function<std::vector<Tensor>(std::span<const Tensor>)>& fn) {
  SubTrace st;
  st.graph = std::make_unique<ir::Graph>(outer.function_name() + "/" + name);
  st.graph->symbols = outer.graph().symbols;
  trace::Tracer tr(*st.graph, outer.function_name(), trace::Tracer::OuterTensors::Capture);
  tr.loc = outer.loc;
  std::vector<Tensor> ps;
  for (const auto& t : params) ps.push_back(tr.add_parameter(t));
  st.explicit_params = ps.size();
  std::vector<Tensor> outs;
  {
    ops::LevelScope scope(tr);
    outs = fn(ps);
  }
  tr.finish(outs);
  st.captures = tr.captures();
  return st;
}

// Makes every subgraph take the union of all captures, in one order, after its explicit params.
std::vector<Tensor> unify_captures(std::span<SubTrace*> subs) {
  std::vector<Tensor> all;
  std::unordered_map<const TensorImpl*, size_t> index;
  for (SubTrace* s : subs)
    for (const Tensor& c : s->captures)
      if (index.emplace(c.impl(), all.size()).second) all.push_back(c);
  for (SubTrace* s : subs) {
    ir::Graph& g = *s->graph;
    std::vector<ir::Value*> params(g.inputs.begin(), g.inputs.begin() + long(s->explicit_params));
    std::vector<ir::Value*> caps(all.size(), nullptr);
    for (size_t i = 0; i < s->captures.size(); ++i)
      caps[index[s->captures[i].impl()]] = g.inputs[s->explicit_params + i];
    for (size_t j = 0; j < all.size(); ++j)
      if (!caps[j]) {
        g.add_input({all[j].dtype(), all[j].shape()}, "unused_capture");
        caps[j] = g.inputs.back();
      }
    params.insert(params.end(), caps.begin(), caps.end());
    g.inputs = std::move(params);
  }
  return all;
}

void refuse_gradients(const char* op) {
  if (ops::recording_gradients())
    fail<Unimplemented>(op, "gradients through ", op,
                        " inside a traced function are not supported yet; compute the gradient in eager code or "
                        "select values with kiln::where");
}

}  // namespace

std::vector<Tensor> cond(const Tensor& pred, const std::function<std::vector<Tensor>()>& then_fn,
                         const std::function<std::vector<Tensor>()>& else_fn) {
  bool p = scalar_bool(pred, "cond");
  trace::Tracer* outer = pred.is_symbolic() ? innermost_tracer() : nullptr;
  if (!outer) return p ? then_fn() : else_fn();
  refuse_gradients("cond");
  auto wrap = [](const std::function<std::vector<Tensor>()>& f) {
    return [&f](std::span<const Tensor>) { return f(); };
  };
  SubTrace a = trace_sub(*outer, "then", {}, wrap(then_fn));
  SubTrace b = trace_sub(*outer, "else", {}, wrap(else_fn));
  if (a.graph->outputs.size() != b.graph->outputs.size())
    fail<InvalidArgument>("cond", "the branches return different numbers of tensors: ", a.graph->outputs.size(),
                          " and ", b.graph->outputs.size());
  std::vector<ir::TensorType> types;
  for (size_t i = 0; i < a.graph->outputs.size(); ++i) {
    ir::TensorType ta = a.graph->outputs[i]->type, tb = b.graph->outputs[i]->type;
    if (ta.dtype != tb.dtype || ta.shape.rank() != tb.shape.rank())
      fail<InvalidArgument>("cond", "output ", i, " is ", ir::type_to_string(ta, nullptr), " in the true branch but ",
                            ir::type_to_string(tb, nullptr), " in the false branch");
    for (int64_t d = 0; d < ta.shape.rank(); ++d)
      if (ta.shape.dim(size_t(d)) != tb.shape.dim(size_t(d))) ta.shape.mut(size_t(d)) = kUnknownDim;
    types.push_back(ta);
  }
  SubTrace* subs[] = {&a, &b};
  std::vector<Tensor> caps = unify_captures(subs);
  std::vector<ir::Value*> ins{outer->value_of(pred)};
  for (const Tensor& c : caps) ins.push_back(outer->value_of(c));
  ir::Node* n = outer->graph().append(ir::NodeKind::Cond, std::move(ins), types);
  n->loc = outer->loc;
  n->subgraphs.push_back(std::move(a.graph));
  n->subgraphs.push_back(std::move(b.graph));
  std::vector<Tensor> out;
  for (size_t i = 0; i < n->num_outputs(); ++i) out.push_back(outer->symbolic(n->output(i)));
  return out;
}

Tensor cond(const Tensor& pred, const std::function<Tensor()>& then_fn, const std::function<Tensor()>& else_fn) {
  return cond(
      pred, [&] { return std::vector<Tensor>{then_fn()}; }, [&] { return std::vector<Tensor>{else_fn()}; })[0];
}

std::vector<Tensor> while_loop(const std::function<Tensor(std::span<const Tensor>)>& cond_fn,
                               const std::function<std::vector<Tensor>(std::span<const Tensor>)>& body,
                               std::vector<Tensor> loop_vars) {
  for (const Tensor& v : loop_vars)
    if (!v.defined()) fail<InvalidArgument>("while_loop", "a loop variable is undefined (None)");
  trace::Tracer* outer = innermost_tracer();
  if (!outer) {
    for (;;) {
      Tensor c = cond_fn(loop_vars);
      if (!scalar_bool(c, "while_loop")) break;
      std::vector<Tensor> next = body(loop_vars);
      if (next.size() != loop_vars.size())
        fail<InvalidArgument>("while_loop", "the body returned ", next.size(), " tensors for ", loop_vars.size(),
                              " loop variables");
      loop_vars = std::move(next);
    }
    return loop_vars;
  }
  refuse_gradients("while_loop");
  std::vector<ir::TensorType> types;
  for (const Tensor& v : loop_vars) types.push_back({v.dtype(), v.shape()});
  SubTrace c =
      trace_sub(*outer, "cond", types, [&](std::span<const Tensor> lv) { return std::vector<Tensor>{cond_fn(lv)}; });
  const auto& ct = c.graph->outputs.at(0)->type;
  if (ct.dtype != DType::Bool || ct.shape.rank() != 0)
    fail<InvalidArgument>("while_loop", "the condition must return a bool scalar, got ",
                          ir::type_to_string(ct, nullptr));
  SubTrace b = trace_sub(*outer, "body", types, body);
  if (b.graph->outputs.size() != types.size())
    fail<InvalidArgument>("while_loop", "the body returned ", b.graph->outputs.size(), " tensors for ", types.size(),
                          " loop variables");
  for (size_t i = 0; i < types.size(); ++i)
    if (!(b.graph->outputs[i]->type == types[i]))
      fail<InvalidArgument>("while_loop", "loop variable ", i, " enters as ", ir::type_to_string(types[i], nullptr),
                            " but the body returns ", ir::type_to_string(b.graph->outputs[i]->type, nullptr),
                            "; loop variables must keep their dtype and shape");
  SubTrace* subs[] = {&c, &b};
  std::vector<Tensor> caps = unify_captures(subs);
  std::vector<ir::Value*> ins;
  for (const Tensor& v : loop_vars) ins.push_back(outer->value_of(v));
  for (const Tensor& t : caps) ins.push_back(outer->value_of(t));
  ir::Node* n = outer->graph().append(ir::NodeKind::While, std::move(ins), types);
  n->loc = outer->loc;
  n->subgraphs.push_back(std::move(c.graph));
  n->subgraphs.push_back(std::move(b.graph));
  std::vector<Tensor> out;
  for (size_t i = 0; i < n->num_outputs(); ++i) out.push_back(outer->symbolic(n->output(i)));
  return out;
}

}  // namespace kiln
