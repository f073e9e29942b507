// Losses against reference values, optimizers against updates computed by hand, metrics, and
// compile/fit/evaluate/predict: the walkthrough's linear regression trained eagerly and as a
// traced step (they agree), partial batches under a symbolic batch dim without retracing (batch
// statistics and dropout masks included), callbacks, validation, errors.
#include <catch2/catch.hpp>

#include <kiln/kiln.h>

#include <cmath>
#include <sstream>

using namespace kiln;
using Catch::Matchers::Contains;

namespace {

std::vector<float> values(const Tensor& t) { return t.to_vector<float>(); }

// The walkthrough's linear model: y = w x + b, starting at w = 5, b = 0.
struct LinearImpl : nn::ModelImpl {
  Variable w = register_variable("w", Variable(constant(5.0f), "w"));
  Variable b = register_variable("b", Variable(constant(0.0f), "b"));
  Tensor call(const Tensor& x, bool) override { return w * x + b; }
};
KILN_MODULE(Linear);

struct LineData {
  Tensor x, y;
};
LineData line_data() {
  Tensor x = cast(linspace(-2, 2, 201, float64), float32);
  return {x, x * 3.0f + 2.0f + random::normal({201}, 7)};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Losses (reference values from Keras' documentation examples)

TEST_CASE("losses match Keras' reference values", "[nn][losses]") {
  Tensor yt = constant({{0.0f, 1.0f}, {0.0f, 0.0f}});
  Tensor yp = constant({{1.0f, 1.0f}, {1.0f, 0.0f}});
  CHECK(values(nn::losses::mean_squared_error(yt, yp)) == std::vector<float>{0.5f, 0.5f});
  CHECK(values(nn::losses::mean_absolute_error(yt, yp)) == std::vector<float>{0.5f, 0.5f});
  CHECK(nn::losses::MeanSquaredError()(yt, yp).item<float>() == 0.5f);
  CHECK(nn::losses::MeanSquaredError()(yt, yp, constant({1.0f, 0.0f})).item<float>() == 0.25f);

  Tensor bt = constant({{0.0f, 1.0f}, {0.0f, 0.0f}});
  Tensor bp = constant({{0.6f, 0.4f}, {0.4f, 0.6f}});
  CHECK(nn::losses::BinaryCrossentropy()(bt, bp).item<float>() == Approx(0.815).epsilon(1e-3));
  auto per = values(nn::losses::binary_crossentropy(bt, bp));
  CHECK(per[0] == Approx(0.916).epsilon(1e-3));
  CHECK(per[1] == Approx(0.714).epsilon(1e-3));

  Tensor ct = constant({{0.0f, 1.0f, 0.0f}, {0.0f, 0.0f, 1.0f}});
  Tensor cp = constant({{0.05f, 0.95f, 0.0f}, {0.1f, 0.8f, 0.1f}});
  CHECK(nn::losses::CategoricalCrossentropy()(ct, cp).item<float>() == Approx(1.177).epsilon(1e-3));
  auto cper = values(nn::losses::categorical_crossentropy(ct, cp));
  CHECK(cper[0] == Approx(0.0513).epsilon(1e-2));
  CHECK(cper[1] == Approx(2.3026).epsilon(1e-3));
  CHECK(nn::losses::SparseCategoricalCrossentropy()(constant({1, 2}), cp).item<float>() == Approx(1.177).epsilon(1e-3));
  CHECK(nn::losses::SparseCategoricalCrossentropy()(constant({{1}, {2}}), cp).item<float>() ==
        Approx(1.177).epsilon(1e-3));
}

TEST_CASE("from_logits losses equal the losses of the activated values", "[nn][losses]") {
  Tensor logits = constant({{2.0f, -1.0f, 0.5f}, {-3.0f, 0.0f, 4.0f}});
  Tensor onehot = constant({{1.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 1.0f}});
  auto a = values(nn::losses::categorical_crossentropy(onehot, logits, true));
  auto b = values(nn::losses::categorical_crossentropy(onehot, softmax(logits)));
  auto s = values(nn::losses::sparse_categorical_crossentropy(constant({0, 2}), logits, true));
  for (size_t i = 0; i < 2; ++i) {
    CHECK(a[i] == Approx(b[i]).epsilon(1e-4));
    CHECK(s[i] == Approx(b[i]).epsilon(1e-4));
  }
  Tensor bt = constant({{1.0f, 0.0f}, {0.0f, 1.0f}});
  Tensor bl = constant({{1.5f, -0.5f}, {30.0f, -30.0f}});
  auto c = values(nn::losses::binary_crossentropy(bt, bl, true));
  // reference: -(t log s(x) + (1 - t) log(1 - s(x))) in double, stable for |x| = 30
  auto ref = [](double t, double x) { return std::max(x, 0.0) - x * t + std::log1p(std::exp(-std::fabs(x))); };
  CHECK(c[0] == Approx((ref(1, 1.5) + ref(0, -0.5)) / 2).epsilon(1e-5));
  CHECK(c[1] == Approx((ref(0, 30) + ref(1, -30)) / 2).epsilon(1e-5));
}

TEST_CASE("loss errors are typed and name the loss", "[nn][losses][errors]") {
  CHECK_THROWS_WITH(nn::losses::mean_squared_error(ones({2, 3}), ones({2, 4})),
                    Contains("[mean_squared_error]") && Contains("(2, 3)") && Contains("(2, 4)"));
  CHECK_THROWS_AS(nn::losses::mean_squared_error(ones({2}), ones({2, 1})), InvalidArgument);
  CHECK_THROWS_WITH(nn::losses::sparse_categorical_crossentropy(constant({0, 3}), ones({2, 3})),
                    Contains("[sparse_categorical_crossentropy]") && Contains("[0, 3)"));
  CHECK_THROWS_AS(nn::losses::sparse_categorical_crossentropy(constant({0, 1, 2}), ones({2, 3})), InvalidArgument);
  CHECK_THROWS_WITH(nn::losses::Loss("hinge"), Contains("unknown loss 'hinge'"));
  CHECK_THROWS_AS(nn::losses::mean_squared_error(constant({1, 2}), constant({1, 2})), InvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Optimizers: three steps with fixed gradients against the update rules in double precision

namespace {

// Runs `steps` updates of w = [1, -2] with the gradients g_t = [0.1 t, -0.3] and returns w.
std::vector<float> run_optimizer(nn::optim::Optimizer& opt, int steps) {
  Variable w(constant({1.0f, -2.0f}), "w");
  for (int t = 1; t <= steps; ++t) opt.apply_gradients({constant({0.1f * float(t), -0.3f})}, {w});
  return w.to_vector<float>();
}

std::vector<double> grad_at(int t) { return {0.1 * t, -0.3}; }

void check_close(const std::vector<float>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-5).margin(1e-6));
}

}  // namespace

TEST_CASE("SGD, with momentum and Nesterov, matches the update rule", "[nn][optim]") {
  for (double momentum : {0.0, 0.9}) {
    for (bool nesterov : {false, true}) {
      if (momentum == 0 && nesterov) continue;
      nn::optim::SGD opt(0.1, {.momentum = momentum, .nesterov = nesterov});
      std::vector<double> w{1, -2}, v{0, 0};
      for (int t = 1; t <= 3; ++t) {
        auto g = grad_at(t);
        for (size_t i = 0; i < 2; ++i) {
          if (momentum == 0) {
            w[i] -= 0.1 * g[i];
          } else {
            v[i] = momentum * v[i] - 0.1 * g[i];
            w[i] += nesterov ? momentum * v[i] - 0.1 * g[i] : v[i];
          }
        }
      }
      INFO("momentum " << momentum << " nesterov " << nesterov);
      check_close(run_optimizer(opt, 3), w);
      CHECK(opt.iterations().item<int64_t>() == 3);
    }
  }
}

TEST_CASE("Adam, AMSGrad and AdamW match the update rule", "[nn][optim]") {
  for (int kind = 0; kind < 3; ++kind) {
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-7, wd = 0.004;
    std::unique_ptr<nn::optim::Optimizer> opt;
    if (kind == 0) opt = std::make_unique<nn::optim::Adam>(lr);
    if (kind == 1) opt = std::make_unique<nn::optim::Adam>(lr, nn::optim::AdamOptions{.amsgrad = true});
    if (kind == 2) opt = std::make_unique<nn::optim::AdamW>(lr, wd);
    std::vector<double> w{1, -2}, m{0, 0}, v{0, 0}, vhat{0, 0};
    for (int t = 1; t <= 3; ++t) {
      auto g = grad_at(t);
      double alpha = lr * std::sqrt(1 - std::pow(b2, t)) / (1 - std::pow(b1, t));
      for (size_t i = 0; i < 2; ++i) {
        if (kind == 2) w[i] -= w[i] * wd * lr;
        m[i] += (g[i] - m[i]) * (1 - b1);
        v[i] += (g[i] * g[i] - v[i]) * (1 - b2);
        double vv = v[i];
        if (kind == 1) vv = vhat[i] = std::max(vhat[i], v[i]);
        w[i] -= m[i] * alpha / (std::sqrt(vv) + eps);
      }
    }
    INFO("kind " << kind);
    check_close(run_optimizer(*opt, 3), w);
  }
}

TEST_CASE("RMSprop, with momentum and centered, matches the update rule", "[nn][optim]") {
  for (int kind = 0; kind < 3; ++kind) {
    const double lr = 0.01, rho = 0.9, eps = 1e-7, mom = kind == 1 ? 0.5 : 0.0;
    const bool centered = kind == 2;
    nn::optim::RMSprop opt(lr, {.rho = rho, .momentum = mom, .centered = centered});
    std::vector<double> w{1, -2}, vel{0, 0}, mg{0, 0}, mo{0, 0};
    for (int t = 1; t <= 3; ++t) {
      auto g = grad_at(t);
      for (size_t i = 0; i < 2; ++i) {
        vel[i] = rho * vel[i] + (1 - rho) * g[i] * g[i];
        double denom = vel[i];
        if (centered) {
          mg[i] = rho * mg[i] + (1 - rho) * g[i];
          denom -= mg[i] * mg[i];
        }
        double inc = lr * g[i] / std::sqrt(denom + eps);
        if (mom > 0) {
          mo[i] = mom * mo[i] + inc;
          w[i] -= mo[i];
        } else {
          w[i] -= inc;
        }
      }
    }
    INFO("kind " << kind);
    check_close(run_optimizer(opt, 3), w);
  }
}

TEST_CASE("learning-rate schedules follow the step counter", "[nn][optim]") {
  nn::optim::ExponentialDecay decay(0.1, 10, 0.5);
  CHECK(decay(scalar<int64_t>(0)).item<float>() == Approx(0.1));
  CHECK(decay(scalar<int64_t>(10)).item<float>() == Approx(0.05));
  CHECK(decay(scalar<int64_t>(5)).item<float>() == Approx(0.1 * std::pow(0.5, 0.5)));
  nn::optim::ExponentialDecay stair(0.1, 10, 0.5, true);
  CHECK(stair(scalar<int64_t>(19)).item<float>() == Approx(0.05));
  nn::optim::PiecewiseConstantDecay pw({2, 4}, {1.0, 0.5, 0.1});
  CHECK(pw(scalar<int64_t>(2)).item<float>() == 1.0f);
  CHECK(pw(scalar<int64_t>(3)).item<float>() == 0.5f);
  CHECK(pw(scalar<int64_t>(9)).item<float>() == Approx(0.1f));
  // SGD with a schedule: step t uses lr(t)
  nn::optim::SGD opt(nn::optim::PiecewiseConstantDecay({0}, {1.0, 0.5}));
  Variable w(constant({0.0f}));
  opt.apply_gradients({constant({1.0f})}, {w});
  opt.apply_gradients({constant({1.0f})}, {w});
  CHECK(w.to_vector<float>()[0] == Approx(-1.5));
  CHECK_THROWS_AS(opt.set_learning_rate(0.1), InvalidArgument);
  CHECK_THROWS_AS(nn::optim::ExponentialDecay(0.1, 0, 0.5), InvalidArgument);
  CHECK_THROWS_AS(nn::optim::PiecewiseConstantDecay({1, 1}, {1, 2, 3}), InvalidArgument);
  CHECK_THROWS_AS(nn::optim::PiecewiseConstantDecay({1}, {1}), InvalidArgument);
}

TEST_CASE("optimizer errors are typed", "[nn][optim][errors]") {
  nn::optim::SGD opt(0.1);
  Variable w(constant({1.0f, 2.0f}));
  CHECK_THROWS_WITH(opt.apply_gradients({}, {w}), Contains("[SGD]") && Contains("0 gradients for 1 variables"));
  CHECK_THROWS_WITH(opt.apply_gradients({constant({1.0f})}, {w}), Contains("(1,)") && Contains("(2,)"));
  CHECK(w.to_vector<float>() == std::vector<float>{1, 2});
  // an undefined gradient (None) leaves its variable alone
  opt.apply_gradients({Tensor()}, {w});
  CHECK(w.to_vector<float>() == std::vector<float>{1, 2});
  CHECK_THROWS_AS(nn::optim::SGD(-1.0), InvalidArgument);
  CHECK_THROWS_AS(nn::optim::SGD(0.1, {.momentum = 2}), InvalidArgument);
  CHECK_THROWS_AS(nn::OptimizerArg("adagrad"), InvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Metrics

TEST_CASE("metrics accumulate weighted means in variables", "[nn][metrics]") {
  nn::metrics::Mean mean;
  mean.update(constant({1.0f, 2.0f, 3.0f}));
  CHECK(mean.result().item<float>() == 2.0f);
  mean.update(constant({10.0f}), constant({2.0f}));
  CHECK(mean.result().item<float>() == Approx(26.0 / 5.0));
  mean.reset_state();
  CHECK(mean.result().item<float>() == 0.0f);

  auto sparse = nn::metrics::SparseCategoricalAccuracy();
  sparse->update_state(constant({2, 1}), constant({{0.1f, 0.6f, 0.3f}, {0.05f, 0.95f, 0.0f}}));
  CHECK(sparse->result().item<float>() == 0.5f);
  auto cat = nn::metrics::CategoricalAccuracy();
  cat->update_state(constant({{0.0f, 0.0f, 1.0f}, {0.0f, 1.0f, 0.0f}}),
                    constant({{0.1f, 0.9f, 0.8f}, {0.05f, 0.95f, 0.0f}}));
  CHECK(cat->result().item<float>() == 0.5f);
  auto bin = nn::metrics::BinaryAccuracy();
  bin->update_state(constant({{1.0f}, {1.0f}, {0.0f}, {0.0f}}), constant({{0.98f}, {1.0f}, {0.0f}, {0.6f}}));
  CHECK(bin->result().item<float>() == 0.75f);
  auto acc = nn::metrics::Accuracy();
  acc->update_state(constant({1, 2, 3, 4}), constant({0, 2, 3, 4}), constant({1.0f, 1.0f, 0.0f, 0.0f}));
  CHECK(acc->result().item<float>() == 0.5f);
  CHECK_THROWS_AS(nn::metrics::get("auc"), InvalidArgument);
  CHECK(nn::metrics::get("accuracy", "sparse")->name() == "accuracy");
}

// ---------------------------------------------------------------------------------------------
// compile / fit / evaluate / predict

TEST_CASE("the hand-written training loop on a module reaches the line", "[nn][training]") {
  LineData d = line_data();
  Linear model;
  CHECK(model(constant(3.0f)).item<float>() == 15.0f);
  nn::optim::SGD opt(0.1);
  float last = 1e9f;
  for (int epoch = 0; epoch < 10; ++epoch) {
    GradientTape tape;
    Tensor loss = reduce_mean(square(d.y - model(d.x)));
    auto vars = model->trainable_variables();
    opt.apply_gradients(tape.gradient(loss, std::vector<Source>(vars.begin(), vars.end())), vars);
    CHECK(loss.item<float>() < last);
    last = loss.item<float>();
  }
  CHECK(model->w.item<float>() == Approx(3.0).margin(0.15));
  CHECK(model->b.item<float>() == Approx(2.0).margin(0.25));
}

TEST_CASE("fit on the linear-regression data: eager and compiled agree", "[nn][training]") {
  LineData d = line_data();
  std::vector<std::vector<double>> losses;
  std::vector<std::pair<float, float>> weights;
  for (bool eager : {true, false}) {
    Linear model;
    model->compile({.optimizer = std::make_shared<nn::optim::SGD>(0.1),
                    .loss = nn::losses::mean_squared_error,
                    .run_eagerly = eager});
    nn::History h = model->fit(d.x, d.y, {.epochs = 20, .batch_size = 1000, .verbose = 0});
    const auto& l = h.history.at("loss");
    REQUIRE(l.size() == 20);
    for (size_t i = 1; i < l.size(); ++i) CHECK(l[i] < l[i - 1]);
    CHECK(model->w.item<float>() == Approx(3.0).margin(0.1));
    CHECK(model->b.item<float>() == Approx(2.0).margin(0.15));
    CHECK(model->train_function_tracing_count() == (eager ? 0u : 1u));
    losses.push_back(l);
    weights.emplace_back(model->w.item<float>(), model->b.item<float>());
  }
  for (size_t i = 0; i < losses[0].size(); ++i) CHECK(losses[0][i] == Approx(losses[1][i]).epsilon(1e-5));
  CHECK(weights[0].first == Approx(weights[1].first).epsilon(1e-5));
  CHECK(weights[0].second == Approx(weights[1].second).epsilon(1e-5));
}

TEST_CASE("the last partial batch runs the same traced step: the batch dim is symbolic", "[nn][training]") {
  LineData d = line_data();
  std::vector<std::vector<double>> losses;
  std::vector<float> w;
  for (bool eager : {true, false}) {
    Linear model;
    model->compile({.optimizer = std::make_shared<nn::optim::SGD>(0.05), .loss = "mse", .run_eagerly = eager});
    // 201 examples in batches of 64: three full batches and one of 9
    nn::History h = model->fit(d.x, d.y, {.epochs = 3, .batch_size = 64, .verbose = 0, .seed = 5});
    CHECK(model->train_function_tracing_count() == (eager ? 0u : 1u));
    // batches of other sizes (a new fit, a smaller batch size) still do not retrace
    model->fit(d.x, d.y, {.epochs = 1, .batch_size = 50, .verbose = 0, .shuffle = false});
    CHECK(model->train_function_tracing_count() == (eager ? 0u : 1u));
    losses.push_back(h.history.at("loss"));
    w.push_back(model->w.item<float>());
  }
  for (size_t i = 0; i < losses[0].size(); ++i) CHECK(losses[0][i] == Approx(losses[1][i]).epsilon(1e-5));
  CHECK(w[0] == Approx(w[1]).epsilon(1e-5));
  // evaluate's mean over batches of different sizes equals the plain mean over every example
  Linear model;
  model->compile({.optimizer = "sgd", .loss = "mse"});
  nn::Logs logs = model->evaluate(d.x, d.y, {.batch_size = 64});
  float direct = reduce_mean(square(d.y - model(d.x))).item<float>();
  CHECK(logs.at("loss") == Approx(direct).epsilon(1e-5));
  Tensor p = model->predict(d.x, {.batch_size = 64});
  CHECK(p.shape() == Shape{201});
  CHECK(reduce_max(abs(p - model(d.x))).item<float>() < 1e-6f);
}

TEST_CASE("BatchNormalization's statistics on the last partial batch are the batch's own", "[nn][training]") {
  // momentum 0: after fit, the moving statistics are those of the last batch, rows 64..69 (no
  // shuffling), which padding rows would have changed
  Tensor x = random::normal({70, 3}, 11, 1.0, 2.0), y = random::normal({70, 1}, 12);
  Tensor last = x.index({Slice(64, 70)});
  Tensor mean = reduce_mean(last, 0), var = reduce_mean(square(last - mean), 0);
  std::vector<std::vector<double>> losses;
  for (bool eager : {true, false}) {
    nn::clear_session();
    random::set_seed(5);  // the same initial weights
    auto bn = nn::BatchNormalization(0.0);
    nn::Sequential model({nn::InputLayer(Shape{3}), bn, nn::Dense(1)});
    model->compile({.optimizer = std::make_shared<nn::optim::SGD>(0.1), .loss = "mse", .run_eagerly = eager});
    nn::History h = model->fit(x, y, {.epochs = 2, .batch_size = 32, .verbose = 0, .shuffle = false});
    CHECK(model->train_function_tracing_count() == (eager ? 0u : 1u));
    CHECK(reduce_max(abs(bn->moving_mean().read_value() - mean)).item<float>() < 1e-5f);
    CHECK(reduce_max(abs(bn->moving_variance().read_value() - var)).item<float>() < 1e-5f);
    losses.push_back(h.history.at("loss"));
  }
  for (size_t i = 0; i < losses[0].size(); ++i) CHECK(losses[0][i] == Approx(losses[1][i]).epsilon(1e-5));
}

TEST_CASE("Dropout in a traced step draws masks for the batch size that runs", "[nn][training]") {
  // the dropout mask of a traced step depends on the run-time batch size only through the
  // element numbers: the same counter and shape give the same mask eagerly and traced
  auto drop = nn::Dropout(0.5, 9);
  auto f = function([&](Tensor x) { return drop(x, true); },
                    {.input_signature = std::vector<TensorSpec>{TensorSpec({-1, 4}, float32)}});
  auto eager = nn::Dropout(0.5, 9);
  for (int64_t rows : {3, 5, 1}) {
    Tensor x = ones({rows, 4});
    Tensor traced = f(x), direct = eager(x, true);
    CHECK(traced.shape() == Shape{rows, 4});
    CHECK(traced.to_vector<float>() == direct.to_vector<float>());
  }
  CHECK(f.tracing_count() == 1);
}

TEST_CASE("a dataset's batches may grow: the step takes any batch size", "[nn][training][data]") {
  LineData d = line_data();
  Linear model;
  model->compile({.optimizer = std::make_shared<nn::optim::SGD>(0.05), .loss = "mse"});
  // batches of 10, then of 191
  auto ds = data::Dataset::from_tensor_slices({constant({0, 1})}).map([&](const data::Element& e) {
    Slice rows = e[0].item<int32_t>() == 0 ? Slice(0, 10) : Slice(10, 201);
    return data::Element{d.x.index({rows}), d.y.index({rows})};
  });
  nn::History h = model->fit(ds, {.epochs = 2, .verbose = 0});
  CHECK(h.epoch.size() == 2);
  CHECK(model->train_function_tracing_count() == 1);
}

TEST_CASE("the learning rate is a variable: changing it between compiled calls takes effect", "[nn][training]") {
  LineData d = line_data();
  Linear model;
  auto opt = std::make_shared<nn::optim::SGD>(0.1);
  model->compile({.optimizer = opt, .loss = "mse"});
  model->fit(d.x, d.y, {.epochs = 1, .batch_size = 256, .verbose = 0});
  opt->set_learning_rate(0.0);
  float w = model->w.item<float>();
  model->fit(d.x, d.y, {.epochs = 2, .batch_size = 256, .verbose = 0});
  CHECK(model->w.item<float>() == w);
  CHECK(model->train_function_tracing_count() == 1);
  CHECK(opt->iterations().item<int64_t>() == 3);
}

TEST_CASE("a classifier trains with Adam, sparse cross-entropy and accuracy", "[nn][training]") {
  random::set_seed(3);
  // two Gaussian blobs around (-1, -1) and (1, 1)
  Tensor a = random::normal({100, 2}, 1, -1.0, 0.5), b = random::normal({100, 2}, 2, 1.0, 0.5);
  Tensor x = concat({a, b}, 0);
  Tensor y = concat({zeros({100}, int32), ones({100}, int32)}, 0);
  auto model = nn::Sequential({nn::Dense(8, "relu"), nn::Dropout(0.1, 4), nn::Dense(2)});
  model->compile({.optimizer = std::make_shared<nn::optim::Adam>(0.05),
                  .loss = nn::losses::SparseCategoricalCrossentropy(/*from_logits=*/true),
                  .metrics = {"accuracy"}});
  nn::History h = model->fit(x, y, {.epochs = 15, .batch_size = 32, .verbose = 0, .seed = 1, .validation_split = 0.2});
  CHECK(h.history.count("val_loss") == 1);
  CHECK(h.history.count("val_accuracy") == 1);
  nn::Logs logs = model->evaluate(x, y);
  CHECK(logs.at("accuracy") > 0.9);
  Tensor p = model->predict(x, {.batch_size = 64});
  CHECK(p.shape() == Shape{200, 2});
  float acc = reduce_mean(cast(equal(argmax(p, 1, int32), y), float32)).item<float>();
  CHECK(acc == Approx(logs.at("accuracy")).epsilon(1e-5));
}

TEST_CASE("callbacks: early stopping, user callbacks, history", "[nn][training]") {
  LineData d = line_data();
  Linear model;
  auto opt = std::make_shared<nn::optim::SGD>(0.0);
  model->compile({.optimizer = opt, .loss = "mse"});
  auto counter = std::make_shared<nn::LambdaCallback>();
  int epochs_seen = 0, batches_seen = 0;
  counter->epoch_end = [&](int64_t, const nn::Logs& l) {
    ++epochs_seen;
    CHECK(l.count("val_loss") == 1);
  };
  counter->batch_end = [&](int64_t, const nn::Logs& l) { ++batches_seen; };
  auto stop = std::make_shared<nn::EarlyStopping>(nn::EarlyStoppingOptions{.patience = 2});
  nn::History h = model->fit(d.x, d.y,
                             {.epochs = 50,
                              .batch_size = 100,
                              .verbose = 0,
                              .validation_data = std::make_pair(d.x, d.y),
                              .callbacks = {counter, stop}});
  // nothing improves with a zero learning rate: stop after 1 + patience epochs
  CHECK(epochs_seen == 3);
  CHECK(batches_seen == 9);
  CHECK(stop->stopped_epoch() == 2);
  CHECK(h.epoch == std::vector<int64_t>{0, 1, 2});
  auto bad = std::make_shared<nn::EarlyStopping>(nn::EarlyStoppingOptions{.monitor = "val_auc"});
  CHECK_THROWS_WITH(model->fit(d.x, d.y, {.epochs = 2, .verbose = 0, .validation_split = 0.1, .callbacks = {bad}}),
                    Contains("val_auc") && Contains("val_loss"));
}

TEST_CASE("EarlyStopping restores the best weights", "[nn][training]") {
  LineData d = line_data();
  Linear model;
  auto opt = std::make_shared<nn::optim::SGD>(0.1);
  model->compile({.optimizer = opt, .loss = "mse"});
  // a learning rate that diverges after the first epochs: the best epoch is an early one
  auto blow_up = std::make_shared<nn::LambdaCallback>();
  blow_up->epoch_end = [&](int64_t epoch, const nn::Logs&) {
    if (epoch == 1) opt->set_learning_rate(3.0);
  };
  std::vector<float> w_after;  // w at the end of each epoch
  auto record = std::make_shared<nn::LambdaCallback>();
  record->epoch_end = [&](int64_t, const nn::Logs&) { w_after.push_back(model->w.item<float>()); };
  auto stop = std::make_shared<nn::EarlyStopping>(
      nn::EarlyStoppingOptions{.monitor = "loss", .patience = 1, .restore_best_weights = true});
  model->fit(d.x, d.y, {.epochs = 30, .batch_size = 1000, .verbose = 0, .callbacks = {blow_up, record, stop}});
  CHECK(stop->stopped_epoch() > 0);
  CHECK(stop->stopped_epoch() < 29);
  REQUIRE(stop->best_epoch() >= 0);
  // the weights at the end of the best epoch, as Keras restores them
  CHECK(model->w.item<float>() == w_after[size_t(stop->best_epoch())]);
  CHECK(w_after.back() != w_after[size_t(stop->best_epoch())]);
}

TEST_CASE("fit prints one line per epoch when not on a terminal", "[nn][training]") {
  LineData d = line_data();
  Linear model;
  model->compile({.optimizer = std::make_shared<nn::optim::SGD>(0.1), .loss = "mse"});
  std::ostringstream out;
  model->fit(d.x, d.y, {.epochs = 2, .batch_size = 1000, .out = &out, .show_timings = false});
  CHECK(out.str() ==
        "Epoch 1/2\n1/1 [==============================] - loss: 11.1378\n"
        "Epoch 2/2\n1/1 [==============================] - loss: 6.8787\n");
  std::ostringstream out2;
  model->fit(d.x, d.y, {.epochs = 1, .batch_size = 100, .verbose = 2, .out = &out2, .show_timings = false});
  CHECK_THAT(out2.str(), Contains("Epoch 1/1\n3/3 - loss: "));
  std::ostringstream out3;
  model->fit(d.x, d.y, {.epochs = 1, .verbose = 2, .out = &out3});
  CHECK_THAT(out3.str(), Contains("ms/epoch"));
}

TEST_CASE("fit accepts a dataset", "[nn][training][data]") {
  LineData d = line_data();
  std::vector<float> w;
  for (bool eager : {true, false}) {
    Linear model;
    model->compile({.optimizer = std::make_shared<nn::optim::SGD>(0.1), .loss = "mse", .run_eagerly = eager});
    auto ds = data::Dataset::from_tensor_slices({d.x, d.y}).shuffle(256, 3).batch(50).prefetch(2);
    nn::History h = model->fit(ds, {.epochs = 5, .verbose = 0});
    CHECK(h.history.at("loss").back() < h.history.at("loss").front());
    if (!eager) CHECK(model->train_function_tracing_count() == 1);
    w.push_back(model->w.item<float>());
    nn::Logs logs = model->evaluate(data::Dataset::from_tensor_slices({d.x, d.y}).batch(64));
    CHECK(logs.at("loss") < 2.0);
  }
  CHECK(w[0] == Approx(w[1]).epsilon(1e-5));
  // a repeating dataset needs steps_per_epoch
  Linear model;
  model->compile({.optimizer = "sgd", .loss = "mse"});
  auto forever = data::Dataset::from_tensor_slices({d.x, d.y}).batch(64).repeat();
  CHECK_THROWS_AS(model->fit(forever, {.verbose = 0}), InvalidArgument);
  nn::History h = model->fit(forever, {.epochs = 2, .verbose = 0, .steps_per_epoch = 7});
  CHECK(h.epoch.size() == 2);
  CHECK(model->optimizer()->iterations().item<int64_t>() == 14);
  CHECK_THROWS_AS(model->fit(data::Dataset::from_tensor_slices({d.x, d.y}), {.verbose = 0}), InvalidArgument);
}

TEST_CASE("training errors are typed with clear messages", "[nn][training][errors]") {
  LineData d = line_data();
  Linear model;
  CHECK_THROWS_WITH(model->fit(d.x, d.y), Contains("compile"));
  CHECK_THROWS_AS(model->fit(d.x, d.y), FailedPrecondition);
  CHECK_THROWS_WITH(model->compile({.optimizer = "sgd"}), Contains("needs a loss"));
  model->compile({.optimizer = "sgd", .loss = "mse"});
  CHECK_THROWS_WITH(model->fit(d.x, ones({10})), Contains("201") && Contains("10"));
  CHECK_THROWS_AS(model->fit(d.x, d.y, {.batch_size = 0}), InvalidArgument);
  CHECK_THROWS_AS(model->fit(d.x, d.y, {.verbose = 3}), InvalidArgument);
  CHECK_THROWS_AS(model->fit(d.x, d.y, {.validation_split = 1.0}), InvalidArgument);
  CHECK_THROWS_AS(model->predict(scalar(1.0f)), InvalidArgument);
  CHECK_THROWS_AS(model->compile({.optimizer = "sgd", .loss = "mse", .metrics = {"f1"}}), InvalidArgument);
  // the model is unchanged by the failed calls
  CHECK(model->w.item<float>() == 5.0f);
}

TEST_CASE("predict works without compile and keeps the example order", "[nn][training]") {
  Linear model;
  Tensor x = range(0, 10, 1, float32);
  Tensor p = model->predict(x, {.batch_size = 4});
  CHECK(values(p) == values(x * 5.0f));
}
