// Embedding, LayerNormalization and BatchNormalization: values against Keras' formulas computed
// by hand, gradients, moving statistics over training steps, parameter counts and bad input.
#include <catch2/catch.hpp>

#include <kiln/kiln.h>

#include <cmath>
#include <vector>

#include "autodiff/check.h"

using namespace kiln;
using Catch::Matchers::Contains;

namespace {

using Rows = std::vector<std::vector<double>>;

// Per-row mean and biased variance (LayerNormalization over the last axis).
Rows layer_norm_ref(const Rows& x, const std::vector<double>& gamma, const std::vector<double>& beta, double eps) {
  Rows out;
  for (auto& row : x) {
    double mean = 0, var = 0;
    for (double v : row) mean += v;
    mean /= double(row.size());
    for (double v : row) var += (v - mean) * (v - mean);
    var /= double(row.size());
    std::vector<double> y;
    for (size_t j = 0; j < row.size(); ++j) y.push_back((row[j] - mean) / std::sqrt(var + eps) * gamma[j] + beta[j]);
    out.push_back(y);
  }
  return out;
}

// Per-column mean and biased variance (BatchNormalization's batch statistics).
std::pair<std::vector<double>, std::vector<double>> column_moments(const Rows& x) {
  const size_t n = x.size(), f = x[0].size();
  std::vector<double> mean(f, 0), var(f, 0);
  for (auto& row : x)
    for (size_t j = 0; j < f; ++j) mean[j] += row[j] / double(n);
  for (auto& row : x)
    for (size_t j = 0; j < f; ++j) var[j] += (row[j] - mean[j]) * (row[j] - mean[j]) / double(n);
  return {mean, var};
}

Tensor to_tensor(const Rows& x, DType dtype = float32) {
  std::vector<NestedList> rows;
  for (auto& r : x) {
    std::vector<NestedList> items(r.begin(), r.end());
    rows.push_back(NestedList::list(items));
  }
  return constant(NestedList::list(rows), dtype);
}

void check_close(const Tensor& t, const Rows& ref, double margin = 1e-5) {
  REQUIRE(t.shape() == Shape{int64_t(ref.size()), int64_t(ref[0].size())});
  std::vector<double> got = cast(t, float64).to_vector<double>();
  for (size_t i = 0; i < ref.size(); ++i)
    for (size_t j = 0; j < ref[0].size(); ++j) {
      INFO("element [" << i << ", " << j << "]");
      CHECK(got[i * ref[0].size() + j] == Approx(ref[i][j]).margin(margin));
    }
}

void check_close(const Variable& v, const std::vector<double>& ref, double margin = 1e-5) {
  std::vector<float> got = v.to_vector<float>();
  REQUIRE(got.size() == ref.size());
  for (size_t j = 0; j < ref.size(); ++j) CHECK(got[j] == Approx(ref[j]).margin(margin));
}

}  // namespace

TEST_CASE("Embedding looks up rows for int32 and int64 ids", "[nn][layers]") {
  nn::Embedding emb(5, 3);
  CHECK_FALSE(emb->built());
  Tensor out = emb(constant({{0, 4}, {2, 2}}));
  CHECK(out.shape() == Shape{2, 2, 3});
  CHECK(emb->embeddings().shape() == Shape{5, 3});
  for (float v : emb->embeddings().to_vector<float>()) CHECK(std::abs(v) <= 0.05f);
  emb->embeddings().assign(constant({{0.0f, 1.0f, 2.0f},
                                     {10.0f, 11.0f, 12.0f},
                                     {20.0f, 21.0f, 22.0f},
                                     {30.0f, 31.0f, 32.0f},
                                     {40.0f, 41.0f, 42.0f}}));
  CHECK(emb(constant({{0, 4}, {2, 2}})).to_vector<float>() ==
        std::vector<float>{0, 1, 2, 40, 41, 42, 20, 21, 22, 20, 21, 22});
  Tensor ids64 = constant({3, 1}, int64);
  CHECK(emb(ids64).to_vector<float>() == std::vector<float>{30, 31, 32, 10, 11, 12});
  CHECK(emb->count_params() == 15);

  // the gradient of the table counts how often each row was looked up
  GradientTape tape;
  Tensor loss = reduce_sum(emb(constant({1, 3, 1})));
  Tensor g = tape.gradient(loss, emb->embeddings());
  CHECK(g.to_vector<float>() == std::vector<float>{0, 0, 0, 2, 2, 2, 0, 0, 0, 1, 1, 1, 0, 0, 0});
}

TEST_CASE("Embedding rejects bad ids and sizes", "[nn][layers][errors]") {
  CHECK_THROWS_AS(nn::Embedding(0, 3), InvalidArgument);
  CHECK_THROWS_WITH(nn::Embedding(4, -1), Contains("output_dim=-1"));
  nn::Embedding emb(4, 2);
  CHECK_THROWS_AS(emb(constant({0, 4})), InvalidArgument);
  CHECK_THROWS_WITH(emb(constant({0, 4})), Contains("4"));
  CHECK_THROWS_AS(emb(constant({-1})), InvalidArgument);
  CHECK_THROWS_WITH(emb(constant({0.0f, 1.0f})), Contains("int32 or int64") && Contains("float32"));
}

TEST_CASE("LayerNormalization normalizes each example over the last axis", "[nn][layers]") {
  Rows x = {{1, 2, 3, 4}, {-1, 0, 0, 5}, {2, 2, 2, 2}};
  nn::LayerNormalization ln;
  // fresh weights: gamma ones, beta zeros
  check_close(ln(to_tensor(x)), layer_norm_ref(x, {1, 1, 1, 1}, {0, 0, 0, 0}, 1e-3));
  CHECK(ln->gamma().to_vector<float>() == std::vector<float>{1, 1, 1, 1});
  CHECK(ln->beta().to_vector<float>() == std::vector<float>{0, 0, 0, 0});
  CHECK(ln->count_params() == 8);
  ln->gamma().assign(constant({0.5f, 1.0f, 2.0f, -1.0f}));
  ln->beta().assign(constant({0.0f, 1.0f, 0.0f, -1.0f}));
  std::vector<double> gamma{0.5, 1, 2, -1}, beta{0, 1, 0, -1};
  check_close(ln(to_tensor(x)), layer_norm_ref(x, gamma, beta, 1e-3));
  // training does not change LayerNormalization; float64 is computed in float64
  check_close(ln(to_tensor(x), true), layer_norm_ref(x, gamma, beta, 1e-3));
  Tensor y64 = ln(to_tensor(x, float64));
  CHECK(y64.dtype() == float64);
  check_close(y64, layer_norm_ref(x, gamma, beta, 1e-3), 1e-12);

  // epsilon, no center, no scale
  nn::LayerNormalization plain(nn::NormalizationOptions{.epsilon = 0.5, .center = false, .scale = false});
  check_close(plain(to_tensor(x)), layer_norm_ref(x, {1, 1, 1, 1}, {0, 0, 0, 0}, 0.5));
  CHECK(plain->variables().empty());
}

TEST_CASE("LayerNormalization over a middle axis", "[nn][layers]") {
  // [2, 3, 2] normalized over axis 1: each (example, last index) column of 3 values
  std::vector<float> v{1, 7, 2, -3, 6, 0, 4, 4, -2, 5, 9, 1};
  nn::LayerNormalization ln(nn::NormalizationOptions{.axis = 1});
  Tensor x = constant(v, Shape{2, 3, 2});
  ln(x);
  CHECK(ln->gamma().shape() == Shape{3});
  ln->gamma().assign(constant({1.0f, 2.0f, 3.0f}));
  ln->beta().assign(constant({0.0f, 0.5f, -0.5f}));
  std::vector<float> got = ln(x).to_vector<float>();
  for (int b = 0; b < 2; ++b)
    for (int k = 0; k < 2; ++k) {
      Rows col(1);
      for (int j = 0; j < 3; ++j) col[0].push_back(v[size_t(b * 6 + j * 2 + k)]);
      Rows ref = layer_norm_ref(col, {1, 2, 3}, {0, 0.5, -0.5}, 1e-3);
      for (int j = 0; j < 3; ++j) CHECK(got[size_t(b * 6 + j * 2 + k)] == Approx(ref[0][size_t(j)]).margin(1e-5));
    }
}

TEST_CASE("LayerNormalization gradients match finite differences", "[nn][layers][gradients]") {
  nn::LayerNormalization ln;
  Tensor x = constant({{0.3, -1.2, 2.0, 0.7}, {1.5, 1.0, -0.5, 0.1}, {-2.0, 0.4, 0.9, 3.3}}, float64);
  ln(x);
  ln->gamma().assign(constant({0.5f, -1.5f, 2.0f, 1.0f}));
  ln->beta().assign(constant({0.25f, 0.0f, -1.0f, 2.0f}));
  auto check = autodiff::check_gradients([&](const std::vector<Tensor>& in) { return ln(in[0]); }, {x});
  INFO(check.report);
  CHECK(check.ok);

  // d/dbeta of sum(y * w) is the column sum of w; d/dgamma is the column sum of w * xhat
  Rows w = {{1, 2, -1, 0.5}, {0, 1, 3, -2}, {2, -1, 1, 1}};
  GradientTape tape;
  Tensor loss = reduce_sum(ln(x) * to_tensor(w, float64));
  auto g = tape.gradient(loss, {ln->gamma(), ln->beta()});
  Rows xr = {{0.3, -1.2, 2.0, 0.7}, {1.5, 1.0, -0.5, 0.1}, {-2.0, 0.4, 0.9, 3.3}};
  Rows xhat = layer_norm_ref(xr, {1, 1, 1, 1}, {0, 0, 0, 0}, 1e-3);
  std::vector<double> dgamma(4, 0), dbeta(4, 0);
  for (size_t i = 0; i < 3; ++i)
    for (size_t j = 0; j < 4; ++j) {
      dgamma[j] += w[i][j] * xhat[i][j];
      dbeta[j] += w[i][j];
    }
  std::vector<float> gg = g[0].to_vector<float>(), gb = g[1].to_vector<float>();
  for (size_t j = 0; j < 4; ++j) {
    CHECK(gg[j] == Approx(dgamma[j]).margin(1e-4));
    CHECK(gb[j] == Approx(dbeta[j]).margin(1e-5));
  }
}

TEST_CASE("BatchNormalization: batch statistics in training, moving statistics at inference", "[nn][layers]") {
  const double m = 0.9, eps = 1e-3;
  nn::BatchNormalization bn(m);
  Rows x1 = {{1, 2}, {3, 6}, {5, 10}}, x2 = {{0, 1}, {2, -1}};

  // step 1: normalized with the batch's own statistics
  auto [mean1, var1] = column_moments(x1);
  Rows ref1;
  for (auto& r : x1)
    ref1.push_back({(r[0] - mean1[0]) / std::sqrt(var1[0] + eps), (r[1] - mean1[1]) / std::sqrt(var1[1] + eps)});
  check_close(bn(to_tensor(x1), true), ref1);
  std::vector<double> mm{0, 0}, mv{1, 1};
  for (size_t j = 0; j < 2; ++j) {
    mm[j] = mm[j] * m + mean1[j] * (1 - m);
    mv[j] = mv[j] * m + var1[j] * (1 - m);
  }
  check_close(bn->moving_mean(), mm);
  check_close(bn->moving_variance(), mv);

  // step 2
  auto [mean2, var2] = column_moments(x2);
  bn(to_tensor(x2), true);
  for (size_t j = 0; j < 2; ++j) {
    mm[j] = mm[j] * m + mean2[j] * (1 - m);
    mv[j] = mv[j] * m + var2[j] * (1 - m);
  }
  check_close(bn->moving_mean(), mm);
  check_close(bn->moving_variance(), mv);
  // hand values for the first column: 0.9 * 0.3 + 0.1 * 1 and 0.9 * (0.9 + 0.1 * 8 / 3) + 0.1 * 1
  CHECK(mm[0] == Approx(0.37));
  CHECK(mv[0] == Approx(0.9 * (0.9 + 0.8 / 3) + 0.1));

  // inference: moving statistics, gamma and beta; nothing is updated
  bn->gamma().assign(constant({2.0f, 0.5f}));
  bn->beta().assign(constant({-1.0f, 1.0f}));
  Rows ref;
  for (auto& r : x1)
    ref.push_back({(r[0] - mm[0]) / std::sqrt(mv[0] + eps) * 2 - 1, (r[1] - mm[1]) / std::sqrt(mv[1] + eps) * 0.5 + 1});
  check_close(bn(to_tensor(x1)), ref);
  check_close(bn(to_tensor(x1), false), ref);
  check_close(bn->moving_mean(), mm);
  check_close(bn->moving_variance(), mv);
  CHECK(bn->count_params() == 8);
  CHECK(bn->trainable_variables().size() == 2);
  CHECK(bn->non_trainable_variables().size() == 2);
}

TEST_CASE("BatchNormalization over axis 1 of a rank-3 input, and traced training steps", "[nn][layers]") {
  // [2, 2, 2] with features on axis 1: statistics over axes 0 and 2
  nn::BatchNormalization bn(0.5, nn::NormalizationOptions{.axis = 1});
  Tensor x = constant({{{1.0f, 3.0f}, {0.0f, 4.0f}}, {{5.0f, 7.0f}, {8.0f, 0.0f}}});
  bn(x, true);
  // feature 0: {1, 3, 5, 7} mean 4 var 5; feature 1: {0, 4, 8, 0} mean 3 var 11
  check_close(bn->moving_mean(), {2.0, 1.5});
  check_close(bn->moving_variance(), {3.0, 6.0});

  // a traced training step updates the moving statistics on every call
  nn::BatchNormalization traced_bn(0.5);
  auto step = function([&](Tensor in) { return traced_bn(in, true); });
  Tensor batch = constant({{2.0f}, {4.0f}});
  step(batch);
  check_close(traced_bn->moving_mean(), {1.5});
  step(batch);
  check_close(traced_bn->moving_mean(), {2.25});
  check_close(traced_bn->moving_variance(), {0.25 * 1 + 0.25 * 1 + 0.5 * 1});
}

TEST_CASE("normalization and embedding layers in summary()", "[nn][layers][model]") {
  nn::clear_session();
  auto model = nn::Sequential({nn::InputLayer(Shape{4}), nn::LayerNormalization(), nn::BatchNormalization()});
  std::string s = model->summary_string();
  CHECK_THAT(s, Contains("Total params: 24"));
  CHECK_THAT(s, Contains("Trainable params: 16"));
  CHECK_THAT(s, Contains("Non-trainable params: 8"));
  CHECK(model(ones({2, 4}), true).shape() == Shape{2, 4});

  // integer ids: a functional model (a Sequential's deferred build assumes float32 inputs)
  auto ids = nn::Input({3}, int32);
  nn::Model emb_model(ids, nn::Embedding(10, 4)(ids));
  CHECK(emb_model(constant({{1, 2, 3}, {4, 5, 6}})).shape() == Shape{2, 3, 4});
  std::string e = emb_model->summary_string();
  CHECK_THAT(e, Contains("(None, 3, 4)"));
  CHECK_THAT(e, Contains("Total params: 40"));
  CHECK_THAT(e, Contains("Non-trainable params: 0"));
}

TEST_CASE("normalization layers reject bad configuration and input", "[nn][layers][errors]") {
  CHECK_THROWS_AS(nn::LayerNormalization(nn::NormalizationOptions{.epsilon = -1}), InvalidArgument);
  CHECK_THROWS_WITH(nn::BatchNormalization(1.5), Contains("momentum") && Contains("1.5"));
  CHECK_THROWS_AS(nn::BatchNormalization(0.9, nn::NormalizationOptions{.epsilon = std::nan("")}), InvalidArgument);

  nn::LayerNormalization ln;
  CHECK_THROWS_WITH(ln(constant(1.0f)), Contains("rank >= 1"));
  nn::LayerNormalization ln3(nn::NormalizationOptions{.axis = 3});
  CHECK_THROWS_WITH(ln3(ones({2, 4})), Contains("axis 3") && Contains("(2, 4)"));
  nn::BatchNormalization bn;
  bn(ones({2, 4}));
  CHECK_THROWS_WITH(bn(ones({2, 5})), Contains("incompatible with the layer") && Contains("(2, 5)"));
  CHECK_THROWS_AS(bn(ones({2, 3, 4})), InvalidArgument);
  // the feature dim must be known when the layer is built
  CHECK_THROWS_WITH(nn::LayerNormalization()(nn::Input({-1})), Contains("known size"));
}

TEST_CASE("a Sequential that starts with an int32 InputLayer feeds ids to an Embedding", "[nn][layers]") {
  auto model = nn::Sequential({nn::InputLayer(Shape{3}, int32), nn::Embedding(10, 4)});
  Tensor out = model(constant({{1, 2, 3}, {4, 5, 6}}));
  CHECK(out.shape() == Shape{2, 3, 4});
}
