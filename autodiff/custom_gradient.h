// custom_gradient: a computation whose gradient is a user-written backward function
// (TensorFlow's tf.custom_gradient), for numerically stable or deliberately altered gradients.
#pragma once

#include <cstddef>
#include <functional>
#include <iterator>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtime/tensor.h"

namespace kiln {

/// The backward function of a custom_gradient computation: given one upstream gradient per output
/// (zeros for outputs the differentiated target does not depend on), returns one gradient per
/// input, each of that input's shape, or an undefined tensor for None.
using CustomBackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& dys)>;

/// What the forward function of a custom_gradient computation returns: its outputs and the
/// backward function that gives their gradient.
using CustomForwardResult = std::pair<std::vector<Tensor>, CustomBackwardFn>;

/// Runs `forward(inputs)` and returns its outputs. Every gradient tape that is recording on this
/// thread records the whole computation as one step whose gradient is the returned backward
/// function; the ops inside `forward` are not recorded one by one. The backward function runs
/// while tapes compute gradients, and outer tapes record the ops it runs, so nested tapes give
/// higher-order gradients through it. Tensors computed inside `forward` are constants to every
/// tape: for higher-order gradients, compute in the backward function from the inputs rather
/// than from forward intermediates (as in TensorFlow).
///
/// Gradients flow only to `inputs`. Reading, inside `forward`, a variable that a recording tape
/// watches throws InvalidArgument (read it outside and pass its value as an input). An undefined
/// input or output, a missing backward function, a backward function that returns the wrong
/// number of gradients or a gradient of the wrong shape throw InvalidArgument naming
/// "custom_gradient". With no tape recording, `forward` simply runs.
std::vector<Tensor> custom_gradient(const std::function<CustomForwardResult(const std::vector<Tensor>&)>& forward,
                                    const std::vector<Tensor>& inputs);

/// The one-output form, for one or more tensor inputs:
///
///   Tensor log1pexp(const Tensor& x) {
///     return custom_gradient([](const Tensor& x) {
///       Tensor e = exp(x);
///       return std::make_pair(log(1.0 + e), [=](const Tensor& dy) { return dy * (1.0 - 1.0 / (1.0 + e)); });
///     }, x);
///   }
///
/// `f(x0, x1, ...)` returns a pair of the output and a backward function of the output's upstream
/// gradient. With one input the backward function may return a Tensor; with several it returns
/// one gradient per input as a std::vector<Tensor> (or any range of tensors, e.g. std::array).
template <class F, class... Ts>
requires(sizeof...(Ts) >= 1 && (std::is_same_v<Ts, Tensor> && ...)) Tensor custom_gradient(F&& f, const Ts&... xs) {
  auto forward = [&f](const std::vector<Tensor>& in) -> CustomForwardResult {
    auto result = [&]<size_t... I>(std::index_sequence<I...>) { return f(in[I]...); }
    (std::index_sequence_for<Ts...>{});
    using Backward = std::decay_t<decltype(result.second)>;
    CustomBackwardFn backward = [g = Backward(std::move(result.second))](const std::vector<Tensor>& dys) {
      auto grads = g(dys[0]);
      if constexpr (std::is_convertible_v<decltype(grads), Tensor>)
        return std::vector<Tensor>{Tensor(grads)};
      else
        return std::vector<Tensor>(std::begin(grads), std::end(grads));
    };
    return {std::vector<Tensor>{Tensor(result.first)}, std::move(backward)};
  };
  return custom_gradient(forward, std::vector<Tensor>{xs...})[0];
}

}  // namespace kiln
