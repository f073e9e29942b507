// Backward functions of concrete functions: the forward graph replayed under a tape inside a
// new trace, differentiated with the tape's rules, then optimized like any traced function.
#include "autodiff/graph_grad.h"

#include "ops/ops.h"

namespace kiln::autodiff {

const trace::ConcreteState& backward_of(const trace::ConcreteState& cs) {
  std::call_once(cs.backward_once, [&cs] {
    const ir::Graph& fwd = *cs.optimized;
    size_t n = cs.input_specs.size(), m = fwd.variables.size();
    std::vector<TensorSpec> specs = cs.input_specs;
    for (const auto& v : fwd.variables) specs.emplace_back(v.type.shape, v.type.dtype, v.name);
    for (const auto& t : cs.out_types) {
      TensorSpec s(t.shape, t.dtype, "grad");
      for (int64_t i = 0; i < s.shape.rank(); ++i)
        if (s.shape.dim(size_t(i)) < 0) s.shape.mut(size_t(i)) = kUnknownDim;
      specs.push_back(s);
    }
    Ref<trace::ConcreteState> bwd =
        trace::trace_concrete(cs.fn_name + "_backward", specs, [&](std::span<const Tensor> p) {
          GradientTape tape(/*persistent=*/false, /*watch_accessed_variables=*/false);
          std::vector<Source> sources;
          std::vector<size_t> where;  // which parameters are differentiable sources
          for (size_t i = 0; i < n + m; ++i)
            if (is_inexact(p[i].dtype())) {
              tape.watch(p[i]);
              sources.emplace_back(p[i]);
              where.push_back(i);
            }
          ops::TensorList outs = trace::replay(fwd, p.first(n), /*pure=*/true, p.subspan(n, m));
          std::vector<Tensor> targets(outs.begin(), outs.end());
          std::vector<Tensor> seeds(p.begin() + long(n + m), p.end());
          std::vector<Tensor> g = tape.gradient(targets, sources, seeds, UnconnectedGradients::Zero);
          std::vector<Tensor> result;
          for (size_t i = 0; i < n + m; ++i) result.push_back(zeros_like(p[i]));
          for (size_t k = 0; k < where.size(); ++k) result[where[k]] = g[k];
          return result;
        });
    cs.backward = bwd;
  });
  return static_cast<const trace::ConcreteState&>(*cs.backward);
}

std::vector<Tensor> call_grad(const GradContext& k) {
  auto* cs = dynamic_cast<const trace::ConcreteState*>(k.attrs.get_object("function").get());
  if (!cs)
    fail<LookupError>("call", "no gradient for a call of '",
                      k.attrs.get_object("function") ? "a CallTarget" : "nothing",
                      "' that is not a traced concrete function");
  const trace::ConcreteState& bwd = backward_of(*cs);
  std::vector<Tensor> args(k.inputs.begin(), k.inputs.end());
  args.insert(args.end(), k.grads.begin(), k.grads.end());
  ops::TensorList g = bwd.call(args);
  std::vector<Tensor> result(g.begin(), g.end());
  for (size_t i = 0; i < result.size() && i < k.inputs.size(); ++i)
    if (!is_inexact(k.inputs[i].dtype())) result[i] = Tensor();
  return result;
}

}  // namespace kiln::autodiff
