// The walkthrough's "modules, layers and models" chapter ("模块、层和模型简介") in C++: modules
// that own variables, a deferred build from the first input's shape, the rejected 4-wide
// input, a traced module method, a Keras-style model subclass and the functional API's summary.
#include <kiln/kiln.h>

#include <iostream>

using namespace kiln;

namespace {

// 2. A module with a trainable and a non-trainable variable.
struct SimpleModuleImpl : nn::Module {
  explicit SimpleModuleImpl(std::string name) : nn::Module(std::move(name)) {}
  Variable a_variable = register_variable("a_variable", Variable(constant(5.0f), "train_me"));
  Variable non_trainable_variable =
      register_variable("non_trainable_variable", Variable(constant(5.0f), "do_not_train_me", /*trainable=*/false));
  Tensor operator()(const Tensor& x) const { return a_variable * x + non_trainable_variable; }
};
KILN_MODULE(SimpleModule);

// A dense module with its sizes given up front, and a model made of two of them.
struct DenseImpl : nn::Module {
  Variable w, b;
  DenseImpl(int64_t in_features, int64_t out_features, uint64_t seed) {
    w = register_variable("w", random::normal({in_features, out_features}, seed));
    b = register_variable("b", zeros({out_features}));
  }
  Tensor operator()(const Tensor& x) const { return relu(matmul(x, w) + b); }
};
KILN_MODULE(Dense);

struct SequentialModuleImpl : nn::Module {
  explicit SequentialModuleImpl(std::string name) : nn::Module(std::move(name)) {}
  Dense dense_1 = register_module("dense_1", Dense(3, 3, 1));
  Dense dense_2 = register_module("dense_2", Dense(3, 2, 2));
  Tensor operator()(const Tensor& x) const { return dense_2(dense_1(x)); }
};
KILN_MODULE(SequentialModule);

// 8. A Keras-style layer whose weights are created in build, from the input's shape.
struct FlexibleDenseImpl : nn::Layer {
  int64_t out_features;
  Variable w, b;
  explicit FlexibleDenseImpl(int64_t out) : out_features(out) {}
  void build(const Shape& input_shape) override {
    w = add_weight("w", {input_shape[-1], out_features}, nn::init::random_normal(0.0, 1.0, /*seed=*/3));
    b = add_weight("b", {out_features}, nn::init::zeros());
  }
  Tensor call(const Tensor& inputs, bool training) override { return matmul(inputs, w) + b; }
};
KILN_MODULE(FlexibleDense);

// 9. A Keras model subclass.
struct MySequentialModelImpl : nn::ModelImpl {
  explicit MySequentialModelImpl(std::string name) : nn::ModelImpl(std::move(name)) {}
  FlexibleDense dense_1 = register_module("dense_1", FlexibleDense(3));
  FlexibleDense dense_2 = register_module("dense_2", FlexibleDense(2));
  Tensor call(const Tensor& x, bool training) override { return dense_2(dense_1(x, training), training); }
};
KILN_MODULE(MySequentialModel);

void print_list(const char* what, const std::vector<Variable>& vars) {
  std::cout << what << " (";
  for (size_t i = 0; i < vars.size(); ++i) std::cout << (i ? ", " : "") << vars[i];
  std::cout << ")\n";
}

}  // namespace

int main() {
  std::cout << "2. Defining models and layers\n";
  SimpleModule simple_module("simple");
  std::cout << "simple_module(5.0): " << simple_module(constant(5.0f)) << "\n";
  print_list("trainable variables:", simple_module->trainable_variables());
  print_list("all variables:", simple_module->variables());

  SequentialModule my_model("the_model");
  std::cout << "Model results: " << my_model(constant({{2.0f, 2.0f, 2.0f}})) << "\n";
  std::cout << "Submodules: " << my_model->submodules().size() << "\n";
  for (auto& [path, var] : my_model->named_variables("model")) std::cout << path << ": " << var << "\n";

  std::cout << "\n5. A traced method: one graph per input signature\n";
  auto traced = function([&](Tensor x) { return my_model(x); }, {.name = "my_model"});
  std::cout << traced(constant({{2.0f, 2.0f, 2.0f}})) << "\n";
  std::cout << traced(constant({{{2.0f, 2.0f, 2.0f}, {2.0f, 2.0f, 2.0f}}})) << "\n";
  std::cout << "traces: " << traced.tracing_count() << "\n";

  std::cout << "\n8. The build step\n";
  FlexibleDense flexible_dense(3);
  std::cout << "variables before the first call: " << flexible_dense->variables().size() << "\n";
  std::cout << "Model results: " << flexible_dense(constant({{2.0f, 2.0f, 2.0f}, {3.0f, 3.0f, 3.0f}})) << "\n";
  for (auto& v : flexible_dense->variables()) std::cout << v << "\n";
  try {
    Tensor rejected = flexible_dense(constant({{2.0f, 2.0f, 2.0f, 2.0f}}));
    std::cout << "Model results: " << rejected << "\n";
  } catch (const InvalidArgument& e) {
    std::cout << "Failed: " << e.what() << "\n";
  }

  std::cout << "\n9. Keras models\n";
  MySequentialModel my_sequential_model("the_model");
  std::cout << "Model results: " << my_sequential_model(constant({{2.0f, 2.0f, 2.0f}})) << "\n";
  std::cout << "variables: " << my_sequential_model->variables().size()
            << ", submodules: " << my_sequential_model->submodules().size() << "\n";

  // the functional API: the input shape is given up front (the batch dim stays unknown)
  nn::SymbolicTensor inputs = nn::Input({3});
  nn::SymbolicTensor x = FlexibleDense(3)(inputs);
  x = FlexibleDense(2)(x);
  nn::Model my_functional_model(inputs, x);
  my_functional_model->summary();
  std::cout << my_functional_model(constant({{2.0f, 2.0f, 2.0f}})) << "\n";
  return 0;
}
