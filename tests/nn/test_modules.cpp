// The walkthrough's "modules, layers and models" chapter as tests: variable collection, name
// paths, freezing, deferred build, the rejected 4-wide input, functional and Sequential models,
// summary(), traced module methods, and bad-input errors.
#include <catch2/catch.hpp>

#include <kiln/kiln.h>

using namespace kiln;
using Catch::Matchers::Contains;

namespace {

// The walkthrough's SimpleModule: one trainable and one non-trainable variable.
struct SimpleModuleImpl : nn::Module {
  explicit SimpleModuleImpl(std::string name = {}) : nn::Module(std::move(name)) {}
  Variable a_variable = register_variable("a_variable", Variable(constant(5.0f), "train_me"));
  Variable non_trainable = register_variable("non_trainable_variable", Variable(constant(5.0f), "do_not_train_me", false));
  Tensor operator()(const Tensor& x) const { return a_variable * x + non_trainable; }
};
KILN_MODULE(SimpleModule);

// The walkthrough's Dense module (sizes given up front) and the two-layer model built from it.
struct DenseModuleImpl : nn::Module {
  Variable w, b;
  DenseModuleImpl(int64_t in, int64_t out, std::string name = {}) : nn::Module(std::move(name)) {
    w = register_variable("w", random::normal({in, out}, 3), true);
    b = register_variable("b", zeros({out}), true);
  }
  Tensor operator()(const Tensor& x) const { return relu(matmul(x, w) + b); }
};
KILN_MODULE(DenseModule);

struct SequentialModuleImpl : nn::Module {
  DenseModule dense_1 = register_module("dense_1", DenseModule(3, 3));
  DenseModule dense_2 = register_module("dense_2", DenseModule(3, 2));
  SequentialModuleImpl() : nn::Module("the_model") {}
  Tensor operator()(const Tensor& x) const { return dense_2(dense_1(x)); }
};
KILN_MODULE(SequentialModule);

// The walkthrough's FlexibleDense layer: weights made in build from the input's last dim.
struct FlexibleDenseImpl : nn::Layer {
  int64_t out_features;
  Variable w, b;
  explicit FlexibleDenseImpl(int64_t out, std::string name = {}) : nn::Layer(std::move(name)), out_features(out) {}
  void build(const Shape& s) override {
    w = add_weight("w", {s[-1], out_features}, nn::init::random_normal(0.0, 1.0));
    b = add_weight("b", {out_features}, nn::init::zeros());
  }
  Tensor call(const Tensor& x, bool) override { return matmul(x, w) + b; }
};
KILN_MODULE(FlexibleDense);

struct MySequentialModelImpl : nn::ModelImpl {
  FlexibleDense dense_1 = register_module("dense_1", FlexibleDense(3));
  FlexibleDense dense_2 = register_module("dense_2", FlexibleDense(2));
  explicit MySequentialModelImpl(std::string name = {}) : nn::ModelImpl(std::move(name)) {}
  Tensor call(const Tensor& x, bool training) override { return dense_2(dense_1(x, training), training); }
};
KILN_MODULE(MySequentialModel);

std::vector<std::string> names_of(const std::vector<Variable>& vs) {
  std::vector<std::string> out;
  for (auto& v : vs) out.push_back(v.name());
  return out;
}

}  // namespace

TEST_CASE("a module collects trainable and non-trainable variables", "[nn][module]") {
  SimpleModule m("simple");
  CHECK(m->name() == "simple");
  CHECK(names_of(m->trainable_variables()) == std::vector<std::string>{"train_me:0"});
  CHECK(names_of(m->variables()) == std::vector<std::string>{"train_me:0", "do_not_train_me:0"});
  CHECK(m(constant(2.0f)).item<float>() == 15.0f);
  // the handle shares the module: copying it copies no variable
  SimpleModule copy = m;
  copy->a_variable.assign(constant(1.0f));
  CHECK(m->a_variable.item<float>() == 1.0f);
  CHECK(copy.get() == m.get());
}

TEST_CASE("modules nest: submodules, variables and name paths", "[nn][module]") {
  SequentialModule model;
  CHECK(model(constant({{2.0f, 2.0f, 2.0f}})).shape() == Shape{1, 2});
  auto subs = model->submodules();
  REQUIRE(subs.size() == 2);
  CHECK(subs[0].get() == model->dense_1.get());
  CHECK(model->variables().size() == 4);
  std::vector<std::string> paths;
  for (auto& [path, v] : model->named_variables("model")) paths.push_back(path);
  CHECK(paths == std::vector<std::string>{"model/dense_1/w", "model/dense_1/b", "model/dense_2/w", "model/dense_2/b"});
  // the registered handle and the variable list share state
  model->dense_1->b.assign(ones({3}));
  CHECK(model->variables()[1].to_vector<float>() == std::vector<float>{1, 1, 1});
}

TEST_CASE("freezing a module removes its variables from trainable_variables", "[nn][module]") {
  SequentialModule model;
  model->dense_1->set_trainable(false);
  CHECK(model->trainable_variables().size() == 2);
  CHECK(model->non_trainable_variables().size() == 2);
  model->set_trainable(false);
  CHECK(model->trainable_variables().empty());
  model->set_trainable(true);
  model->dense_1->set_trainable(true);
  CHECK(model->trainable_variables().size() == 4);
}

TEST_CASE("registration errors are typed and name the module", "[nn][module][errors]") {
  SimpleModule m("simple");
  CHECK_THROWS_AS(m->register_variable("a_variable", Variable(constant(1.0f))), InvalidArgument);
  CHECK_THROWS_WITH(m->register_variable("a/b", Variable(constant(1.0f))), Contains("[simple]") && Contains("'/'"));
  CHECK_THROWS_AS(m->register_variable("", Variable(constant(1.0f))), InvalidArgument);
  CHECK_THROWS_AS(m->register_variable("undefined", Variable()), InvalidArgument);
  CHECK_THROWS_WITH(m->register_module("self", m.ptr()), Contains("itself"));
  SimpleModule child;
  m->register_module("child", child);
  CHECK_THROWS_WITH(child->register_module("parent", m), Contains("cycle"));
}

TEST_CASE("a module method traced with function makes one graph per signature", "[nn][module][function]") {
  SequentialModule model;
  auto call = function([&](Tensor x) { return model(x); }, {.name = "my_model"});
  Tensor a = call(constant({{2.0f, 2.0f, 2.0f}}));
  Tensor b = call(constant({{{2.0f, 2.0f, 2.0f}, {2.0f, 2.0f, 2.0f}}}));
  CHECK(a.shape() == Shape{1, 2});
  CHECK(b.shape() == Shape{1, 2, 2});
  CHECK(call.tracing_count() == 2);
  // the variables are captured by reference: a new value is seen by the cached graph
  Tensor eager = model(constant({{2.0f, 2.0f, 2.0f}}));
  CHECK(reduce_all(equal(a, eager)).item<bool>());
  model->dense_2->b.assign(constant({1.0f, 1.0f}));
  Tensor after = call(constant({{2.0f, 2.0f, 2.0f}}));
  CHECK(reduce_all(equal(after, model(constant({{2.0f, 2.0f, 2.0f}})))).item<bool>());
  CHECK(call.tracing_count() == 2);
}

TEST_CASE("a layer builds its weights on the first call and rejects a 4-wide input", "[nn][layer]") {
  nn::clear_session();
  FlexibleDense flexible_dense(3);
  CHECK(flexible_dense->name() == "flexible_dense");
  CHECK(flexible_dense->variables().empty());
  CHECK_FALSE(flexible_dense->built());
  Tensor y = flexible_dense(constant({{2.0f, 2.0f, 2.0f}, {3.0f, 3.0f, 3.0f}}));
  CHECK(y.shape() == Shape{2, 3});
  CHECK(names_of(flexible_dense->variables()) == std::vector<std::string>{"flexible_dense/w:0", "flexible_dense/b:0"});
  CHECK(flexible_dense->variables()[0].shape() == Shape{3, 3});
  try {
    flexible_dense(constant({{2.0f, 2.0f, 2.0f, 2.0f}}));
    FAIL("a 4-wide input was accepted");
  } catch (const InvalidArgument& e) {
    std::string msg = e.what();
    CHECK_THAT(msg, Contains("Exception encountered when calling layer 'flexible_dense' (type FlexibleDense)"));
    CHECK_THAT(msg, Contains("[matmul]"));
    CHECK_THAT(msg, Contains("inputs=Tensor(shape=(1, 4), dtype=float32)"));
  }
}

TEST_CASE("Dense checks later inputs against the built input dim", "[nn][layer]") {
  nn::Dense dense(4, "relu");
  CHECK(dense(ones({2, 3})).shape() == Shape{2, 4});
  CHECK(dense->kernel().shape() == Shape{3, 4});
  CHECK(dense->bias().shape() == Shape{4});
  CHECK_THROWS_WITH(dense(ones({2, 5})), Contains("incompatible with the layer") && Contains("found shape=(2, 5)"));
  CHECK_THROWS_AS(dense(ones({2, 5})), InvalidArgument);
  // relu: no negative outputs
  CHECK(reduce_min(dense(random::normal({8, 3}, 2))).item<float>() >= 0.0f);
  // Dense on rank-3 inputs applies to the last axis
  CHECK(dense(ones({2, 7, 3})).shape() == Shape{2, 7, 4});
  CHECK_THROWS_AS(nn::Dense(0), InvalidArgument);
  CHECK_THROWS_WITH(nn::Dense(2, "relux"), Contains("unknown activation 'relux'"));
}

TEST_CASE("Dense with options: no bias, constant initializers, activations", "[nn][layer]") {
  nn::DenseOptions o;
  o.use_bias = false;
  o.kernel_initializer = nn::init::constant(0.5);
  o.activation = "sigmoid";
  nn::Dense d(2, o);
  Tensor y = d(constant({{1.0f, 1.0f}}));
  CHECK(d->variables().size() == 1);
  CHECK(y.to_vector<float>()[0] == Approx(1.0 / (1.0 + std::exp(-1.0))));
  nn::Dense s(3, nn::DenseOptions{.activation = "softmax"});
  CHECK(reduce_sum(s(ones({1, 2}))).item<float>() == Approx(1.0f));
}

TEST_CASE("Dropout drops while training only, reproducibly, and differently on each call", "[nn][layer]") {
  nn::Dropout drop(0.5, 11);
  Tensor x = ones({1000});
  CHECK(reduce_all(equal(drop(x, false), x)).item<bool>());
  Tensor y = drop(x, true);
  std::vector<float> v = y.to_vector<float>();
  int zeros_count = 0;
  for (float e : v) {
    CHECK((e == 0.0f || e == 2.0f));
    zeros_count += e == 0.0f;
  }
  CHECK(zeros_count > 400);
  CHECK(zeros_count < 600);
  Tensor y2 = drop(x, true);
  CHECK_FALSE(reduce_all(equal(y, y2)).item<bool>());
  // in a traced function the mask still changes between calls
  auto f = function([&](Tensor t) { return drop(t, true); });
  Tensor a = f(x), b = f(x);
  CHECK_FALSE(reduce_all(equal(a, b)).item<bool>());
  CHECK(f.tracing_count() == 1);
  CHECK_THROWS_AS(nn::Dropout(1.0), InvalidArgument);
  CHECK_THROWS_AS(nn::Dropout(-0.1), InvalidArgument);
}

TEST_CASE("Flatten keeps the batch axis", "[nn][layer]") {
  nn::Flatten f;
  CHECK(f(ones({2, 3, 4})).shape() == Shape{2, 12});
  auto in = nn::Input({3, 4});
  CHECK(f(in).shape() == Shape{-1, 12});
}

TEST_CASE("the functional API: Input, layers on symbolic tensors, Model and summary", "[nn][model]") {
  // the walkthrough's names: three FlexibleDense layers were made before these
  nn::clear_session();
  nn::unique_name("flexible_dense");
  nn::unique_name("flexible_dense");
  nn::unique_name("flexible_dense");
  auto in = nn::Input({3});
  CHECK(in.shape() == Shape{-1, 3});
  auto x = FlexibleDense(3)(in);
  CHECK(x.shape() == Shape{-1, 3});
  x = FlexibleDense(2)(x);
  nn::Model model(in, x);
  CHECK(model->name() == "model");
  std::string expected =
      "Model: \"model\"\n"
      "_________________________________________________________________\n"
      " Layer (type)                Output Shape              Param #\n"
      "=================================================================\n"
      " input_1 (InputLayer)        [(None, 3)]               0\n"
      "\n"
      " flexible_dense_3 (FlexibleD  (None, 3)                12\n"
      " ense)\n"
      "\n"
      " flexible_dense_4 (FlexibleD  (None, 2)                8\n"
      " ense)\n"
      "\n"
      "=================================================================\n"
      "Total params: 20\n"
      "Trainable params: 20\n"
      "Non-trainable params: 0\n"
      "_________________________________________________________________\n";
  CHECK(model->summary_string() == expected);
  Tensor y = model(constant({{2.0f, 2.0f, 2.0f}}));
  CHECK(y.shape() == Shape{1, 2});
  CHECK(model->variables().size() == 4);
  CHECK_THROWS_WITH(model(constant({{2.0f, 2.0f, 2.0f, 2.0f}})),
                    Contains("incompatible with the layer") && Contains("(1, 4)"));
}

TEST_CASE("Sequential builds on the first call and summarizes its layers", "[nn][model]") {
  nn::clear_session();
  auto model = nn::Sequential({nn::Dense(3, "relu"), nn::Dense(2)});
  CHECK_THROWS_AS(model->summary_string(), FailedPrecondition);
  CHECK(model(ones({4, 5})).shape() == Shape{4, 2});
  std::string s = model->summary_string();
  CHECK_THAT(s, Contains(" dense (Dense)               (None, 3)                 18"));
  CHECK_THAT(s, Contains(" dense_1 (Dense)             (None, 2)                 8"));
  CHECK_THAT(s, Contains("Total params: 26"));
  CHECK_THROWS_AS(model->add(nn::Dense(1)), FailedPrecondition);
  // an InputLayer first builds at once
  auto with_input = nn::Sequential({nn::InputLayer(Shape{5}), nn::Dense(2)});
  CHECK(with_input->built());
  CHECK_THAT(with_input->summary_string(), Contains("Total params: 12"));
}

TEST_CASE("a model subclass collects its layers' variables after the first call", "[nn][model]") {
  nn::clear_session();
  MySequentialModel model("the_model");
  CHECK(model->variables().empty());
  Tensor y = model(constant({{2.0f, 2.0f, 2.0f}}));
  CHECK(y.shape() == Shape{1, 2});
  CHECK(model->variables().size() == 4);
  CHECK(model->submodules().size() == 2);
  std::string s = model->summary_string();
  CHECK_THAT(s, Contains("Model: \"the_model\""));
  CHECK_THAT(s, Contains("Total params: 20"));
  // freezing a layer of a model: non-trainable params in the summary
  model->dense_1->set_trainable(false);
  CHECK_THAT(model->summary_string(), Contains("Non-trainable params: 12"));
}

TEST_CASE("a layer shared by two models shares its weights", "[nn][model]") {
  nn::Dense shared(2);
  auto a = nn::Sequential({shared});
  auto b = nn::Sequential({shared, nn::Dense(1)});
  a(ones({1, 3}));
  b(ones({1, 3}));
  CHECK(a->variables()[0].impl() == b->variables()[0].impl());
}

TEST_CASE("Model errors: inputs not from Input, a subclass without call", "[nn][model][errors]") {
  auto in = nn::Input({3});
  auto other = nn::Input({3});
  auto y = nn::Dense(2)(other);
  CHECK_THROWS_AS(nn::Model(in, y), InvalidArgument);
  nn::Model empty;
  CHECK_THROWS_AS(empty(ones({1, 3})), Unimplemented);
  CHECK_THROWS_AS(nn::init::get("nope"), InvalidArgument);
}
