// Layer and model configs as JSON: round trips of every built-in layer, Sequential and functional
// models (same summary, same outputs once the weights are copied), custom layers through the
// registry, initializers, and hostile JSON (typed errors, never a crash).
#include <catch2/catch.hpp>

#include <kiln/kiln.h>

#include <random>
#include <string>
#include <vector>

using namespace kiln;
using Catch::Matchers::Contains;
using nlohmann::json;

namespace {

// Rebuilds `model` from its JSON, copies its weights, and checks the architecture and outputs.
nn::Model round_trip(const std::shared_ptr<nn::ModelImpl>& model, const Tensor& x) {
  const std::string text = model->to_json();
  nn::Model back = nn::model_from_json(text);
  CHECK(back->to_json() == text);
  if (model->built()) {
    CHECK(back->summary_string() == model->summary_string());
    back->set_weights(model->get_weights());
    Tensor a = model->predict(x), b = back->predict(x);
    CHECK(a.shape() == b.shape());
    CHECK(reduce_max(abs(cast(a, float32) - cast(b, float32))).item<float>() == 0.0f);
  }
  return back;
}

void check_error(const std::string& text, const std::string& needle) {
  INFO(text);
  CHECK_THROWS_AS(nn::model_from_json(text), InvalidArgument);
  CHECK_THROWS_WITH(nn::model_from_json(text), Contains(needle));
}

// A small valid functional model's JSON, to break in the tests.
json functional_json() {
  nn::clear_session();
  auto in = nn::Input({4}, float32, "in");
  auto d1 = nn::Dense(3, "relu");
  auto out = nn::Dense(2)(d1(in));
  nn::Model m(in, out, "m");
  return json::parse(m->to_json());
}

// A user layer: x * factor, with its factor in the config.
class ScaleImpl : public nn::Layer {
 public:
  explicit ScaleImpl(double factor, std::string name = {}) : Layer(std::move(name)), factor_(factor) {}
  Tensor call(const Tensor& x, bool) override { return x * scalar<float>(float(factor_)); }
  std::pair<Shape, DType> compute_output_type(const Shape& s, DType d) override { return {s, d}; }
  json get_config() const override {
    json c = Layer::get_config();
    c["factor"] = factor_;
    return c;
  }

 private:
  double factor_;
};
KILN_MODULE(Scale);

}  // namespace

TEST_CASE("a Sequential model round-trips through JSON in Keras' layout", "[nn][serialization]") {
  nn::clear_session();
  random::set_seed(1);
  nn::Sequential model(
      {nn::InputLayer(Shape{6}),
       nn::Dense(
           8, nn::DenseOptions{.activation = "relu", .use_bias = false, .kernel_initializer = nn::init::he_normal(7)}),
       nn::BatchNormalization(0.9, nn::NormalizationOptions{.epsilon = 1e-2, .center = false}), nn::Dropout(0.25, 3),
       nn::LayerNormalization(), nn::Dense(3, "softmax")},
      "seq");
  // move the moving statistics and weights away from their initial values
  model->compile({.optimizer = "adam", .loss = "mse"});
  model->fit(random::normal({40, 6}, 2), random::normal({40, 3}, 3), {.epochs = 2, .batch_size = 16, .verbose = 0});
  json j = json::parse(model->to_json());
  CHECK(j["class_name"] == "Sequential");
  CHECK(j["config"]["name"] == "seq");
  const json& layers = j["config"]["layers"];
  REQUIRE(layers.size() == 6);
  CHECK(layers[0]["class_name"] == "InputLayer");
  CHECK(layers[0]["config"]["batch_input_shape"] == json::array({nullptr, 6}));
  CHECK(layers[1]["class_name"] == "Dense");
  CHECK(layers[1]["config"]["units"] == 8);
  CHECK(layers[1]["config"]["activation"] == "relu");
  CHECK(layers[1]["config"]["use_bias"] == false);
  CHECK(layers[1]["config"]["kernel_initializer"] == json{{"class_name", "HeNormal"}, {"config", {{"seed", 7}}}});
  CHECK(layers[2]["config"]["momentum"] == 0.9);
  CHECK(layers[2]["config"]["center"] == false);
  CHECK(layers[3]["config"]["rate"] == 0.25);
  CHECK(layers[3]["config"]["seed"] == 3);
  CHECK(layers[5]["config"]["trainable"] == true);
  CHECK_FALSE(j["config"].contains("build_input_shape"));
  nn::Model back = round_trip(model, random::normal({5, 6}, 4));
  CHECK(back->name() == "seq");
  CHECK(back->type_name() == "Sequential");
  CHECK(std::dynamic_pointer_cast<nn::SequentialImpl>(back.ptr()) != nullptr);
}

TEST_CASE("a Sequential built by a call records its input shape; an unbuilt one stays unbuilt", "[nn][serialization]") {
  nn::clear_session();
  nn::Sequential model({nn::Flatten(), nn::Dense(4, "tanh")});
  nn::Sequential unbuilt({nn::Dense(2)});
  nn::Model u = nn::model_from_json(unbuilt->to_json());
  CHECK_FALSE(u->built());
  model(ones({2, 3, 5}));
  json j = json::parse(model->to_json());
  CHECK(j["config"]["build_input_shape"] == json::array({nullptr, 3, 5}));
  round_trip(model, random::normal({3, 3, 5}, 1));
}

TEST_CASE("a functional model round-trips: shared layers, nested models, images and ids", "[nn][serialization]") {
  nn::clear_session();
  SECTION("convolutions and pooling with unknown spatial dims") {
    auto in = nn::Input({-1, -1, 2}, float32, "image");
    auto c = nn::Conv2D(4, nn::Size2(3, 2),
                        nn::Conv2DOptions{.strides = {1, 2}, .padding = "SAME", .activation = "relu"})(in);
    c = nn::MaxPooling2D(2, std::nullopt, "same")(c);
    c = nn::AveragePooling2D(nn::Size2(2, 1), nn::Size2(1), "valid")(c);
    c = nn::Conv2D(3, 1, nn::Conv2DOptions{.dilation_rate = 2})(c);
    nn::Model model(in, c, "convnet");
    json j = json::parse(model->to_json());
    CHECK(j["class_name"] == "Functional");
    CHECK(j["config"]["layers"][0]["config"]["batch_input_shape"] == json::array({nullptr, nullptr, nullptr, 2}));
    CHECK(j["config"]["layers"][1]["config"]["kernel_size"] == json::array({3, 2}));
    CHECK(j["config"]["layers"][1]["config"]["padding"] == "same");
    CHECK(j["config"]["layers"][1]["inbound_nodes"] == json::parse(R"([[["image", 0, 0, {}]]])"));
    round_trip(model, random::normal({2, 9, 8, 2}, 5));
  }
  SECTION("a shared layer and a nested Sequential") {
    auto in = nn::Input({5}, float32, "x");
    auto shared = nn::Dense(5, "tanh");
    auto inner = nn::Sequential({nn::InputLayer(Shape{5}), nn::Dense(6), nn::Dropout(0.5)}, "inner");
    auto h = shared(shared(in));
    auto out = nn::Dense(2)(inner(h));
    nn::Model model(in, out, "shared_model");
    json j = json::parse(model->to_json());
    // the shared layer's second node reads its own first one
    const json& s = j["config"]["layers"][1];
    CHECK(s["inbound_nodes"].size() == 2);
    CHECK(s["inbound_nodes"][1][0][0] == s["name"]);
    CHECK(s["inbound_nodes"][1][0][1] == 0);
    nn::Model back = round_trip(model, random::normal({4, 5}, 6));
    CHECK(back->layers().size() == model->layers().size());
  }
  SECTION("integer ids through an Embedding, a frozen layer") {
    auto in = nn::Input({7}, int32, "ids");
    auto emb = nn::Embedding(20, 4, nn::init::random_uniform(-0.1, 0.2, 9));
    emb->set_trainable(false);
    auto out = nn::Dense(1)(nn::Flatten()(emb(in)));
    nn::Model model(in, out);
    json j = json::parse(model->to_json());
    CHECK(j["config"]["layers"][0]["config"]["dtype"] == "int32");
    CHECK(j["config"]["layers"][1]["config"]["trainable"] == false);
    CHECK(j["config"]["layers"][1]["config"]["embeddings_initializer"] ==
          json::parse(R"({"class_name": "RandomUniform", "config": {"minval": -0.1, "maxval": 0.2, "seed": 9}})"));
    nn::Model back = round_trip(model, cast(random::uniform({3, 7}, 1, 0, 20), int32));
    CHECK(back->trainable_variables().size() == model->trainable_variables().size());
  }
  SECTION("a list in another order still builds") {
    json j = functional_json();
    json& layers = j["config"]["layers"];
    std::reverse(layers.begin(), layers.end());
    nn::Model back = nn::model_from_json(j.dump());
    CHECK(back->layers().size() == 3);
  }
}

TEST_CASE("weights copy through a checkpoint into a model rebuilt from JSON", "[nn][serialization][checkpoint]") {
  nn::clear_session();
  auto in = nn::Input({3});
  nn::Model model(in, nn::Dense(2, "sigmoid")(nn::Dense(4)(in)));
  const std::string path = "/tmp/kiln_test_serialization.ckpt";
  nn::Checkpoint({{"model", model}}).write(path);
  nn::Model back = nn::model_from_json(model->to_json());
  nn::Checkpoint({{"model", back}}).read(path).assert_consumed();
  Tensor x = random::normal({4, 3}, 2);
  CHECK(reduce_max(abs(model(x) - back(x))).item<float>() == 0.0f);
}

TEST_CASE("set_weights checks counts, dtypes and shapes before assigning", "[nn][serialization]") {
  nn::Dense d(2);
  d(ones({1, 3}));
  std::vector<Tensor> w = d->get_weights();
  REQUIRE(w.size() == 2);
  CHECK_THROWS_WITH(d->set_weights({w[0]}), Contains("got 1 values for the 2 weights"));
  CHECK_THROWS_WITH(d->set_weights({w[0], zeros({3})}), Contains("shape (3,)"));
  CHECK_THROWS_WITH(d->set_weights({w[0], zeros({2}, float64)}), Contains("float64"));
  d->set_weights({zeros({3, 2}), ones({2})});
  CHECK(d(ones({1, 3})).to_vector<float>() == std::vector<float>{1, 1});
}

TEST_CASE("initializers serialize with Keras' names and arguments", "[nn][serialization]") {
  using nn::init::get;
  for (const nn::Initializer& i :
       {nn::init::zeros(), nn::init::ones(), nn::init::constant(0.5), nn::init::random_normal(1, 2, 3),
        nn::init::random_uniform(-1, 1), nn::init::glorot_uniform(4), nn::init::glorot_normal(), nn::init::he_normal(),
        nn::init::he_uniform(5)}) {
    json j = nn::serialize_initializer(i);
    nn::Initializer back = nn::deserialize_initializer(j);
    CHECK(back.name == i.name);
    CHECK(back.args == i.args);
    CHECK(back.seed == i.seed);
    CHECK(nn::serialize_initializer(back) == j);
  }
  CHECK(nn::deserialize_initializer("glorot_uniform").name == "glorot_uniform");
  CHECK(nn::deserialize_initializer(json{{"class_name", "Constant"}, {"config", {{"value", 2}}}})({2})
            .to_vector<float>() == std::vector<float>{2, 2});
  CHECK_THROWS_WITH(nn::deserialize_initializer("orthogonal"), Contains("unknown initializer 'orthogonal'"));
  CHECK_THROWS_AS(nn::deserialize_initializer(json{{"class_name", "RandomNormal"}, {"config", {{"stddev", -1}}}}),
                  InvalidArgument);
  CHECK_THROWS_AS(nn::deserialize_initializer(json{{"class_name", "HeNormal"}, {"config", {{"seed", -1}}}}),
                  InvalidArgument);
  CHECK_THROWS_AS(nn::deserialize_initializer(3), InvalidArgument);
}

TEST_CASE("custom layers: registered by name, rebuilt from their config", "[nn][serialization]") {
  nn::clear_session();
  auto in = nn::Input({2});
  nn::Model model(in, nn::Dense(2)(Scale(3.0)(in)));
  const std::string text = model->to_json();
  CHECK_THROWS_WITH(nn::model_from_json(text),
                    Contains("unknown layer class 'Scale'") && Contains("nn::register_layer") && Contains("Dense"));
  nn::register_layer(
      "Scale", [](const nn::ConfigReader& c) { return std::make_shared<ScaleImpl>(c.number("factor"), c.name()); });
  CHECK(nn::is_layer_registered("Scale"));
  CHECK_THROWS_WITH(nn::register_layer("Scale", [](const nn::ConfigReader&) { return nullptr; }),
                    Contains("already registered"));
  CHECK_THROWS_AS(nn::register_layer("Dense", [](const nn::ConfigReader&) { return nullptr; }), InvalidArgument);
  CHECK_THROWS_AS(nn::register_layer("", [](const nn::ConfigReader&) { return nullptr; }), InvalidArgument);
  round_trip(model, random::normal({3, 2}, 1));
  json bad = json::parse(text);
  bad["config"]["layers"][1]["config"]["factor"] = "three";
  check_error(bad.dump(), "[Scale] config field 'factor' must be a number, got string");
}

TEST_CASE("a model subclass has no config unless it provides one", "[nn][serialization][errors]") {
  struct Sub : nn::ModelImpl {
    Tensor call(const Tensor& x, bool) override { return x; }
  };
  auto m = std::make_shared<Sub>();
  CHECK_THROWS_AS(m->to_json(), Unimplemented);
  CHECK_THROWS_WITH(m->to_json(), Contains("get_config"));
}

TEST_CASE("hostile model JSON gives typed errors", "[nn][serialization][errors]") {
  const json good = functional_json();
  auto with = [&](auto&& edit) {
    json j = good;
    edit(j);
    return j.dump();
  };
  check_error("", "not JSON");
  check_error("{\"class_name\": ", "not JSON");
  check_error("[]", "a layer is a JSON object");
  check_error("{}", "'class_name'");
  check_error(R"({"class_name": 7, "config": {}})", "'class_name'");
  check_error(R"({"class_name": "Dense"})", "no 'config'");
  check_error(R"({"class_name": "Transformer", "config": {}})", "unknown layer class 'Transformer'");
  check_error(R"({"class_name": "Dense", "config": {"units": 3}})", "describes a Dense layer, not a model");
  check_error(R"({"class_name": "Dense", "config": []})", "[Dense] the config must be a JSON object");
  check_error(R"({"class_name": "Sequential", "config": {"layers": 3}})", "'layers' must be a list");
  check_error(R"({"class_name": "Sequential", "config": {}})", "'layers' is missing");
  auto layer = [&](const std::string& cls, const std::string& cfg) {
    return R"({"class_name": "Sequential", "config": {"layers": [{"class_name": ")" + cls + R"(", "config": )" + cfg +
           "}]}}";
  };
  check_error(layer("Dense", "{}"), "[Dense] config field 'units' is missing");
  check_error(layer("Dense", R"({"units": -3})"), "units must be positive, got -3");
  check_error(layer("Dense", R"({"units": "3"})"), "'units' must be an integer, got string");
  check_error(layer("Dense", R"({"units": 3.5})"), "'units' must be an integer, got number");
  check_error(layer("Dense", R"({"units": 18446744073709551615})"), "too large for int64");
  check_error(layer("Dense", R"({"units": 3, "activation": "gelu2"})"), "'activation' is not an activation");
  check_error(layer("Dense", R"({"units": 3, "activation": 1})"), "'activation' must be a string");
  check_error(layer("Dense", R"({"units": 3, "use_bias": "yes"})"), "'use_bias' must be true or false");
  check_error(layer("Dense", R"({"units": 3, "kernel_initializer": "magic"})"), "unknown initializer 'magic'");
  check_error(layer("Dense", R"({"units": 3, "trainable": 0})"), "'trainable' must be true or false");
  check_error(layer("Dense", R"({"units": 3, "name": "a/b"})"), "a/b");
  check_error(layer("Dropout", R"({"rate": 1.5})"), "rate must be in [0, 1)");
  check_error(layer("Dropout", R"({"rate": 0.5, "seed": -2})"), "'seed' must be a non-negative integer");
  check_error(layer("Conv2D", R"({"filters": 2, "kernel_size": [3]})"), "list of two integers, got 1");
  check_error(layer("Conv2D", R"({"filters": 2, "kernel_size": 3, "padding": "full"})"), "padding must be");
  check_error(layer("Conv2D", R"({"filters": 2, "kernel_size": 0})"), "kernel_size must be positive");
  check_error(layer("Conv2D", R"({"filters": 2, "kernel_size": 3, "data_format": "channels_first"})"), "channels_last");
  check_error(layer("MaxPooling2D", R"({"pool_size": [2, -1]})"), "pool_size must be positive");
  check_error(layer("BatchNormalization", R"({"momentum": 2})"), "momentum must be in [0, 1]");
  check_error(layer("LayerNormalization", R"({"epsilon": -1})"), "epsilon must be finite and >= 0");
  check_error(layer("LayerNormalization", R"({"axis": [1, 2]})"), "must be one axis");
  check_error(layer("Embedding", R"({"input_dim": 0, "output_dim": 2})"), "input_dim and output_dim must be positive");
  check_error(layer("InputLayer", R"({"batch_input_shape": [null, -2]})"), "integers >= 0 or null");
  check_error(layer("InputLayer", R"({"batch_input_shape": []})"), "needs a batch dim");
  check_error(layer("InputLayer", R"({"batch_input_shape": [null, 2], "dtype": "float128"})"), "names no dtype");
  check_error(layer("InputLayer", R"({"batch_input_shape": [null, 4611686018427387904, 4]})"), "more elements");
  // weights past the budget are refused before anything is allocated
  check_error(R"({"class_name": "Sequential", "config": {"layers": [
      {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 1048576]}},
      {"class_name": "Dense", "config": {"units": 1048576}}]}})",
              "past the limit");
  CHECK_THROWS_WITH(nn::model_from_json(good.dump(), {.max_weight_elements = 20}), Contains("past the limit of 20"));
  // a Sequential whose InputLayer comes second, or two layers of one name
  check_error(R"({"class_name": "Sequential", "config": {"layers": [
      {"class_name": "Dense", "config": {"units": 2}},
      {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 4]}}]}})",
              "an InputLayer can only be the first layer");
  check_error(R"({"class_name": "Sequential", "config": {"layers": [
      {"class_name": "Dense", "config": {"units": 2, "name": "d"}},
      {"class_name": "Dense", "config": {"units": 2, "name": "d"}}]}})",
              "d");
  check_error(R"({"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": {"units": 2}}],
      "build_input_shape": [null, 3, -1]}})",
              "'build_input_shape'");
  // JSON nested a hundred thousand deep parses and is refused without recursion
  check_error(layer("Dense", R"({"units": )" + std::string(100000, '[') + std::string(100000, ']') + "}"),
              "'units' must be an integer, got array");
  // models nested past the depth limit
  std::string deep = R"({"class_name": "Dense", "config": {"units": 1}})";
  for (int i = 0; i < 40; ++i) deep = R"({"class_name": "Sequential", "config": {"layers": [)" + deep + "]}}";
  check_error(deep, "nested more than 32 deep");
  // functional graphs that do not hold together
  check_error(with([](json& j) { j["config"]["layers"][2]["inbound_nodes"][0][0][0] = "nowhere"; }),
              "reads the unknown layer 'nowhere'");
  check_error(with([](json& j) { j["config"]["layers"][2]["inbound_nodes"][0][0][1] = 5; }),
              "which the config never makes");
  check_error(
      with([](json& j) { j["config"]["layers"][1]["inbound_nodes"][0][0][0] = j["config"]["layers"][2]["name"]; }),
      "which the config never makes");
  check_error(with([](json& j) { j["config"]["layers"][2]["inbound_nodes"][0][0][2] = 1; }), "one output");
  check_error(with([](json& j) { j["config"]["layers"][2]["inbound_nodes"][0][0][1] = -1; }), "negative node index");
  check_error(with([](json& j) { j["config"]["layers"][2]["inbound_nodes"][0] = json::array(); }),
              "one input tensor per node");
  check_error(with([](json& j) { j["config"]["layers"][2]["inbound_nodes"] = "x"; }), "must be a list");
  check_error(
      with([](json& j) { j["config"]["layers"][0]["inbound_nodes"] = j["config"]["layers"][2]["inbound_nodes"]; }),
      "must be empty for an InputLayer");
  check_error(with([](json& j) { j["config"]["layers"][2]["name"] = j["config"]["layers"][1]["name"]; }),
              "two layers named");
  check_error(with([](json& j) { j["config"]["input_layers"] = json::array(); }), "must name one tensor");
  check_error(with([](json& j) { j["config"]["input_layers"][0][0] = j["config"]["layers"][1]["name"]; }),
              "must name an InputLayer");
  check_error(with([](json& j) { j["config"]["output_layers"][0][1] = 3; }), "does not exist");
  check_error(with([](json& j) { j["config"].erase("output_layers"); }), "'output_layers' is missing");
  check_error(with([](json& j) {
                j["config"]["layers"].push_back(
                    json::parse(R"({"class_name": "Dense", "config": {"units": 1, "name": "extra"}, "name": "extra",
                                    "inbound_nodes": []})"));
              }),
              "lists 'extra', which the outputs do not use");
  check_error(with([](json& j) { j["config"]["layers"][2]["config"]["units"] = nullptr; }), "'units' is missing");
}

TEST_CASE("randomly damaged model JSON throws typed errors or loads", "[nn][serialization][errors]") {
  nn::clear_session();
  auto in = nn::Input({8, 8, 1}, float32, "img");
  auto h = nn::MaxPooling2D(2)(nn::Conv2D(2, 3, "relu")(in));
  h = nn::AveragePooling2D(1)(nn::Conv2D(1, 1, nn::Conv2DOptions{.padding = "same"})(h));
  h = nn::Dropout(0.1)(nn::BatchNormalization()(nn::Dense(4)(nn::Flatten()(h))));
  nn::Model model(in, nn::Dense(3)(nn::LayerNormalization()(h)), "victim");
  const std::string text = model->to_json();
  const json replacements[] = {nullptr,
                               -1,
                               0,
                               1,
                               1e300,
                               -1e300,
                               0.5,
                               "",
                               "x",
                               true,
                               json::array(),
                               json::object(),
                               json::array({-1, -1}),
                               int64_t{1} << 40,
                               std::numeric_limits<uint64_t>::max()};
  std::mt19937 rng(7);
  int loaded = 0, rejected = 0;
  for (int trial = 0; trial < 400; ++trial) {
    json j = json::parse(text);
    // replace one random value somewhere in the tree
    std::vector<json*> nodes;
    std::vector<json*> stack{&j};
    while (!stack.empty()) {
      json* n = stack.back();
      stack.pop_back();
      nodes.push_back(n);
      if (n->is_structured())
        for (auto& child : *n) stack.push_back(&child);
    }
    *nodes[std::uniform_int_distribution<size_t>(1, nodes.size() - 1)(rng)] =
        replacements[std::uniform_int_distribution<size_t>(0, std::size(replacements) - 1)(rng)];
    try {
      nn::Model m = nn::model_from_json(j.dump(), {.max_weight_elements = 1 << 20});
      // what loads writes canonical JSON: it loads into the same JSON and summary
      const std::string again = m->to_json();
      nn::Model copy = nn::model_from_json(again);
      CHECK(copy->to_json() == again);
      if (m->built()) CHECK(copy->summary_string() == m->summary_string());
      ++loaded;
    } catch (const InvalidArgument&) {
      ++rejected;
    }
  }
  CHECK(loaded + rejected == 400);
  CHECK(rejected > 0);
}
