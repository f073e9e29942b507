// Autodiff for graphs: the backward function of a concrete function (the gradient of the
// `call` op), and value_and_grad/grad, which trace forward and backward into one graph.
#pragma once

#include <tuple>
#include <utility>
#include <vector>

#include "autodiff/rules.h"
#include "autodiff/tape.h"
#include "compiler/trace/function.h"

namespace kiln {

namespace autodiff {
/// The gradient rule of the `call` op: runs the callee's backward function.
std::vector<Tensor> call_grad(const GradContext& ctx);

/// The backward function of `cs`, built on first use and cached in it: a concrete function
/// taking (tensor leaves..., captured variables' values..., one gradient per output...) and
/// returning one gradient per leaf and per variable (zeros where none flows). It replays the
/// forward graph under a tape inside a trace, so it reuses the tape's rules; variable writes and
/// prints of the forward graph are not repeated.
const trace::ConcreteState& backward_of(const trace::ConcreteState& cs);

template <class F, class... P>
auto make_value_and_grad(F f, std::tuple<P...>*) {
  return [f = std::move(f)](P... args) -> std::pair<Tensor, std::vector<Tensor>> {
    GradientTape tape;
    std::vector<Source> sources;
    auto watch = [&](const auto& a) {
      if constexpr (std::is_same_v<std::decay_t<decltype(a)>, Tensor>) {
        tape.watch(a);
        sources.emplace_back(a);
      }
    };
    (watch(args), ...);
    Tensor y = f(args...);
    std::vector<Tensor> g = tape.gradient(y, sources);
    return {std::move(y), std::move(g)};
  };
}

template <class F, class... P>
auto make_grad(F f, std::tuple<P...>* params) {
  return [vg = make_value_and_grad(std::move(f), params)](P... args) { return vg(args...).second; };
}
}  // namespace autodiff

/// A traced function computing f(args...) and its gradients with respect to every Tensor
/// parameter of `f` (in order; None where the result does not depend on it), forward and
/// backward in one graph. `f` returns a Tensor (summed if not a scalar, as tape.gradient does).
template <class F>
auto value_and_grad(F f, FunctionOptions opts = {}, std::source_location loc = std::source_location::current()) {
  using Params = typename trace::CallableTraits<std::decay_t<F>>::Params;
  if (opts.name == "function") opts.name = "value_and_grad";
  return function(autodiff::make_value_and_grad(std::move(f), static_cast<Params*>(nullptr)), std::move(opts), loc);
}

/// Like value_and_grad, returning only the gradients.
template <class F>
auto grad(F f, FunctionOptions opts = {}, std::source_location loc = std::source_location::current()) {
  using Params = typename trace::CallableTraits<std::decay_t<F>>::Params;
  if (opts.name == "function") opts.name = "grad";
  return function(autodiff::make_grad(std::move(f), static_cast<Params*>(nullptr)), std::move(opts), loc);
}

}  // namespace kiln
