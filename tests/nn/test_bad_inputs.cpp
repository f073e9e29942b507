// The bad-input catalog of kiln::nn (as tests/ops/test_bad_inputs.cpp is for ops): layers given
// wrong ranks, dtypes and constructor arguments, datasets given bad sizes and counts, and
// fit/evaluate/predict given bad arguments. Each call must throw a kiln::Error other than
// Internal whose message starts with "[<layer or op>] " and names the offending value.
#include <catch2/catch.hpp>

#include <kiln/kiln.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

using namespace kiln;

namespace {

/// One hostile call: `component` is what the message must start with ("[component] "),
/// `mentions` a part of it that names the offending value.
struct BadCase {
  std::string what;
  std::function<void()> call;
  std::string component;
  std::string mentions;
};

constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max(), kI64Min = std::numeric_limits<int64_t>::min();

// What is wrong with the way the call failed ("" when it failed as it should).
std::string problem_with(const BadCase& c) {
  try {
    c.call();
    return "no error was thrown";
  } catch (const Internal& e) {
    return std::string("threw InternalError: ") + e.what();
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (msg.rfind("[" + c.component + "] ", 0) != 0)
      return "the message does not start with [" + c.component + "]: " + msg;
    if (msg.find(c.mentions) == std::string::npos) return "the message does not mention \"" + c.mentions + "\": " + msg;
    return "";
  } catch (const std::exception& e) {
    return std::string("threw an exception that is not a kiln::Error: ") + e.what();
  }
}

void run(const std::vector<BadCase>& cases) {
  for (const BadCase& c : cases) {
    const std::string problem = problem_with(c);
    INFO("case: " << c.what << "\n" << problem);
    CHECK(problem.empty());
  }
}

Tensor text(const Shape& s) {
  std::vector<std::string_view> v(size_t(s.num_elements()), "a");
  return make_string_tensor(s, v);
}

// A layer built for inputs of `shape` (float32 ones).
template <class L>
L built(L layer, const Shape& shape) {
  layer(ones(shape));
  return layer;
}

}  // namespace

TEST_CASE("layers reject bad arguments, ranks and dtypes with errors naming the layer", "[nn][bad_inputs]") {
  nn::clear_session();
  run({
      // Dense
      {"Dense with units 0", [] { nn::Dense(0); }, "Dense", "units must be positive, got 0"},
      {"Dense with units -3", [] { nn::Dense(-3, nn::DenseOptions{}, "d"); }, "Dense", "got -3"},
      {"Dense with an unknown activation", [] { nn::Dense(2, "relux"); }, "activations", "relux"},
      {"Dense on a scalar", [] { nn::Dense(2, nn::DenseOptions{}, "d")(scalar(1.0f)); }, "d", "shape ()"},
      {"Dense on a wrong last dim",
       [] {
         built(nn::Dense(2, nn::DenseOptions{}, "d"), {3, 4})(ones({3, 5}));
       },
       "d", "expected axis -1 of input shape to have value 4, found shape=(3, 5)"},
      {"Dense built for rank 2 given rank 1",
       [] {
         built(nn::Dense(2, nn::DenseOptions{}, "d"), {3, 4})(ones({4}));
       },
       "d", "expected min_ndim=2"},
      {"Dense on strings",
       [] {
         nn::Dense(2, nn::DenseOptions{}, "d")(text({2, 3}));
       },
       "d", "string"},
      {"Dense on an undefined tensor", [] { nn::Dense(2, nn::DenseOptions{}, "d")(Tensor()); }, "d", "undefined"},
      {"Dense on an unknown last dim", [] { nn::Dense(2, nn::DenseOptions{}, "d")(nn::Input({-1})); }, "d",
       "must be known, got shape (None, None)"},
      // Dropout
      {"Dropout with rate 1", [] { nn::Dropout(1.0); }, "Dropout", "rate must be in [0, 1), got 1"},
      {"Dropout with rate -0.1", [] { nn::Dropout(-0.1); }, "Dropout", "got -0.1"},
      {"Dropout with rate NaN", [] { nn::Dropout(std::nan("")); }, "Dropout", "got nan"},
      {"Dropout with rate infinity", [] { nn::Dropout(std::numeric_limits<double>::infinity()); }, "Dropout",
       "got inf"},
      {"Dropout training on int32", [] { nn::Dropout(0.5, 1, "drop")(ones({4}, int32), true); }, "drop",
       "floating-point inputs while training, got dtype int32"},
      {"Dropout training on strings", [] { nn::Dropout(0.2, 1, "drop")(text({4}), true); }, "drop", "got dtype string"},
      {"Dropout on an undefined tensor", [] { nn::Dropout(0.2, 1, "drop")(Tensor(), true); }, "drop", "undefined"},
      // Flatten
      {"Flatten on a scalar", [] { nn::Flatten("flat")(scalar(1.0f)); }, "flat", "rank >= 1, got a scalar"},
      {"Flatten on unknown inner dims",
       [] {
         nn::Flatten("flat")(nn::Input({-1, 3}));
       },
       "flat", "every dim but the first known, got shape (None, None, 3)"},
      // Embedding
      {"Embedding with input_dim 0", [] { nn::Embedding(0, 3); }, "Embedding", "input_dim=0"},
      {"Embedding with output_dim -1", [] { nn::Embedding(4, -1); }, "Embedding", "output_dim=-1"},
      {"Embedding on float ids",
       [] {
         nn::Embedding(4, 2, nn::init::random_uniform(), "emb")(constant({0.0f, 1.0f}));
       },
       "emb", "int32 or int64, got float32"},
      {"Embedding on an id past the table",
       [] {
         nn::Embedding(4, 2, nn::init::random_uniform(), "emb")(constant({0, 4}));
       },
       "emb", "4"},
      {"Embedding on a negative id", [] { nn::Embedding(4, 2, nn::init::random_uniform(), "emb")(constant({-1})); },
       "emb", "-1"},
      // LayerNormalization
      {"LayerNormalization with epsilon -1", [] { nn::LayerNormalization(nn::NormalizationOptions{.epsilon = -1}); },
       "LayerNormalization", "epsilon must be finite and >= 0, got -1"},
      {"LayerNormalization on a scalar", [] { nn::LayerNormalization(nn::NormalizationOptions{}, "ln")(scalar(1.0f)); },
       "ln", "rank >= 1"},
      {"LayerNormalization with axis 3 on rank 2",
       [] {
         nn::LayerNormalization(nn::NormalizationOptions{.axis = 3}, "ln")(ones({2, 4}));
       },
       "ln", "axis 3"},
      {"LayerNormalization with another feature dim",
       [] {
         built(nn::LayerNormalization(nn::NormalizationOptions{}, "ln"), {2, 4})(ones({2, 5}));
       },
       "ln", "found shape=(2, 5)"},
      {"LayerNormalization on strings",
       [] {
         nn::LayerNormalization(nn::NormalizationOptions{}, "ln")(text({2, 3}));
       },
       "ln", "string"},
      // BatchNormalization
      {"BatchNormalization with momentum 1.5", [] { nn::BatchNormalization(1.5); }, "BatchNormalization",
       "momentum must be in [0, 1], got 1.5"},
      {"BatchNormalization with momentum -1", [] { nn::BatchNormalization(-1); }, "BatchNormalization", "got -1"},
      {"BatchNormalization with epsilon NaN",
       [] { nn::BatchNormalization(0.9, nn::NormalizationOptions{.epsilon = std::nan("")}); }, "BatchNormalization",
       "got nan"},
      {"BatchNormalization with another rank",
       [] {
         built(nn::BatchNormalization(0.9, nn::NormalizationOptions{}, "bn"), {2, 4})(ones({2, 3, 4}));
       },
       "bn", "expected ndim=2"},
      {"BatchNormalization on strings",
       [] {
         nn::BatchNormalization(0.9, nn::NormalizationOptions{}, "bn")(text({2, 3}), true);
       },
       "bn", "string"},
      // Input
      {"Input with a dim below -1",
       [] {
         nn::Input({3, -2});
       },
       "Input", "[3, -2]"},
  });
}

TEST_CASE("datasets reject bad sizes and counts with errors naming the transformation", "[nn][data][bad_inputs]") {
  const data::Dataset ds = data::Dataset::from_tensor_slices({ones({5, 2})});
  auto first = [](const data::Dataset& d) {
    for (const data::Element& e : d) (void)e;
  };
  run({
      {"from_tensor_slices of nothing", [] { data::Dataset::from_tensor_slices({}); }, "Dataset.from_tensor_slices",
       "needs at least one tensor"},
      {"from_tensor_slices of a scalar", [] { data::Dataset::from_tensor_slices({scalar(1.0f)}); },
       "Dataset.from_tensor_slices", "tensor 0 is a scalar"},
      {"from_tensor_slices with mismatched first dims",
       [] {
         data::Dataset::from_tensor_slices({ones({3, 2}), ones({4})});
       },
       "Dataset.from_tensor_slices", "same first dim: shapes (3, 2) and (4,)"},
      {"from_tensor_slices with an undefined tensor",
       [] {
         data::Dataset::from_tensor_slices({ones({3}), Tensor()});
       },
       "Dataset.from_tensor_slices", "tensor 1"},
      {"batch(0)", [&] { ds.batch(0); }, "Dataset.batch", "batch_size must be positive, got 0"},
      {"batch(-5)", [&] { ds.batch(-5); }, "Dataset.batch", "got -5"},
      {"batch(INT64_MIN)", [&] { ds.batch(kI64Min); }, "Dataset.batch", std::to_string(kI64Min)},
      {"batching elements of different shapes",
       [&] {
         // element i becomes i + 1 ones: shapes (1,) and (2,) meet in the first batch
         first(data::Dataset::from_tensor_slices({constant({1, 2})})
                   .map([](const data::Element& e) { return data::Element{ones({e[0].item<int32_t>()})}; })
                   .batch(2));
       },
       "Dataset.batch", "cannot batch component 0: elements have shapes (1,) and (2,)"},
      {"shuffle(0)", [&] { ds.shuffle(0); }, "Dataset.shuffle", "buffer_size must be positive, got 0"},
      {"shuffle(-1)", [&] { ds.shuffle(-1); }, "Dataset.shuffle", "got -1"},
      {"take(-2)", [&] { ds.take(-2); }, "Dataset.take", "count must be -1 (all) or >= 0, got -2"},
      {"take(INT64_MIN)", [&] { ds.take(kI64Min); }, "Dataset.take", std::to_string(kI64Min)},
      {"skip(-1)", [&] { ds.skip(-1); }, "Dataset.skip", "count must be >= 0, got -1"},
      {"repeat(-2)", [&] { ds.repeat(-2); }, "Dataset.repeat", "got -2"},
      {"prefetch(0)", [&] { ds.prefetch(0); }, "Dataset.prefetch", "buffer_size must be positive, got 0"},
      {"map with an empty function", [&] { ds.map({}); }, "Dataset.map", "the function is empty"},
  });
  // huge but valid counts: no overflow in the element counts (the sanitizer tree checks)
  CHECK(ds.batch(kI64Max).cardinality() == 1);
  CHECK(ds.batch(kI64Max, true).cardinality() == 0);
  CHECK(ds.repeat(kI64Max).cardinality() == -2);
  CHECK(ds.repeat(kI64Max / 5).cardinality() == kI64Max / 5 * 5);
  CHECK(ds.take(kI64Max).cardinality() == 5);
  CHECK(ds.skip(kI64Max).cardinality() == 0);
  CHECK(ds.shuffle(kI64Max, 1).batch(2).cardinality() == 3);
  CHECK(ds.prefetch(kI64Max).take(1).cardinality() == 1);
}

TEST_CASE("fit, evaluate and predict reject bad arguments", "[nn][training][bad_inputs]") {
  nn::clear_session();
  auto model = nn::Sequential({nn::Dense(1)}, "m");
  Tensor x = ones({8, 3}), y = ones({8, 1});
  run({
      {"fit before compile", [&] { model->fit(x, y, {.verbose = 0}); }, "m", "compiled before fit"},
  });
  model->compile({.optimizer = "sgd", .loss = "mse"});
  run({
      {"fit with mismatched x and y",
       [&] {
         model->fit(x, ones({7, 1}), {.verbose = 0});
       },
       "fit", "8 and 7"},
      {"fit with batch_size 0", [&] { model->fit(x, y, {.batch_size = 0, .verbose = 0}); }, "fit",
       "batch_size must be positive, got 0"},
      {"fit with epochs -1", [&] { model->fit(x, y, {.epochs = -1, .verbose = 0}); }, "m", "-1"},
      {"fit with verbose 3", [&] { model->fit(x, y, {.verbose = 3}); }, "m", "verbose must be 0, 1 or 2, got 3"},
      {"fit with validation_split 1", [&] { model->fit(x, y, {.verbose = 0, .validation_split = 1.0}); }, "fit",
       "validation_split must be in [0, 1), got 1"},
      {"fit on scalars", [&] { model->fit(scalar(1.0f), scalar(1.0f), {.verbose = 0}); }, "fit",
       "first (example) axis"},
      {"fit on an unbatched dataset",
       [&] {
         model->fit(
             data::Dataset::from_tensor_slices({x, y}).map([](const data::Element& e) { return data::Element{e[0]}; }),
             {.verbose = 0});
       },
       "fit", "batches (x, y)"},
      {"fit on an endless dataset",
       [&] {
         model->fit(data::Dataset::from_tensor_slices({x, y}).batch(4).repeat(), {.verbose = 0});
       },
       "fit", "repeats forever"},
      {"fit with steps_per_epoch 0",
       [&] {
         model->fit(data::Dataset::from_tensor_slices({x, y}).batch(4), {.verbose = 0, .steps_per_epoch = 0});
       },
       "fit", "steps_per_epoch must be positive, got 0"},
      {"evaluate with batch_size -1", [&] { model->evaluate(x, y, {.batch_size = -1}); }, "evaluate",
       "batch_size must be positive, got -1"},
      {"predict with batch_size 0", [&] { model->predict(x, {.batch_size = 0}); }, "predict",
       "batch_size must be positive, got 0"},
      {"predict on a scalar", [&] { model->predict(scalar(1.0f)); }, "predict", "first (example) axis"},
      {"predict on no examples",
       [&] {
         model->predict(ones({0, 3}));
       },
       "predict", "no examples"},
      // the model's name first: the error comes out of the model's call of its layers, traced
      // with an unknown batch dim (as Keras reports None)
      {"predict on a wrong feature dim",
       [&] {
         model->predict(ones({2, 3})), model->predict(ones({2, 4}));
       },
       "m",
       "layer 'dense' (type Dense) is incompatible with the layer: expected axis -1 of input shape to have value 3, "
       "found shape=(None, 4)"},
  });
}
