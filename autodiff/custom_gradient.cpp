// custom_gradient: the forward runs with every recording tape paused, then each of them records
// one step whose gradient calls the user's backward function.
#include "autodiff/custom_gradient.h"

#include <memory>

#include "autodiff/tape.h"
#include "ops/ops.h"

namespace kiln {
namespace autodiff {

// The tape internals custom_gradient needs (GradientTape befriends this struct).
struct TapeAccess {
  // The tapes of this thread that are recording now.
  static std::vector<GradientTape*> recording_tapes() {
    std::vector<GradientTape*> out;
    for (ops::Level* level = ops::current_level(); level; level = level->below())
      if (GradientTape* t = GradientTape::tape_of(level); t && t->recording_) out.push_back(t);
    return out;
  }

  static void set_recording(GradientTape& t, bool on) { t.recording_ = on; }

  // True if reading `var` would make the tape track the value (what GradientTape's
  // on_variable_read decides).
  static bool watches(const GradientTape& t, const VariableImpl& var) {
    if (!is_inexact(var.dtype())) return false;
    for (const auto& w : t.watched_vars_)
      if (w.get() == &var) return true;
    return t.watch_accessed_variables_ && var.trainable();
  }

  static void record(GradientTape& t, std::span<const Tensor> inputs, std::span<const Tensor> outputs,
                     std::shared_ptr<const GradientTape::CustomBackward> backward) {
    t.record_custom(inputs, outputs, std::move(backward));
  }
  using Backward = GradientTape::CustomBackward;
};

namespace {

// Pauses the given tapes for its lifetime.
class PauseTapes {
 public:
  explicit PauseTapes(const std::vector<GradientTape*>& tapes) : tapes_(tapes) {
    for (GradientTape* t : tapes_) TapeAccess::set_recording(*t, false);
  }
  ~PauseTapes() {
    for (GradientTape* t : tapes_) TapeAccess::set_recording(*t, true);
  }
  PauseTapes(const PauseTapes&) = delete;
  PauseTapes& operator=(const PauseTapes&) = delete;

 private:
  const std::vector<GradientTape*>& tapes_;
};

// A dispatch level over the paused tapes that rejects reads of variables they watch: a paused
// tape would not see the read, and the variable's gradient would silently be None.
class VariableReadCheck final : public ops::Level {
 public:
  explicit VariableReadCheck(const std::vector<GradientTape*>& tapes) : tapes_(tapes) {}
  ops::TensorList process(const ops::OpDef& def, const ops::Attrs& attrs, std::span<const Tensor> inputs,
                          const ops::TypeList& types) override {
    return process_below(def, attrs, inputs, types);
  }
  Tensor read_variable(VariableImpl& var) override {
    for (GradientTape* t : tapes_)
      if (TapeAccess::watches(*t, var))
        fail<InvalidArgument>("custom_gradient", "the forward function read variable '", var.name(),
                              "', which a gradient tape watches; its gradient cannot flow through a custom "
                              "gradient: read it outside and pass the value as an input");
    return read_variable_below(var);
  }

 private:
  const std::vector<GradientTape*>& tapes_;
};

}  // namespace
}  // namespace autodiff

std::vector<Tensor> custom_gradient(const std::function<CustomForwardResult(const std::vector<Tensor>&)>& forward,
                                    const std::vector<Tensor>& inputs) {
  using autodiff::TapeAccess;
  if (!forward) fail<InvalidArgument>("custom_gradient", "the forward function is empty");
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].defined()) fail<InvalidArgument>("custom_gradient", "input ", i, " is undefined (None)");
  const std::vector<GradientTape*> tapes = TapeAccess::recording_tapes();
  if (tapes.empty()) return forward(inputs).first;

  CustomForwardResult result;
  {
    autodiff::PauseTapes pause(tapes);
    autodiff::VariableReadCheck check(tapes);
    ops::LevelScope scope(check);
    result = forward(inputs);
  }
  std::vector<Tensor>& outputs = result.first;
  if (!result.second) fail<InvalidArgument>("custom_gradient", "the forward function returned no backward function");
  for (size_t k = 0; k < outputs.size(); ++k) {
    if (!outputs[k].defined()) fail<InvalidArgument>("custom_gradient", "output ", k, " is undefined (None)");
    // a new tensor for each output: tapes tell tensors apart by identity, and an output may be
    // an input itself or appear twice
    outputs[k] = stop_gradient(outputs[k]);
  }

  std::vector<Shape> shapes;
  for (const Tensor& x : inputs) shapes.push_back(x.shape());
  auto backward = std::make_shared<const TapeAccess::Backward>(
      [user = std::move(result.second), shapes = std::move(shapes)](std::span<const Tensor> dys) {
        std::vector<Tensor> grads = user(std::vector<Tensor>(dys.begin(), dys.end()));
        if (grads.size() != shapes.size())
          fail<InvalidArgument>("custom_gradient", "the backward function returned ", grads.size(), " gradients for ",
                                shapes.size(), " inputs");
        for (size_t i = 0; i < grads.size(); ++i)
          if (grads[i].defined() && grads[i].shape() != shapes[i])
            fail<InvalidArgument>("custom_gradient", "the backward function returned a gradient of shape ",
                                  grads[i].shape().to_string(), " for input ", i, " of shape ", shapes[i].to_string());
        return grads;
      });
  for (GradientTape* t : tapes) TapeAccess::record(*t, inputs, outputs, backward);
  return outputs;
}

}  // namespace kiln
