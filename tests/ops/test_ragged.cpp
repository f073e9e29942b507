// Ragged tensors: the walkthrough's ragged section, construction and validation, printing,
// to_tensor/from_tensor round trips, row access, elementwise ops, reductions, concat, gradients.
#include <catch2/catch.hpp>

#include <random>
#include <sstream>

#include "autodiff/check.h"
#include "autodiff/tape.h"
#include "ops/dispatch.h"
#include "ops/ops.h"
#include "ops/ragged.h"
#include "ops/strings.h"
#include "tests/support/text.h"

using namespace kiln;
using I64 = std::vector<int64_t>;

using kiln::testing::str;

TEST_CASE("the walkthrough's ragged section", "[ragged][walkthrough]") {
  CHECK_THROWS_MATCHES(constant({{0, 1, 2, 3}, {4, 5}, {6, 7, 8}, {9}}), InvalidArgument,
                       Catch::Matchers::Message("[constant] can't convert a non-rectangular nested list to a tensor (a "
                                                "list of length 2 at depth 1 where shape [4, 4] was expected); use "
                                                "kiln::ragged::constant for ragged data"));
  RaggedTensor ragged_tensor = ragged::constant({{0, 1, 2, 3}, {4, 5}, {6, 7, 8}, {9}});
  CHECK(str(ragged_tensor) == "<kiln.RaggedTensor [[0, 1, 2, 3], [4, 5], [6, 7, 8], [9]]>");
  CHECK(str(ragged_tensor.shape()) == "(4, None)");
  CHECK(ragged_tensor.dtype() == int32);
  CHECK(ragged_tensor.values().to_vector<int32_t>() == std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(ragged_tensor.row_splits().to_vector<int64_t>() == I64{0, 4, 6, 9, 10});
}

TEST_CASE("ragged constants infer dtypes and print their values as Python lists", "[ragged]") {
  CHECK(str(ragged::constant({{1.5, 2}, {}})) == "<kiln.RaggedTensor [[1.5, 2.0], []]>");
  CHECK(str(ragged::constant({{0.1}})) == "<kiln.RaggedTensor [[0.10000000149011612]]>");
  CHECK(str(ragged::constant({{0.1}}, float64)) == "<kiln.RaggedTensor [[0.1]]>");
  CHECK(str(ragged::constant({{true}, {false, true}})) == "<kiln.RaggedTensor [[True], [False, True]]>");
  CHECK(str(ragged::constant({{"a", "b"}, {"c"}})) == "<kiln.RaggedTensor [[b'a', b'b'], [b'c']]>");
  RaggedTensor inner = ragged::constant({{{1, 2}, {3, 4}}, {{5, 6}}});
  CHECK(str(inner) == "<kiln.RaggedTensor [[[1, 2], [3, 4]], [[5, 6]]]>");
  CHECK(str(inner.shape()) == "(2, None, 2)");
  CHECK(str(ragged::constant({})) == "<kiln.RaggedTensor []>");
  CHECK(ragged::constant({{}, {}}).dtype() == float32);
  CHECK_THROWS_WITH(ragged::constant(NestedList(3)), Catch::Contains("got a scalar"));
  CHECK_THROWS_WITH(ragged::constant({{1}, 2}), Catch::Contains("row 1 is a scalar"));
  CHECK_THROWS_WITH(ragged::constant({{{1, 2}}, {{3}}}), Catch::StartsWith("[ragged.constant]"));
  CHECK_THROWS_WITH(ragged::constant({{1}, {"a"}}), Catch::Contains("mixes strings"));
}

TEST_CASE("row splits are validated on construction", "[ragged]") {
  Tensor v = constant({1, 2, 3});
  auto splits = [](I64 s) { return constant(s, Shape{static_cast<int64_t>(s.size())}); };
  CHECK(RaggedTensor::from_row_splits(v, splits({0, 1, 3})).nrows() == 2);
  CHECK_THROWS_MATCHES(RaggedTensor::from_row_splits(v, splits({0, 1, 4})), InvalidArgument,
                       Catch::Matchers::Message("[ragged.from_row_splits] row_splits end at 4 but values has 3 rows "
                                                "(shape (3,))"));
  CHECK_THROWS_WITH(RaggedTensor::from_row_splits(v, splits({1, 3})), Catch::Contains("row_splits[0] = 1"));
  CHECK_THROWS_WITH(RaggedTensor::from_row_splits(v, splits({0, 2, 1, 3})),
                    Catch::Contains("row_splits[1] = 2 and row_splits[2] = 1"));
  CHECK_THROWS_WITH(RaggedTensor::from_row_splits(v, splits({})), Catch::Contains("non-empty"));
  CHECK_THROWS_WITH(RaggedTensor::from_row_splits(v, constant({0, 3})), Catch::Contains("int64"));
  CHECK_THROWS_WITH(RaggedTensor::from_row_splits(constant(1), splits({0})), Catch::Contains("scalar"));
  CHECK(RaggedTensor::from_row_lengths(v, constant({2, 0, 1})).row_splits().to_vector<int64_t>() == I64{0, 2, 2, 3});
  CHECK_THROWS_WITH(RaggedTensor::from_row_lengths(v, constant({2, -1, 2})), Catch::Contains("row_lengths[1] = -1"));
  CHECK_THROWS_WITH(RaggedTensor::from_row_lengths(v, constant({2, 2})), Catch::Contains("end at 4"));
  RaggedTensor a = ragged::constant({{1, 2}, {3}});
  CHECK_THROWS_WITH(a.with_values(constant({1, 2})), Catch::Contains("end at 3 but values has 2 rows"));
  CHECK_THROWS_AS(RaggedTensor().nrows(), InvalidArgument);
  CHECK(str(RaggedTensor()) == "None");
}

TEST_CASE("rows, row lengths and value row ids", "[ragged]") {
  RaggedTensor rt = ragged::constant({{0, 1, 2, 3}, {4, 5}, {}, {9}});
  CHECK(rt.row(0).to_vector<int32_t>() == std::vector<int32_t>{0, 1, 2, 3});
  CHECK(rt.row(2).shape() == Shape{0});
  CHECK(rt.row(-1).to_vector<int32_t>() == std::vector<int32_t>{9});
  CHECK_THROWS_WITH(rt.row(4), Catch::Contains("row 4 is out of range for 4 rows"));
  CHECK_THROWS_WITH(rt.row(-5), Catch::Contains("row -5"));
  CHECK(rt.row_lengths().to_vector<int64_t>() == I64{4, 2, 0, 1});
  CHECK(rt.value_rowids().to_vector<int64_t>() == I64{0, 0, 0, 0, 1, 1, 3});
}

TEST_CASE("ragged_value_rowids sizes its output by the values and checks the splits against them", "[ragged]") {
  auto rowids = [](I64 s, int64_t nvals) {
    return ops::apply1(ops::OpId::RaggedValueRowIds,
                       {constant(s, Shape{static_cast<int64_t>(s.size())}), zeros({nvals, 2}, float32)});
  };
  CHECK(rowids({0, 2, 2, 3}, 3).to_vector<int64_t>() == I64{0, 0, 2});
  CHECK(rowids({0}, 0).shape() == Shape{0});
  // a hostile last split used to size the output (a 2^62-entry allocation); now it is an error
  // naming the op and the values' count
  CHECK_THROWS_MATCHES(rowids({0, int64_t{1} << 62}, 3), InvalidArgument,
                       Catch::Matchers::Message("[ragged_value_rowids] row_splits end at 4611686018427387904 but "
                                                "there are 3 values"));
  CHECK_THROWS_WITH(rowids({0, 1}, 3), Catch::Contains("row_splits end at 1 but there are 3 values"));
  CHECK_THROWS_WITH(rowids({0, 3, 2}, 3), Catch::Contains("row_splits[1] = 3 and row_splits[2] = 2"));
  CHECK_THROWS_AS(ops::apply1(ops::OpId::RaggedValueRowIds, {constant(I64{0, 1}, Shape{2}), scalar(1.0f)}),
                  InvalidArgument);
}

TEST_CASE("to_tensor pads and from_tensor trims", "[ragged]") {
  RaggedTensor rt = ragged::constant({{0, 1, 2, 3}, {4, 5}, {6, 7, 8}, {9}});
  CHECK(str(rt.to_tensor()) ==
        "kiln.Tensor(\n[[0 1 2 3]\n [4 5 0 0]\n [6 7 8 0]\n [9 0 0 0]], shape=(4, 4), dtype=int32)");
  CHECK(rt.to_tensor(constant(-1)).to_vector<int32_t>()[7] == -1);
  CHECK(rt.to_tensor(std::nullopt, 2).shape() == Shape{4, 2});
  CHECK(rt.to_tensor(std::nullopt, 2).to_vector<int32_t>() == std::vector<int32_t>{0, 1, 4, 5, 6, 7, 9, 0});
  CHECK_THROWS_WITH(rt.to_tensor(constant(1.5)), Catch::Contains("default_value has dtype float32"));
  CHECK_THROWS_WITH(rt.to_tensor(constant({1, 2})), Catch::Contains("must be a scalar"));
  CHECK_THROWS_WITH(rt.to_tensor(std::nullopt, -1), Catch::Contains("width"));
  CHECK(str(ragged::constant({{"a"}, {}}).to_tensor()) ==
        "kiln.Tensor(\n[[b'a']\n [b'']], shape=(2, 1), dtype=string)");
  CHECK(ragged::constant({{{1, 2}}, {}}).to_tensor().to_vector<int32_t>() == std::vector<int32_t>{1, 2, 0, 0});
  CHECK(ragged::constant({{}, {}}).to_tensor().shape() == Shape{2, 0});

  Tensor dense = constant({{1, 2, 0}, {0, 0, 0}, {3, 0, 4}});
  CHECK(str(RaggedTensor::from_tensor(dense)) == "<kiln.RaggedTensor [[1, 2, 0], [0, 0, 0], [3, 0, 4]]>");
  CHECK(str(RaggedTensor::from_tensor(dense, constant(0))) == "<kiln.RaggedTensor [[1, 2], [], [3, 0, 4]]>");
  CHECK(str(RaggedTensor::from_tensor(dense, I64{1, 0, 2})) == "<kiln.RaggedTensor [[1], [], [3, 0]]>");
  CHECK(str(RaggedTensor::from_tensor(constant({{"a", ""}, {"", ""}}), constant(""))) ==
        "<kiln.RaggedTensor [[b'a'], []]>");
  CHECK(str(RaggedTensor::from_tensor(constant({{{1, 0}, {0, 0}}}), constant(0))) == "<kiln.RaggedTensor [[[1, 0]]]>");
  CHECK_THROWS_WITH(RaggedTensor::from_tensor(dense, I64{1, 4, 0}), Catch::Contains("length 4 of row 1"));
  CHECK_THROWS_WITH(RaggedTensor::from_tensor(dense, I64{1}), Catch::Contains("1 lengths for 3 rows"));
  CHECK_THROWS_WITH(RaggedTensor::from_tensor(constant({1, 2})), Catch::Contains("rank >= 2"));
  CHECK_THROWS_WITH(RaggedTensor::from_tensor(dense, constant(0.0)), Catch::Contains("padding has dtype float32"));
}

TEST_CASE("property: from_tensor(to_tensor(rt), row_lengths) gives rt back", "[ragged][property]") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    const int64_t rows = rng() % 6;
    I64 lengths;
    std::vector<NestedList> rs;
    int v = 0;
    for (int64_t r = 0; r < rows; ++r) {
      lengths.push_back(rng() % 5);
      std::vector<NestedList> row;
      for (int64_t k = 0; k < lengths.back(); ++k) row.push_back(NestedList(++v));
      rs.push_back(NestedList::list(row));
    }
    RaggedTensor rt = ragged::constant(NestedList::list(rs), int32);
    Tensor dense = rt.to_tensor();
    RaggedTensor back = RaggedTensor::from_tensor(dense, lengths);
    INFO(rt.to_string());
    CHECK(back.to_string() == rt.to_string());
    CHECK(back.row_splits().to_vector<int64_t>() == rt.row_splits().to_vector<int64_t>());
    // and from_tensor with a padding that no value equals
    CHECK(RaggedTensor::from_tensor(dense, constant(0)).to_string() == rt.to_string());
  }
}

TEST_CASE("elementwise ops map over the values", "[ragged]") {
  RaggedTensor rt = ragged::constant({{1.0, 2.0}, {3.0}});
  CHECK(str(rt * 2) == "<kiln.RaggedTensor [[2.0, 4.0], [6.0]]>");
  CHECK(str(1 - rt) == "<kiln.RaggedTensor [[0.0, -1.0], [-2.0]]>");
  CHECK(str(rt + rt) == "<kiln.RaggedTensor [[2.0, 4.0], [6.0]]>");
  CHECK(str(rt / constant(2.0)) == "<kiln.RaggedTensor [[0.5, 1.0], [1.5]]>");
  CHECK(str(ragged::map_values([](const Tensor& v) { return square(v); }, rt)) ==
        "<kiln.RaggedTensor [[1.0, 4.0], [9.0]]>");
  RaggedTensor words = ragged::constant({{"Ab"}, {"cD", "e"}});
  CHECK(str(ragged::map_values(strings::upper, words)) == "<kiln.RaggedTensor [[b'AB'], [b'CD', b'E']]>");
  CHECK(str(ragged::map_values([](const Tensor& v) { return strings::length(v); }, words)) ==
        "<kiln.RaggedTensor [[2], [2, 1]]>");
  RaggedTensor other = ragged::constant({{1.0}, {2.0, 3.0}});
  CHECK_THROWS_MATCHES(rt + other, InvalidArgument,
                       Catch::Matchers::Message("[ragged.add] the operands have different row splits: [0 2 3] and [0 1 "
                                                "3]"));
  CHECK_THROWS_WITH(rt * constant({1.0, 2.0}), Catch::Contains("must be a scalar"));
  CHECK_THROWS_WITH(rt + ragged::constant({{1, 2}, {3}}), Catch::StartsWith("[add]"));
  CHECK_THROWS_WITH(ragged::map_values([](const Tensor& v) { return reduce_sum(v); }, rt), Catch::Contains("scalar"));
}

TEST_CASE("reductions along each axis", "[ragged]") {
  RaggedTensor rt = ragged::constant({{3.0, 1.0, 4.0, 1.0}, {}, {5.0, 9.0}, {2.0}});
  CHECK(ragged::reduce_sum(rt).item<float>() == 25.0f);
  CHECK(ragged::reduce_sum(rt, 1).to_vector<float>() == std::vector<float>{9, 0, 14, 2});
  CHECK(ragged::reduce_sum(rt, -1).to_vector<float>() == std::vector<float>{9, 0, 14, 2});
  CHECK(ragged::reduce_sum(rt, 0).to_vector<float>() == std::vector<float>{10, 10, 4, 1});
  auto mean = ragged::reduce_mean(rt, 1).to_vector<float>();
  CHECK(mean[0] == 2.25f);
  CHECK(std::isnan(mean[1]));
  CHECK(mean[2] == 7.0f);
  CHECK(ragged::reduce_mean(rt, 0).to_vector<float>() == std::vector<float>{10.0f / 3, 5, 4, 1});
  CHECK(ragged::reduce_mean(rt).item<float>() == 25.0f / 7);
  CHECK(ragged::reduce_max(rt, 1).to_vector<float>() ==
        std::vector<float>{4, std::numeric_limits<float>::lowest(), 9, 2});
  CHECK(ragged::reduce_min(rt, 1).to_vector<float>() == std::vector<float>{1, std::numeric_limits<float>::max(), 5, 2});
  CHECK(ragged::reduce_max(rt, 0).to_vector<float>() == std::vector<float>{5, 9, 4, 1});
  CHECK(ragged::reduce_max(rt).item<float>() == 9.0f);
  RaggedTensor ints = ragged::constant({{1, 2}, {-3, -4, 0}});
  CHECK(ragged::reduce_mean(ints, 1).to_vector<int32_t>() == std::vector<int32_t>{1, -2});
  CHECK(ragged::reduce_max(ints, 1).to_vector<int32_t>() == std::vector<int32_t>{2, 0});
  RaggedTensor inner = ragged::constant({{{1, 2}, {3, 4}}, {{5, 6}}});
  CHECK(ragged::reduce_sum(inner, 1).to_vector<int32_t>() == std::vector<int32_t>{4, 6, 5, 6});
  CHECK(ragged::reduce_mean(inner, 1).to_vector<int32_t>() == std::vector<int32_t>{2, 3, 5, 6});
  CHECK_THROWS_WITH(ragged::reduce_sum(inner, 2), Catch::Contains("map_values"));
  CHECK_THROWS_WITH(ragged::reduce_sum(rt, 2), Catch::StartsWith("[ragged.reduce_sum]"));
  CHECK_THROWS_WITH(ragged::reduce_max(ragged::constant({{true}}), 1), Catch::Contains("no ordering"));
}

TEST_CASE("concat along rows and within rows", "[ragged]") {
  RaggedTensor a = ragged::constant({{1, 2}, {3}});
  RaggedTensor b = ragged::constant({{}, {4, 5}});
  CHECK(str(ragged::concat({a, b})) == "<kiln.RaggedTensor [[1, 2], [3], [], [4, 5]]>");
  CHECK(str(ragged::concat({a, b}, 1)) == "<kiln.RaggedTensor [[1, 2], [3, 4, 5]]>");
  CHECK(str(ragged::concat({a})) == str(a));
  CHECK_THROWS_WITH(ragged::concat({a, ragged::constant({{1}})}, 1), Catch::Contains("same number of rows"));
  CHECK_THROWS_WITH(ragged::concat({a, ragged::constant({{1.0}})}), Catch::StartsWith("[concat]"));
  CHECK_THROWS_WITH(ragged::concat({}), Catch::Contains("at least one"));
  CHECK_THROWS_WITH(ragged::concat({a, b}, 2), Catch::StartsWith("[ragged.concat]"));
  RaggedTensor words = ragged::concat({ragged::constant({{"a"}}), ragged::constant({{"b", "c"}})}, 1);
  CHECK(str(words) == "<kiln.RaggedTensor [[b'a', b'b', b'c']]>");
}

TEST_CASE("gradients flow through ragged values", "[ragged][autodiff]") {
  Tensor values = constant({1.0, 2.0, 3.0, 4.0});
  const Tensor splits = constant(I64{0, 3, 3, 4}, {4});
  GradientTape tape(true);
  tape.watch(values);
  RaggedTensor rt = RaggedTensor::from_row_splits(values, splits);
  Tensor loss = reduce_sum(square(ragged::reduce_sum(rt * 2.0f, 1)));
  // row sums 12, 0, 8: d loss / d v = 2 * 2 * rowsum
  CHECK(tape.gradient(loss, values).to_vector<float>() == std::vector<float>{48, 48, 48, 32});
  Tensor padded = reduce_sum(rt.to_tensor() * constant({1.0, 10.0, 100.0}));
  CHECK(tape.gradient(padded, values).to_vector<float>() == std::vector<float>{1, 10, 100, 1});
  Tensor top = reduce_sum(ragged::reduce_max(rt, 1));
  CHECK(tape.gradient(top, values).to_vector<float>()[2] == 1.0f);
  auto f = [&](const std::vector<Tensor>& in) {
    RaggedTensor r = RaggedTensor::from_row_splits(in[0], splits);
    return ragged::reduce_mean(ragged::concat({r, r * r}, 1), 1);
  };
  auto check = autodiff::check_gradients(
      [&](const std::vector<Tensor>& in) {
        Tensor m = f(in);
        // the empty row's mean is NaN; check the others
        return gather(m, constant({0, 2}));
      },
      {constant({1.0, 2.0, 3.0, 4.0}, float64)});
  INFO(check.report);
  CHECK(check.ok);
}
