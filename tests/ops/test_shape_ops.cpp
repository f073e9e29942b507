// Shape and data-movement ops: transpose, expand_dims, squeeze, concat, stack, split, tile,
// broadcast_to, pad, reverse, shape_of, rank, size — results, dtypes, views and errors.
#include <catch2/catch.hpp>

#include <complex>
#include <functional>
#include <numeric>

#include "ops/ops.h"

using namespace kiln;

namespace {

using I32 = std::vector<int32_t>;

// 0, 1, 2, ... in `shape`, wrapping at 127 so that int8 and bfloat16 hold every value exactly;
// for bool the values alternate, for complex the imaginary part is the negated real part.
template <class T>
Tensor iota(const Shape& shape) {
  std::vector<T> v(static_cast<size_t>(shape.num_elements()));
  for (size_t i = 0; i < v.size(); ++i) {
    const int k = static_cast<int>(i % 127);
    if constexpr (std::is_same_v<T, bool>)
      v[i] = i % 2 == 1;
    else if constexpr (is_complex_v<T>)
      v[i] = T(typename T::value_type(k), -typename T::value_type(k));
    else
      v[i] = T(k);
  }
  return constant(v, shape);
}

// int32 0, 1, 2, ... without wrapping: each value is its flat position.
Tensor positions(const Shape& shape) {
  std::vector<int32_t> v(static_cast<size_t>(shape.num_elements()));
  std::iota(v.begin(), v.end(), 0);
  return constant(v, shape);
}

// Reads the values an iota<T> tensor was built from back as integers (and checks the imaginary
// parts of complex ones).
template <class T>
std::vector<int64_t> ids(const Tensor& t) {
  std::vector<int64_t> out;
  for (const T& v : t.to_vector<T>()) {
    if constexpr (is_complex_v<T>) {
      CHECK(v.imag() == -v.real());
      out.push_back(static_cast<int64_t>(v.real()));
    } else if constexpr (std::is_same_v<T, bool>) {
      out.push_back(v ? 1 : 0);
    } else {
      out.push_back(static_cast<int64_t>(static_cast<float>(v)));
    }
  }
  return out;
}

// What ids<T> gives for the iota<T> elements at flat `positions`.
template <class T>
std::vector<int64_t> expect_ids(const std::vector<int32_t>& positions) {
  std::vector<int64_t> out;
  for (int32_t p : positions) out.push_back(std::is_same_v<T, bool> ? p % 2 : p % 127);
  return out;
}

std::vector<int64_t> dims(const Tensor& t) { return t.shape().as_list(); }

bool shares_storage(const Tensor& a, const Tensor& b) { return a.impl()->storage.get() == b.impl()->storage.get(); }

// Reference transpose of a row-major iota of `shape` (values are flat input positions).
I32 ref_transpose(const Shape& shape, const std::vector<int64_t>& perm) {
  const int64_t r = shape.rank();
  std::vector<int64_t> in_st(static_cast<size_t>(r), 1), out_dims(static_cast<size_t>(r));
  for (int64_t i = r - 2; i >= 0; --i) in_st[i] = in_st[i + 1] * shape.dim(i + 1);
  for (int64_t i = 0; i < r; ++i) out_dims[i] = shape.dim(perm[i]);
  I32 out;
  std::vector<int64_t> idx(static_cast<size_t>(r), 0);
  for (int64_t n = 0; n < shape.num_elements(); ++n) {
    int64_t src = 0;
    for (int64_t i = 0; i < r; ++i) src += idx[i] * in_st[perm[i]];
    out.push_back(static_cast<int32_t>(src));
    for (int64_t i = r - 1; i >= 0; --i) {
      if (++idx[i] < out_dims[i]) break;
      idx[i] = 0;
    }
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// transpose

TEST_CASE("transpose of a matrix", "[shape][transpose]") {
  Tensor m = iota<int32_t>({2, 3});
  Tensor t = transpose(m);
  CHECK(dims(t) == std::vector<int64_t>{3, 2});
  CHECK(t.to_vector<int32_t>() == I32{0, 3, 1, 4, 2, 5});
  CHECK(transpose(m, {1, 0}).to_vector<int32_t>() == I32{0, 3, 1, 4, 2, 5});
  CHECK(transpose(m, {0, 1}).to_vector<int32_t>() == I32{0, 1, 2, 3, 4, 5});
  CHECK(transpose(m, {-1, -2}).to_vector<int32_t>() == I32{0, 3, 1, 4, 2, 5});
}

TEST_CASE("transpose in N dimensions matches a reference", "[shape][transpose]") {
  const std::vector<std::pair<Shape, std::vector<int64_t>>> cases = {
      {{2, 3, 4}, {1, 0, 2}},       {{2, 3, 4}, {2, 1, 0}},
      {{2, 3, 4}, {0, 2, 1}},       {{2, 3, 4}, {1, 2, 0}},
      {{2, 1, 3, 5}, {3, 1, 0, 2}}, {{2, 3, 4, 5}, {0, 3, 1, 2}},
      {{7, 65, 33}, {0, 2, 1}},     {{7, 65, 33}, {2, 0, 1}},
      {{300, 517}, {1, 0}},         {{3, 2, 2, 3, 2}, {4, 2, 0, 3, 1}}};
  for (const auto& [shape, perm] : cases) {
    INFO("shape " << shape.to_string() << " perm " << perm[0] << "," << perm[1]);
    Tensor x = positions(shape);
    Tensor t = transpose(x, perm);
    CHECK(t.to_vector<int32_t>() == ref_transpose(shape, perm));
  }
}

TEMPLATE_TEST_CASE("transpose works for every element size", "[shape][transpose]", bool, int8_t, uint16_t, int32_t,
                   int64_t, Half, BFloat16, float, double, complex64_t, complex128_t) {
  Tensor x = iota<TestType>({3, 4, 5});
  CHECK(ids<TestType>(transpose(x, {2, 0, 1})) == expect_ids<TestType>(ref_transpose({3, 4, 5}, {2, 0, 1})));
  CHECK(ids<TestType>(transpose(x, {1, 0, 2})) == expect_ids<TestType>(ref_transpose({3, 4, 5}, {1, 0, 2})));
  Tensor big = iota<TestType>({40, 70});
  CHECK(ids<TestType>(transpose(big)) == expect_ids<TestType>(ref_transpose({40, 70}, {1, 0})));
}

TEST_CASE("transpose of scalars, empty tensors and size-1 axes", "[shape][transpose]") {
  Tensor s = scalar(7.5);
  CHECK(transpose(s).item<double>() == 7.5);
  Tensor e = constant(std::vector<float>{}, Shape{0, 3});
  Tensor te = transpose(e);
  CHECK(dims(te) == std::vector<int64_t>{3, 0});
  CHECK(te.num_elements() == 0);
  // moving only size-1 axes keeps the memory order: a view, no copy
  Tensor row = iota<float>({1, 5});
  Tensor col = transpose(row);
  CHECK(dims(col) == std::vector<int64_t>{5, 1});
  CHECK(shares_storage(row, col));
  CHECK(!col.is_same(row));
  CHECK(col.to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4});
}

TEST_CASE("transpose errors", "[shape][transpose][errors]") {
  Tensor m = iota<int32_t>({2, 3});
  CHECK_THROWS_AS(transpose(m, {0, 0}), InvalidArgument);
  CHECK_THROWS_WITH(transpose(m, {0, 0}),
                    "[transpose] perm [0, 0] is not a permutation of the axes of a rank-2 tensor");
  CHECK_THROWS_WITH(transpose(m, {0, 1, 2}), "[transpose] perm [0, 1, 2] has 3 entries but x has rank 2");
  CHECK_THROWS_AS(transpose(m, {0, 2}), InvalidArgument);
  CHECK_THROWS_AS(transpose(Tensor(), {}), InvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// expand_dims, squeeze

TEST_CASE("expand_dims inserts a size-1 axis and shares storage", "[shape][expand_dims]") {
  Tensor m = iota<int32_t>({2, 3});
  CHECK(dims(expand_dims(m, 0)) == std::vector<int64_t>{1, 2, 3});
  CHECK(dims(expand_dims(m, 1)) == std::vector<int64_t>{2, 1, 3});
  CHECK(dims(expand_dims(m, 2)) == std::vector<int64_t>{2, 3, 1});
  CHECK(dims(expand_dims(m, -1)) == std::vector<int64_t>{2, 3, 1});
  CHECK(dims(expand_dims(m, -3)) == std::vector<int64_t>{1, 2, 3});
  Tensor e = expand_dims(m, 1);
  CHECK(shares_storage(e, m));
  CHECK(!e.is_same(m));
  CHECK(e.to_vector<int32_t>() == I32{0, 1, 2, 3, 4, 5});
  CHECK(dims(expand_dims(scalar(true), 0)) == std::vector<int64_t>{1});
  CHECK(dims(expand_dims(constant(std::vector<Half>{}, Shape{0}), 0)) == std::vector<int64_t>{1, 0});
  CHECK_THROWS_WITH(expand_dims(m, 3),
                    "[expand_dims] axis 3 is out of range for a tensor of rank 2 (expected [-3, 2])");
  CHECK_THROWS_AS(expand_dims(m, -4), InvalidArgument);
}

TEST_CASE("squeeze removes size-1 axes", "[shape][squeeze]") {
  Tensor x = iota<complex128_t>({1, 2, 1, 3});
  CHECK(dims(squeeze(x)) == std::vector<int64_t>{2, 3});
  CHECK(dims(squeeze(x, {0})) == std::vector<int64_t>{2, 1, 3});
  CHECK(dims(squeeze(x, {-2})) == std::vector<int64_t>{1, 2, 3});
  CHECK(dims(squeeze(x, {0, 2})) == std::vector<int64_t>{2, 3});
  Tensor s = squeeze(x);
  CHECK(shares_storage(s, x));
  CHECK(ids<complex128_t>(s) == std::vector<int64_t>{0, 1, 2, 3, 4, 5});
  CHECK(dims(squeeze(scalar(int8_t{3}))).empty());
  CHECK(dims(squeeze(constant(std::vector<float>{}, Shape{1, 0}))) == std::vector<int64_t>{0});
  CHECK(dims(squeeze(iota<float>({1, 1}))).empty());
}

TEST_CASE("squeeze errors name the axis and its size", "[shape][squeeze][errors]") {
  Tensor x = iota<float>({1, 2, 1, 3});
  CHECK_THROWS_AS(squeeze(x, {1}), InvalidArgument);
  CHECK_THROWS_WITH(
      squeeze(x, {1}),
      "[squeeze] cannot squeeze axis 1 of size 2 (shape (1, 2, 1, 3)): only axes of size 1 can be squeezed");
  CHECK_THROWS_WITH(squeeze(x, {4}), "[squeeze] axis 4 is out of range for a tensor of rank 4 (expected [-4, 4))");
  CHECK_THROWS_AS(squeeze(x, {0, -4}), InvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// concat, stack

TEST_CASE("concat along each axis", "[shape][concat]") {
  Tensor a = constant({{1, 2}, {3, 4}});
  Tensor b = constant({{5, 6}});
  Tensor c = constant({{7}, {8}});
  Tensor r0 = concat({a, b}, 0);
  CHECK(dims(r0) == std::vector<int64_t>{3, 2});
  CHECK(r0.to_vector<int32_t>() == I32{1, 2, 3, 4, 5, 6});
  Tensor r1 = concat({a, c}, 1);
  CHECK(dims(r1) == std::vector<int64_t>{2, 3});
  CHECK(r1.to_vector<int32_t>() == I32{1, 2, 7, 3, 4, 8});
  CHECK(concat({a, c, a}, -1).to_vector<int32_t>() == I32{1, 2, 7, 1, 2, 3, 4, 8, 3, 4});
  CHECK(concat({a}, 0).to_vector<int32_t>() == I32{1, 2, 3, 4});
  // empty pieces contribute nothing
  Tensor e = constant(std::vector<int32_t>{}, Shape{0, 2});
  CHECK(concat({e, a, e}, 0).to_vector<int32_t>() == I32{1, 2, 3, 4});
  CHECK(dims(concat({e, e}, 1)) == std::vector<int64_t>{0, 4});
}

TEMPLATE_TEST_CASE("concat works for every element size", "[shape][concat]", bool, uint8_t, Half, int32_t, double,
                   complex128_t) {
  Tensor x = iota<TestType>({2, 3});
  Tensor y = iota<TestType>({2, 1});
  CHECK(ids<TestType>(concat({x, y}, 1)) == expect_ids<TestType>({0, 1, 2, 0, 3, 4, 5, 1}));
  CHECK(ids<TestType>(concat({y, y}, 0)) == expect_ids<TestType>({0, 1, 0, 1}));
}

TEST_CASE("large concat matches a reference", "[shape][concat]") {
  Tensor a = positions({500, 300});
  Tensor b = positions({500, 200});
  Tensor r = concat({a, b}, 1);
  std::vector<int32_t> got = r.to_vector<int32_t>();
  bool ok = true;
  for (int i = 0; i < 500; ++i)
    for (int j = 0; j < 500; ++j) ok &= got[size_t(i * 500 + j)] == (j < 300 ? i * 300 + j : i * 200 + j - 300);
  CHECK(ok);
  Tensor r0 = concat({a, a}, 0);
  CHECK(r0.to_vector<int32_t>()[150000] == 0);
  CHECK(r0.to_vector<int32_t>()[299999] == 149999);
}

TEST_CASE("concat errors", "[shape][concat][errors]") {
  Tensor a = constant({{1, 2}, {3, 4}});
  CHECK_THROWS_WITH(concat({}, 0), "[concat] needs at least one input tensor");
  CHECK_THROWS_WITH(
      concat({a, constant({{1.0f, 2.0f}})}, 0),
      "[concat] input 1 has dtype float32 but input 0 has dtype int32; all inputs must have the same dtype");
  CHECK_THROWS_WITH(concat({a, constant({1, 2})}, 0),
                    "[concat] input 1 has rank 1 (shape (2,)) but input 0 has rank 2 (shape (2, 2))");
  CHECK_THROWS_WITH(concat({a, constant({{1, 2, 3}})}, 0),
                    "[concat] input 1 has shape (1, 3) but input 0 has shape (2, 2); dims must match except on axis 0");
  CHECK_THROWS_WITH(concat({scalar(1), scalar(2)}, 0),
                    "[concat] cannot concatenate scalars (rank-0 tensors); use stack");
  CHECK_THROWS_AS(concat({a, a}, 2), InvalidArgument);
  CHECK_THROWS_AS(concat({a, Tensor()}, 0), InvalidArgument);
}

TEST_CASE("stack adds an axis", "[shape][stack]") {
  std::vector<Tensor> xs = {constant({1, 2}), constant({3, 4}), constant({5, 6})};
  Tensor s0 = stack(xs);
  CHECK(dims(s0) == std::vector<int64_t>{3, 2});
  CHECK(s0.to_vector<int32_t>() == I32{1, 2, 3, 4, 5, 6});
  Tensor s1 = stack(xs, 1);
  CHECK(dims(s1) == std::vector<int64_t>{2, 3});
  CHECK(s1.to_vector<int32_t>() == I32{1, 3, 5, 2, 4, 6});
  CHECK(stack(xs, -1).to_vector<int32_t>() == I32{1, 3, 5, 2, 4, 6});
  Tensor sc = stack({scalar(1.5), scalar(2.5)});
  CHECK(dims(sc) == std::vector<int64_t>{2});
  CHECK(sc.to_vector<double>() == std::vector<double>{1.5, 2.5});
  CHECK_THROWS_WITH(stack({}), "[stack] needs at least one tensor");
  CHECK_THROWS_WITH(stack({constant({1, 2}), constant({1, 2, 3})}),
                    "[stack] input 1 has shape (3,) but input 0 has shape (2,); all inputs must have the same shape");
  CHECK_THROWS_WITH(stack(xs, 2), "[stack] axis 2 is out of range for stacking tensors of rank 1 (expected [-2, 1])");
}

// ---------------------------------------------------------------------------------------------
// split

TEST_CASE("split into equal parts", "[shape][split]") {
  Tensor x = iota<int32_t>({6});
  std::vector<Tensor> parts = split(x, 3);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].to_vector<int32_t>() == I32{0, 1});
  CHECK(parts[1].to_vector<int32_t>() == I32{2, 3});
  CHECK(parts[2].to_vector<int32_t>() == I32{4, 5});
  // pieces of the leading axis are contiguous: views
  CHECK(shares_storage(parts[1], x));
  Tensor m = iota<int32_t>({2, 4});
  std::vector<Tensor> cols = split(m, 2, 1);
  REQUIRE(cols.size() == 2);
  CHECK(dims(cols[0]) == std::vector<int64_t>{2, 2});
  CHECK(cols[0].to_vector<int32_t>() == I32{0, 1, 4, 5});
  CHECK(cols[1].to_vector<int32_t>() == I32{2, 3, 6, 7});
  CHECK(split(m, 2, -1)[1].to_vector<int32_t>() == I32{2, 3, 6, 7});
}

TEST_CASE("split by sizes, with one inferred", "[shape][split]") {
  Tensor m = iota<complex128_t>({2, 6});
  std::vector<Tensor> parts = split(m, {1, -1, 2}, 1);
  REQUIRE(parts.size() == 3);
  CHECK(dims(parts[0]) == std::vector<int64_t>{2, 1});
  CHECK(dims(parts[1]) == std::vector<int64_t>{2, 3});
  CHECK(dims(parts[2]) == std::vector<int64_t>{2, 2});
  CHECK(ids<complex128_t>(parts[0]) == std::vector<int64_t>{0, 6});
  CHECK(ids<complex128_t>(parts[1]) == std::vector<int64_t>{1, 2, 3, 7, 8, 9});
  CHECK(ids<complex128_t>(parts[2]) == std::vector<int64_t>{4, 5, 10, 11});
  std::vector<Tensor> z = split(m, {0, 6}, 1);
  CHECK(dims(z[0]) == std::vector<int64_t>{2, 0});
  CHECK(ids<complex128_t>(z[1]) == ids<complex128_t>(m));
  std::vector<Tensor> b = split(iota<bool>({4}), {3, 1}, 0);
  CHECK(b[0].to_vector<bool>() == std::vector<bool>{false, true, false});
  CHECK(b[1].to_vector<bool>() == std::vector<bool>{true});
}

TEST_CASE("split errors", "[shape][split][errors]") {
  Tensor x = iota<float>({6});
  CHECK_THROWS_WITH(split(x, 4), "[split] cannot split an axis of size 6 into 4 equal parts");
  CHECK_THROWS_WITH(split(x, 0), "[split] num must be >= 1, got 0");
  CHECK_THROWS_WITH(split(x, {1, 2}, 0), "[split] sizes [1, 2] do not sum to the size 6 of the axis");
  CHECK_THROWS_WITH(split(x, {-1, -1}, 0), "[split] sizes [-1, -1] has more than one -1");
  CHECK_THROWS_WITH(split(x, {7, -1}, 0), "[split] sizes [7, -1] do not sum to the size 6 of the axis");
  CHECK_THROWS_AS(split(x, {-2, 8}, 0), InvalidArgument);
  CHECK_THROWS_WITH(split(scalar(1.0f), 1), "[split] cannot split a scalar (rank-0 tensor)");
  CHECK_THROWS_AS(split(x, 2, 1), InvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// tile, broadcast_to

TEST_CASE("tile repeats along each axis", "[shape][tile]") {
  Tensor a = constant({{1, 2}, {3, 4}});
  Tensor t = tile(a, {2, 3});
  CHECK(dims(t) == std::vector<int64_t>{4, 6});
  CHECK(t.to_vector<int32_t>() == I32{1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4, 1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4});
  CHECK(tile(constant({1, 2}), {3}).to_vector<int32_t>() == I32{1, 2, 1, 2, 1, 2});
  CHECK(tile(a, {1, 2}).to_vector<int32_t>() == I32{1, 2, 1, 2, 3, 4, 3, 4});
  CHECK(dims(tile(a, {0, 2})) == std::vector<int64_t>{0, 4});
  Tensor same = tile(a, {1, 1});
  CHECK(shares_storage(same, a));
  CHECK(same.to_vector<int32_t>() == I32{1, 2, 3, 4});
  CHECK(tile(scalar(Half(2.5f)), {}).item<Half>() == 2.5f);
  CHECK(ids<Half>(tile(iota<Half>({2, 1}), {2, 3})) == std::vector<int64_t>{0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1});
  CHECK(ids<complex128_t>(tile(iota<complex128_t>({3}), {2})) == std::vector<int64_t>{0, 1, 2, 0, 1, 2});
  CHECK_THROWS_WITH(tile(a, {2}), "[tile] multiples [2] has 1 entries but x has rank 2 (shape (2, 2))");
  CHECK_THROWS_WITH(tile(a, {2, -1}), "[tile] multiples [2, -1] has a negative entry -1");
  CHECK_THROWS_AS(tile(a, {int64_t{1} << 62, 4}), InvalidArgument);
}

TEST_CASE("broadcast_to follows TensorFlow's rules", "[shape][broadcast_to]") {
  Tensor v = constant({1, 2, 3});
  Tensor b = broadcast_to(v, {2, 3});
  CHECK(dims(b) == std::vector<int64_t>{2, 3});
  CHECK(b.to_vector<int32_t>() == I32{1, 2, 3, 1, 2, 3});
  Tensor c = broadcast_to(constant({{1}, {2}}), {2, 2, 3});
  CHECK(c.to_vector<int32_t>() == I32{1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2});
  CHECK(broadcast_to(scalar(true), {2, 2}).to_vector<bool>() == std::vector<bool>{true, true, true, true});
  CHECK(shares_storage(broadcast_to(v, {3}), v));
  CHECK(dims(broadcast_to(v, {0, 3})) == std::vector<int64_t>{0, 3});
  CHECK(ids<complex64_t>(broadcast_to(iota<complex64_t>({2, 1}), {2, 2})) == std::vector<int64_t>{0, 0, 1, 1});
  CHECK_THROWS_WITH(broadcast_to(v, {4}), "[broadcast_to] cannot broadcast a tensor of shape [3] to shape [4]");
  CHECK_THROWS_WITH(broadcast_to(constant({{1, 2, 3}}), {3}),
                    "[broadcast_to] cannot broadcast a tensor of shape [1, 3] to shape [3]");
  CHECK_THROWS_AS(broadcast_to(v, {-1, 3}), InvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// pad

TEST_CASE("pad with a constant", "[shape][pad]") {
  Tensor a = constant({{1, 2}, {3, 4}});
  Tensor p = pad(a, {{1, 0}, {0, 2}}, 9);
  CHECK(dims(p) == std::vector<int64_t>{3, 4});
  CHECK(p.to_vector<int32_t>() == I32{9, 9, 9, 9, 1, 2, 9, 9, 3, 4, 9, 9});
  CHECK(pad(a, {{0, 1}, {1, 1}}).to_vector<int32_t>() == I32{0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0});
  CHECK(shares_storage(pad(a, {{0, 0}, {0, 0}}), a));
  Tensor h = pad(constant(std::vector<Half>{Half(1.0f)}, Shape{1}), {{1, 1}}, 1.5);
  CHECK(h.to_vector<Half>()[0] == 1.5f);
  CHECK(h.to_vector<Half>()[1] == 1.0f);
  CHECK(pad(constant({true}), {{2, 0}}, 1).to_vector<bool>() == std::vector<bool>{true, true, true});
  Tensor z = pad(constant(std::vector<complex128_t>{{1, 2}}, Shape{1}), {{0, 1}}, -3);
  CHECK(z.to_vector<complex128_t>() == std::vector<complex128_t>{{1, 2}, {-3, 0}});
  // an empty input pads to a tensor of the constant
  Tensor e = pad(constant(std::vector<float>{}, Shape{0, 2}), {{1, 1}, {0, 0}}, 0.25);
  CHECK(e.to_vector<float>() == std::vector<float>{0.25f, 0.25f, 0.25f, 0.25f});
  CHECK(pad(scalar(int64_t{5}), {}).item<int64_t>() == 5);
}

TEST_CASE("pad errors", "[shape][pad][errors]") {
  Tensor a = constant({{1, 2}, {3, 4}});
  CHECK_THROWS_AS(pad(a, {{1, 0}, {0, 2}}, 0.5), InvalidArgument);
  CHECK_THROWS_WITH(pad(a, {{1, 0}, {0, 2}}, 0.5), "[pad] constant_value 0.5 is not exactly representable as int32");
  CHECK_THROWS_WITH(pad(constant(std::vector<uint8_t>{1}, Shape{1}), {{1, 0}}, 256),
                    "[pad] constant_value 256 is not exactly representable as uint8");
  CHECK_THROWS_AS(pad(constant({true}), {{1, 0}}, 2), InvalidArgument);
  CHECK_THROWS_WITH(pad(constant(std::vector<Half>{Half(1.0f)}, Shape{1}), {{1, 0}}, 1e6),
                    "[pad] constant_value 1e+06 overflows float16");
  CHECK_THROWS_WITH(pad(a, {{1, 0}}), "[pad] paddings has 1 (before, after) pairs but x has rank 2 (shape (2, 2))");
  CHECK_THROWS_WITH(pad(a, {{1, 0}, {-1, 0}}), "[pad] paddings for axis 1 are (-1, 0); they must be non-negative");
  CHECK_THROWS_AS(pad(constant(std::vector<int64_t>{1}, Shape{1}), {{0, 0}}, 9.3e18), InvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// reverse

TEST_CASE("reverse along axes", "[shape][reverse]") {
  CHECK(reverse(constant({1, 2, 3}), {0}).to_vector<int32_t>() == I32{3, 2, 1});
  Tensor m = iota<int32_t>({2, 3});
  CHECK(reverse(m, {0}).to_vector<int32_t>() == I32{3, 4, 5, 0, 1, 2});
  CHECK(reverse(m, {1}).to_vector<int32_t>() == I32{2, 1, 0, 5, 4, 3});
  CHECK(reverse(m, {-1}).to_vector<int32_t>() == I32{2, 1, 0, 5, 4, 3});
  CHECK(reverse(m, {0, 1}).to_vector<int32_t>() == I32{5, 4, 3, 2, 1, 0});
  CHECK(reverse(m, Axes{}).to_vector<int32_t>() == I32{5, 4, 3, 2, 1, 0});
  CHECK(reverse(m, std::vector<int64_t>{}).to_vector<int32_t>() == I32{0, 1, 2, 3, 4, 5});
  CHECK(ids<complex128_t>(reverse(iota<complex128_t>({2, 2}), {1})) == std::vector<int64_t>{1, 0, 3, 2});
  CHECK(reverse(iota<bool>({3}), {0}).to_vector<bool>() == std::vector<bool>{false, true, false});
  CHECK(reverse(scalar(2.0f), Axes{}).item<float>() == 2.0f);
  CHECK(dims(reverse(constant(std::vector<float>{}, Shape{0, 3}), {0, 1})) == std::vector<int64_t>{0, 3});
  Tensor big = positions({100000});
  std::vector<int32_t> r = reverse(big, {0}).to_vector<int32_t>();
  CHECK(r.front() == 99999);
  CHECK(r.back() == 0);
  CHECK(r[12345] == 99999 - 12345);
  CHECK_THROWS_WITH(reverse(m, {1, -1}), "[reverse] axis -1 is listed more than once in [1, -1]");
  CHECK_THROWS_AS(reverse(m, {2}), InvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// shape_of, rank, size

TEST_CASE("shape_of, rank and size", "[shape][shape_of]") {
  Tensor m = iota<float>({2, 3});
  Tensor s = shape_of(m);
  CHECK(s.dtype() == int32);
  CHECK(s.to_vector<int32_t>() == I32{2, 3});
  CHECK(shape_of(m, int64).to_vector<int64_t>() == std::vector<int64_t>{2, 3});
  CHECK(dims(shape_of(scalar(1))) == std::vector<int64_t>{0});
  CHECK_THROWS_WITH(shape_of(m, float32), "[shape_of] out_type must be int32 or int64, got float32");
  Tensor r = rank(m);
  CHECK(r.dtype() == int32);
  CHECK(r.ndim() == 0);
  CHECK(r.item<int32_t>() == 2);
  CHECK(rank(scalar(1)).item<int32_t>() == 0);
  CHECK(size(m).item<int32_t>() == 6);
  CHECK(size(m, int64).item<int64_t>() == 6);
  CHECK(size(constant(std::vector<float>{}, Shape{3, 0})).item<int32_t>() == 0);
  CHECK(size(scalar(1)).item<int32_t>() == 1);
  CHECK_THROWS_AS(size(m, float32), InvalidArgument);
}

TEST_CASE("range_like numbers the elements along an axis of a tensor's shape", "[shape][range_like]") {
  Tensor m = iota<float>({2, 3});
  Tensor r0 = range_like(m);
  CHECK(r0.dtype() == int64);
  CHECK(r0.shape() == Shape{2, 3});
  CHECK(r0.to_vector<int64_t>() == std::vector<int64_t>{0, 0, 0, 1, 1, 1});
  CHECK(range_like(m, 1, int32).to_vector<int32_t>() == I32{0, 1, 2, 0, 1, 2});
  CHECK(range_like(m, -1, int32).to_vector<int32_t>() == I32{0, 1, 2, 0, 1, 2});
  // only the shape is read: strings and empty tensors work
  CHECK(range_like(constant({"a", "b"}), 0).to_vector<int64_t>() == std::vector<int64_t>{0, 1});
  CHECK(range_like(constant(std::vector<float>{}, Shape{3, 0}), 0).shape() == Shape{3, 0});
  CHECK_THROWS_WITH(range_like(m, 2), Catch::Contains("[range_like] axis 2 is out of range"));
  CHECK_THROWS_WITH(range_like(scalar(1.0f)), Catch::Contains("(rank 0)"));
  CHECK_THROWS_WITH(range_like(m, 0, float32), "[range_like] dtype must be int32 or int64, got float32");
}
