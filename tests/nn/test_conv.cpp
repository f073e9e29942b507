// Convolution and pooling: ops against values computed by hand, output shapes for SAME/VALID
// padding, strides and dilations, oneDNN's float32 path against the float64 reference loops,
// traced results against eager ones, and the Conv2D / MaxPooling2D / AveragePooling2D layers
// (builds, shapes in summary(), bad configuration and input, a small CNN trained with fit).
#include <catch2/catch.hpp>

#include <kiln/kiln.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "compiler/ir/parser.h"

using namespace kiln;
using Catch::Matchers::Contains;

namespace {

// The 3x3 image 1..9 as [1, 3, 3, 1].
Tensor image3() { return reshape(cast(range(1, 10), float32), {1, 3, 3, 1}); }

// The 4x4 image 1..16 as [1, 4, 4, 1].
Tensor image4() { return reshape(cast(range(1, 17), float32), {1, 4, 4, 1}); }

std::vector<float> values(const Tensor& t) { return cast(t, float32).to_vector<float>(); }

// Largest |a - b| / (1 + |b|) over the elements (b the float64 reference).
double max_rel_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  std::vector<double> x = cast(a, float64).to_vector<double>(), y = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]) / (1 + std::abs(y[i])));
  return m;
}

}  // namespace

TEST_CASE("conv2d of a 3x3 image with 3x3 filters, computed by hand", "[nn][conv]") {
  // channel 0: all ones (box sums); channel 1: only the centre tap (the image itself)
  std::vector<float> f(3 * 3 * 1 * 2, 0.0f);
  for (int t = 0; t < 9; ++t) f[size_t(t * 2)] = 1.0f;
  f[4 * 2 + 1] = 1.0f;
  Tensor filter = constant(f, {3, 3, 1, 2});

  Tensor same = conv2d(image3(), filter, {1}, "SAME");
  REQUIRE(same.shape() == Shape{1, 3, 3, 2});
  CHECK(values(same) == std::vector<float>{12, 1, 21, 2, 16, 3, 27, 4, 45, 5, 33, 6, 24, 7, 39, 8, 28, 9});

  Tensor valid = conv2d(image3(), filter, {1}, "VALID");
  REQUIRE(valid.shape() == Shape{1, 1, 1, 2});
  CHECK(values(valid) == std::vector<float>{45, 5});

  // stride 2 with SAME padding keeps the corners: outputs at (0, 0), (0, 2), (2, 0), (2, 2)
  Tensor strided = conv2d(image3(), filter, {2}, "SAME");
  REQUIRE(strided.shape() == Shape{1, 2, 2, 2});
  CHECK(values(strided) == std::vector<float>{12, 1, 16, 3, 24, 7, 28, 9});

  // float64 and float16 take the reference loops and give the same exact sums
  CHECK(values(conv2d(cast(image3(), float64), cast(filter, float64), {1}, "SAME")) == values(same));
  CHECK(values(conv2d(cast(image3(), float16), cast(filter, float16), {1}, "SAME")) == values(same));

  // dilation 2 on a 5x5 image: the 3x3 filter's taps are two apart, so VALID sees the corners
  // and the centre
  Tensor x5 = reshape(cast(range(0, 25), float32), {1, 5, 5, 1});
  Tensor d = conv2d(x5, reshape(filter, {3, 3, 1, 2}), {1}, "VALID", {2});
  REQUIRE(d.shape() == Shape{1, 1, 1, 2});
  CHECK(values(d) == std::vector<float>{0 + 2 + 4 + 10 + 12 + 14 + 20 + 22 + 24, 12});
}

TEST_CASE("conv2d output shapes for SAME and VALID padding, strides and dilations", "[nn][conv]") {
  Tensor x = zeros({2, 7, 6, 3}), f = zeros({3, 3, 3, 4});
  CHECK(conv2d(x, f, {1}, "SAME").shape() == Shape{2, 7, 6, 4});
  CHECK(conv2d(x, f, {1}, "VALID").shape() == Shape{2, 5, 4, 4});
  CHECK(conv2d(x, f, {2}, "SAME").shape() == Shape{2, 4, 3, 4});
  CHECK(conv2d(x, f, {2}, "VALID").shape() == Shape{2, 3, 2, 4});
  CHECK(conv2d(x, f, {1, 2, 3, 1}, "VALID").shape() == Shape{2, 3, 2, 4});
  CHECK(conv2d(x, f, {1}, "VALID", {2}).shape() == Shape{2, 3, 2, 4});
  CHECK(conv2d(x, f, {1}, "SAME", {3, 2}).shape() == Shape{2, 7, 6, 4});
  CHECK(conv2d(zeros({0, 7, 6, 3}), f, {1}, "SAME").shape() == Shape{0, 7, 6, 4});
  CHECK_THROWS_WITH(conv2d(zeros({1, 2, 2, 3}), f, {1}, "VALID"), Contains("[conv2d]") && Contains("window height"));
  CHECK_THROWS_WITH(conv2d(x, zeros({3, 3, 2, 4})), Contains("in_channels"));
}

TEST_CASE("max and average pooling values, computed by hand", "[nn][conv]") {
  CHECK(values(max_pool2d(image4(), {2}, {2})) == std::vector<float>{6, 8, 14, 16});
  CHECK(values(avg_pool2d(image4(), {2}, {2})) == std::vector<float>{3.5, 5.5, 11.5, 13.5});
  // SAME, 3x3 windows, stride 2 on 4x4: one row and column of padding after, never counted
  Tensor m = max_pool2d(image4(), {3}, {2}, "SAME");
  REQUIRE(m.shape() == Shape{1, 2, 2, 1});
  CHECK(values(m) == std::vector<float>{11, 12, 15, 16});
  Tensor a = avg_pool2d(image4(), {3}, {2}, "SAME");
  CHECK(values(a) == std::vector<float>{6, 7.5, 12, 13.5});
  // stride 1 SAME keeps the size; the corner's window holds 1, 2, 5, 6
  Tensor a1 = avg_pool2d(image4(), {3}, {1}, "SAME");
  REQUIRE(a1.shape() == Shape{1, 4, 4, 1});
  CHECK(values(a1)[0] == 3.5f);
  // integer max pooling, and NaN wins a window
  CHECK(max_pool2d(cast(image4(), int32), {2}, {2}).to_vector<int32_t>() == std::vector<int32_t>{6, 8, 14, 16});
  Tensor with_nan = reshape(constant({1.0f, NAN, 3.0f, 2.0f}), {1, 2, 2, 1});
  CHECK(std::isnan(max_pool2d(with_nan, {2}, {2}).to_vector<float>()[0]));
  // gradients: max sends the gradient to the maximum, average spreads it evenly
  CHECK(values(max_pool2d_grad(image4(), ones({1, 2, 2, 1}), {2}, {2})) ==
        std::vector<float>{0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1});
  CHECK(values(avg_pool2d_grad({1, 4, 4, 1}, ones({1, 2, 2, 1}), {2}, {2})) == std::vector<float>(16, 0.25f));
}

TEST_CASE("float32 convolutions (oneDNN when built with it) agree with the float64 reference loops", "[nn][conv]") {
  struct G {
    Shape x, f;
    std::vector<int64_t> s, d;
    std::string p;
  };
  uint64_t seed = 40;
  for (const G& g : std::vector<G>{{{2, 9, 8, 3}, {3, 3, 3, 5}, {1}, {1}, "SAME"},
                                   {{1, 12, 10, 4}, {3, 2, 4, 6}, {2}, {1}, "SAME"},
                                   {{3, 11, 11, 2}, {5, 5, 2, 3}, {2, 3}, {1}, "VALID"},
                                   {{1, 10, 9, 3}, {3, 3, 3, 2}, {1}, {2, 3}, "SAME"},
                                   {{2, 16, 16, 8}, {1, 1, 8, 16}, {1}, {1}, "VALID"}}) {
    INFO("input " << g.x << ", filter " << g.f << ", " << g.p);
    Tensor x = random::uniform(g.x, seed++, -1, 1, float64), f = random::uniform(g.f, seed++, -1, 1, float64);
    Tensor y64 = conv2d(x, f, g.s, g.p, g.d);
    Tensor y32 = conv2d(cast(x, float32), cast(f, float32), g.s, g.p, g.d);
    CHECK(max_rel_diff(y32, y64) < 1e-5);
    Tensor dy = random::uniform(y64.shape(), seed++, -1, 1, float64);
    Tensor dx64 = conv2d_backprop_input(g.x, f, dy, g.s, g.p, g.d);
    Tensor dx32 = conv2d_backprop_input(g.x, cast(f, float32), cast(dy, float32), g.s, g.p, g.d);
    CHECK(max_rel_diff(dx32, dx64) < 1e-5);
    Tensor df64 = conv2d_backprop_filter(x, g.f, dy, g.s, g.p, g.d);
    Tensor df32 = conv2d_backprop_filter(cast(x, float32), g.f, cast(dy, float32), g.s, g.p, g.d);
    CHECK(max_rel_diff(df32, df64) < 1e-5);
  }
}

// Seeded random geometries, extreme attribute values included: each call either throws
// InvalidArgument or runs, and where it runs float32 agrees with the float64 reference loops
// (under the sanitizers this also checks that no window reads or writes out of bounds).
TEST_CASE("random geometries run or fail cleanly, and float32 agrees with float64", "[nn][conv]") {
  std::mt19937_64 rng(2024);
  const int64_t big = std::numeric_limits<int64_t>::max();
  const std::vector<int64_t> attr_values = {1, 1, 1, 2, 2, 3, 5, 0, -1, big, big / 2, int64_t{1} << 62};
  auto pick = [&](const std::vector<int64_t>& from) { return from[rng() % from.size()]; };
  auto dim = [&](int64_t hi) { return int64_t(rng() % uint64_t(hi + 1)); };
  auto pair = [&] { return std::vector<int64_t>{pick(attr_values), pick(attr_values)}; };
  int ran = 0, rejected = 0;
  uint64_t seed = 500;
  for (int iter = 0; iter < 400; ++iter) {
    const Shape xs{dim(2), dim(7), dim(7), dim(3)};
    const Shape fs{1 + dim(3), 1 + dim(3), xs.dim(3), dim(3)};
    const std::string padding = rng() % 2 ? "SAME" : "VALID";
    const std::vector<int64_t> s = pair(), d = pair(), k = pair();
    INFO("input " << xs << ", filter " << fs << ", strides " << Shape(s) << ", dilations " << Shape(d) << ", ksize "
                  << Shape(k) << ", " << padding);
    Tensor x = random::uniform(xs, seed++, -1, 1, float64), f = random::uniform(fs, seed++, -1, 1, float64);
    try {
      Tensor y = conv2d(x, f, s, padding, d);
      CHECK(max_rel_diff(conv2d(cast(x, float32), cast(f, float32), s, padding, d), y) < 1e-5);
      Tensor dy = random::uniform(y.shape(), seed++, -1, 1, float64);
      Tensor dx = conv2d_backprop_input(xs, f, dy, s, padding, d);
      CHECK(max_rel_diff(conv2d_backprop_input(xs, cast(f, float32), cast(dy, float32), s, padding, d), dx) < 1e-5);
      Tensor df = conv2d_backprop_filter(x, fs, dy, s, padding, d);
      CHECK(max_rel_diff(conv2d_backprop_filter(cast(x, float32), fs, cast(dy, float32), s, padding, d), df) < 1e-5);
      ++ran;
    } catch (const InvalidArgument&) {
      ++rejected;
    }
    try {
      Tensor m = max_pool2d(x, k, s, padding), a = avg_pool2d(x, k, s, padding);
      CHECK(max_rel_diff(max_pool2d(cast(x, float32), k, s, padding), m) < 1e-6);
      CHECK(max_rel_diff(avg_pool2d(cast(x, float32), k, s, padding), a) < 1e-6);
      Tensor g = random::uniform(m.shape(), seed++, -1, 1, float64);
      CHECK(max_pool2d_grad(x, g, k, s, padding).shape() == xs);
      CHECK(max_pool2d_grad_grad(x, x, k, s, padding).shape() == m.shape());
      CHECK(avg_pool2d_grad(xs, g, k, s, padding).shape() == xs);
      ++ran;
    } catch (const InvalidArgument&) {
      ++rejected;
    }
  }
  CHECK(ran > 100);
  CHECK(rejected > 100);
}

TEST_CASE("traced convolution, pooling and their gradients equal the eager results", "[nn][conv][function]") {
  auto step = [](Tensor x, Tensor f) {
    GradientTape tape;
    tape.watch(x);
    tape.watch(f);
    Tensor h = relu(conv2d(x, f, {1}, "SAME"));
    Tensor y = reduce_sum(square(avg_pool2d(max_pool2d(h, {2}, {1}, "SAME"), {2}, {2})));
    std::vector<Tensor> g = tape.gradient(y, {Source(x), Source(f)});
    return std::vector<Tensor>{y, g[0], g[1]};
  };
  Tensor x = random::uniform({2, 6, 6, 3}, 5, -1, 1), f = random::uniform({3, 3, 3, 4}, 6, -1, 1);
  std::vector<Tensor> eager = step(x, f);
  // compiled code sums in its own order: equal to the Approx tier (float32 1e-6 relative, and
  // a little more for the loss, a sum over 144 products)
  auto near = [](const Tensor& a, const Tensor& b) {
    return reduce_max(abs(a - b) / (abs(b) + 1.0f)).item<float>() <= 1e-5f;
  };
  auto traced = function(step);
  std::vector<Tensor> graph = traced(x, f);
  REQUIRE(graph.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    INFO("output " << i);
    CHECK(graph[i].shape() == eager[i].shape());
    CHECK(near(graph[i], eager[i]));
  }
  // the graph holds the forward and gradient ops, and its text form parses back
  const std::string text = traced.concrete_functions().at(0).graph().to_string();
  CHECK_THAT(text, Contains("conv2d_backprop_filter(") && Contains("max_pool2d_grad(") && Contains("\"SAME\""));
  CHECK(ir::parse_graph(text)->to_string() == text);
  // an unknown batch dim: the gradient ops take it from their operands when the graph runs
  auto poly = function(step, {.input_signature = std::vector<TensorSpec>{TensorSpec({-1, 6, 6, 3}, float32, "x"),
                                                                         TensorSpec({3, 3, 3, 4}, float32, "f")}});
  std::vector<Tensor> unknown = poly(x, f);
  for (size_t i = 0; i < 3; ++i) CHECK(near(unknown[i], eager[i]));
}

TEST_CASE("Conv2D builds its weights from the input and checks later inputs", "[nn][conv][layers]") {
  nn::clear_session();
  nn::Conv2D conv(4, 3, nn::Conv2DOptions{.padding = "same", .activation = "relu"});
  Tensor y = conv(ones({2, 8, 8, 3}));
  CHECK(y.shape() == Shape{2, 8, 8, 4});
  CHECK(conv->name() == "conv2d");
  CHECK(conv->kernel().shape() == Shape{3, 3, 3, 4});
  CHECK(conv->bias().shape() == Shape{4});
  CHECK(conv->count_params() == 3 * 3 * 3 * 4 + 4);
  CHECK(reduce_min(y).item<float>() >= 0.0f);  // relu
  // another spatial size is fine; other channels or ranks are not
  CHECK(conv(ones({1, 5, 6, 3})).shape() == Shape{1, 5, 6, 4});
  CHECK_THROWS_WITH(conv(ones({2, 8, 8, 2})), Contains("incompatible with the layer") && Contains("(2, 8, 8, 2)"));
  CHECK_THROWS_WITH(conv(ones({8, 8, 3})), Contains("expected ndim=4"));

  // a known kernel and bias give known outputs: strides 2, "valid", no activation
  nn::Conv2D fixed(
      1, nn::Size2{2, 2},
      nn::Conv2DOptions{
          .strides = 2, .kernel_initializer = nn::init::ones(), .bias_initializer = nn::init::constant(0.5)});
  CHECK(values(fixed(image4())) == std::vector<float>{14.5, 22.5, 46.5, 54.5});
  // int inputs are cast to the kernel's float32
  CHECK(values(fixed(cast(image4(), int32))) == std::vector<float>{14.5, 22.5, 46.5, 54.5});
  nn::Conv2D no_bias(2, 1, nn::Conv2DOptions{.use_bias = false});
  no_bias(ones({1, 2, 2, 5}));
  CHECK_FALSE(no_bias->bias().defined());
  CHECK(no_bias->count_params() == 10);
}

TEST_CASE("pooling layers: values, default strides, shapes and bad input", "[nn][conv][layers]") {
  nn::clear_session();
  nn::MaxPooling2D mp;
  CHECK(mp->strides() == nn::Size2(2));
  CHECK(values(mp(image4())) == std::vector<float>{6, 8, 14, 16});
  CHECK(mp->name() == "max_pooling2d");
  nn::AveragePooling2D ap(3, 2, "same");
  CHECK(values(ap(image4())) == std::vector<float>{6, 7.5, 12, 13.5});
  CHECK(ap->padding() == "SAME");
  CHECK(ap->count_params() == 0);
  CHECK(nn::MaxPooling2D(nn::Size2{2, 1})(ones({3, 6, 5, 2})).shape() == Shape{3, 3, 5, 2});
  CHECK_THROWS_WITH(mp(ones({4, 4, 1})), Contains("expected ndim=4"));
  CHECK_THROWS_WITH(nn::MaxPooling2D()(ones({4, 4})), Contains("rank 4"));
  CHECK_THROWS_WITH(nn::AveragePooling2D(5)(ones({1, 4, 4, 1})), Contains("window height"));
}

TEST_CASE("conv and pooling layers reject bad configuration", "[nn][conv][layers][errors]") {
  CHECK_THROWS_WITH(nn::Conv2D(0, 3), Contains("filters must be positive"));
  CHECK_THROWS_WITH(nn::Conv2D(4, nn::Size2{3, 0}), Contains("kernel_size") && Contains("(3, 0)"));
  CHECK_THROWS_WITH(nn::Conv2D(4, 3, nn::Conv2DOptions{.strides = {1, -1}}), Contains("strides"));
  CHECK_THROWS_WITH(nn::Conv2D(4, 3, nn::Conv2DOptions{.padding = "full"}), Contains("\"full\""));
  CHECK_THROWS_WITH(nn::Conv2D(4, 3, nn::Conv2DOptions{.dilation_rate = int64_t{1} << 62}), Contains("overflows"));
  CHECK_THROWS_WITH(nn::Conv2D(4, 3, "swish"), Contains("swish"));
  CHECK_THROWS_WITH(nn::MaxPooling2D(0), Contains("pool_size"));
  CHECK_THROWS_WITH(nn::AveragePooling2D(2, 0), Contains("strides"));
  CHECK_THROWS_WITH(nn::MaxPooling2D(2, std::nullopt, "causal"), Contains("\"causal\""));
  // the channels must be known when the layer is built
  CHECK_THROWS_WITH(nn::Conv2D(4, 3)(nn::Input({8, 8, -1})), Contains("must be known"));
  // a "valid" kernel larger than the input
  CHECK_THROWS_WITH(nn::Conv2D(4, 5)(ones({1, 3, 3, 1})), Contains("[conv2d]") && Contains("window height"));
}

TEST_CASE("CNN layers in summary(): output shapes and parameter counts", "[nn][conv][model]") {
  nn::clear_session();
  auto model = nn::Sequential({nn::InputLayer(Shape{28, 28, 1}), nn::Conv2D(8, 3, "relu"), nn::MaxPooling2D(),
                               nn::Conv2D(16, 3, nn::Conv2DOptions{.strides = 2, .padding = "same"}),
                               nn::AveragePooling2D(2, 1, "same"), nn::Flatten(), nn::Dense(10)});
  const std::string s = model->summary_string();
  CHECK_THAT(s, Contains("conv2d (Conv2D)") && Contains("(None, 26, 26, 8)"));
  // long "name (type)" cells wrap, as Keras' do
  CHECK_THAT(s, Contains("max_pooling2d (MaxPooling2D") && Contains("(None, 13, 13, 8)"));
  CHECK_THAT(s, Contains("conv2d_1 (Conv2D)") && Contains("(None, 7, 7, 16)"));
  CHECK_THAT(s, Contains("average_pooling2d (AverageP") && Contains("(None, 7, 7, 16)         0"));
  CHECK_THAT(s, Contains("(None, 784)"));
  // (3 * 3 * 1 * 8 + 8) + (3 * 3 * 8 * 16 + 16) + (784 * 10 + 10)
  CHECK_THAT(s, Contains("Total params: 9,098"));
  CHECK(model(zeros({2, 28, 28, 1})).shape() == Shape{2, 10});

  // compute_output_shape agrees with what the layers give
  nn::Conv2D c(3, nn::Size2{3, 2}, nn::Conv2DOptions{.strides = {2, 1}, .dilation_rate = {1, 2}});
  Tensor y = c(ones({1, 9, 8, 2}));
  CHECK(c->compute_output_shape({-1, 9, 8, 2}) == Shape{-1, y.shape().dim(1), y.shape().dim(2), 3});
  CHECK(c->compute_output_shape({-1, -1, 8, 2}) == Shape{-1, -1, y.shape().dim(2), 3});
}

TEST_CASE("a small CNN trains with fit and lowers its loss", "[nn][conv][training]") {
  nn::clear_session();
  random::set_seed(11);
  // 8x8 images: class 0 has a bright horizontal bar, class 1 a vertical one, both over noise
  const int64_t n = 64;
  std::vector<float> pixels(static_cast<size_t>(n * 64));
  std::vector<int32_t> labels(static_cast<size_t>(n));
  std::vector<float> noise = random::uniform({n * 64}, 12, 0, 0.3).to_vector<float>();
  for (int64_t i = 0; i < n; ++i) {
    labels[size_t(i)] = int32_t(i % 2);
    const int64_t line = 1 + (i / 2) % 6;
    for (int64_t r = 0; r < 8; ++r)
      for (int64_t c = 0; c < 8; ++c) {
        const bool on = i % 2 == 0 ? r == line : c == line;
        pixels[size_t(i * 64 + r * 8 + c)] = (on ? 1.0f : 0.0f) + noise[size_t(i * 64 + r * 8 + c)];
      }
  }
  Tensor x = constant(pixels, {n, 8, 8, 1}), y = constant(labels, {n});
  auto model = nn::Sequential({nn::Conv2D(4, 3, nn::Conv2DOptions{.padding = "same", .activation = "relu"}),
                               nn::MaxPooling2D(), nn::Flatten(), nn::Dense(2)});
  model->compile({.optimizer = std::make_shared<nn::optim::Adam>(0.02),
                  .loss = nn::losses::SparseCategoricalCrossentropy(/*from_logits=*/true),
                  .metrics = {"accuracy"}});
  nn::History h = model->fit(x, y, {.epochs = 8, .batch_size = 16, .verbose = 0, .seed = 3});
  const std::vector<double>& loss = h.history.at("loss");
  REQUIRE(loss.size() == 8);
  CHECK(loss.back() < 0.5 * loss.front());
  CHECK(model->evaluate(x, y).at("accuracy") > 0.9);
}
