// Indexing: gather, one_hot, strided_slice and Tensor::index (NumPy semantics) — results,
// dtypes, views, and the errors for out-of-range indices.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>

#include "ops/dispatch.h"
#include "ops/ops.h"

using namespace kiln;

namespace {

using I32 = std::vector<int32_t>;
using I64 = std::vector<int64_t>;

template <class T>
Tensor iota(const Shape& shape) {
  std::vector<T> v(static_cast<size_t>(shape.num_elements()));
  for (size_t i = 0; i < v.size(); ++i) {
    if constexpr (std::is_same_v<T, bool>)
      v[i] = i % 2 == 1;
    else if constexpr (is_complex_v<T>)
      v[i] = T(typename T::value_type(i), -typename T::value_type(i));
    else
      v[i] = T(static_cast<int>(i));
  }
  return constant(v, shape);
}

I64 dims(const Tensor& t) { return t.shape().as_list(); }

bool shares_storage(const Tensor& a, const Tensor& b) { return a.impl()->storage.get() == b.impl()->storage.get(); }

Tensor rank_1() { return constant({0, 1, 1, 2, 3, 5, 8, 13, 21, 34}); }

// strided_slice called directly, with TensorFlow's masks.
Tensor strided_slice(const Tensor& x, I64 begin, I64 end, I64 strides, int64_t begin_mask = 0, int64_t end_mask = 0,
                     int64_t ellipsis_mask = 0, int64_t new_axis_mask = 0, int64_t shrink_axis_mask = 0) {
  ops::Attrs attrs{{"begin", begin},
                   {"end", end},
                   {"strides", strides},
                   {"begin_mask", begin_mask},
                   {"end_mask", end_mask},
                   {"ellipsis_mask", ellipsis_mask},
                   {"new_axis_mask", new_axis_mask},
                   {"shrink_axis_mask", shrink_axis_mask}};
  return ops::apply1(ops::OpId::StridedSlice, {x}, attrs);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Tensor::index

TEST_CASE("index a vector with slices (the walkthrough's examples)", "[index]") {
  Tensor r = rank_1();
  CHECK(r.index({Slice(None, 4)}).to_vector<int32_t>() == I32{0, 1, 1, 2});
  CHECK(r.index({Slice(2, 7)}).to_vector<int32_t>() == I32{1, 2, 3, 5, 8});
  CHECK(r.index({Slice(None, None, 2)}).to_vector<int32_t>() == I32{0, 1, 3, 8, 21});
  CHECK(r.index({Slice(None, None, -1)}).to_vector<int32_t>() == I32{34, 21, 13, 8, 5, 3, 2, 1, 1, 0});
  Tensor last = r.index({-1});
  CHECK(last.ndim() == 0);
  CHECK(last.item<int32_t>() == 34);
  CHECK(r.index({0}).item<int32_t>() == 0);
  CHECK(r.index({Slice()}).to_vector<int32_t>() == r.to_vector<int32_t>());
}

TEST_CASE("index a matrix", "[index]") {
  Tensor m = constant({{1, 2}, {3, 4}, {5, 6}});
  Tensor row = m.index({1, Slice()});
  CHECK(dims(row) == I64{2});
  CHECK(row.to_vector<int32_t>() == I32{3, 4});
  Tensor col = m.index({Slice(), 1});
  CHECK(dims(col) == I64{3});
  CHECK(col.to_vector<int32_t>() == I32{2, 4, 6});
  Tensor e = m.index({0, -1});
  CHECK(e.ndim() == 0);
  CHECK(e.item<int32_t>() == 2);
  Tensor tail = m.index({Slice(1, None), Slice()});
  CHECK(dims(tail) == I64{2, 2});
  CHECK(tail.to_vector<int32_t>() == I32{3, 4, 5, 6});
  CHECK(m.index({1}).to_vector<int32_t>() == I32{3, 4});
  CHECK(m.index({Slice(None, None, -1), Slice(None, None, -1)}).to_vector<int32_t>() == I32{6, 5, 4, 3, 2, 1});
}

TEST_CASE("index a rank-3 tensor", "[index]") {
  Tensor t = iota<int32_t>({3, 2, 5});
  Tensor a = t.index({Slice(), Slice(), 4});
  CHECK(dims(a) == I64{3, 2});
  CHECK(a.to_vector<int32_t>() == I32{4, 9, 14, 19, 24, 29});
  CHECK(t.index({Ellipsis, 4}).to_vector<int32_t>() == I32{4, 9, 14, 19, 24, 29});
  CHECK(dims(t.index({Ellipsis})) == I64{3, 2, 5});
  CHECK(dims(t.index({1, Ellipsis})) == I64{2, 5});
  CHECK(t.index({1, Ellipsis, Slice(1, 3)}).to_vector<int32_t>() == I32{11, 12, 16, 17});
  CHECK(t.index({-1, -1, -1}).item<int32_t>() == 29);
  CHECK(t.index({Slice(None, None, 2), 0, Slice(3, None)}).to_vector<int32_t>() == I32{3, 4, 23, 24});
}

TEST_CASE("NewAxis inserts size-1 axes", "[index]") {
  Tensor r = rank_1();
  CHECK(dims(r.index({NewAxis})) == I64{1, 10});
  CHECK(dims(r.index({Slice(), NewAxis})) == I64{10, 1});
  CHECK(dims(r.index({Ellipsis, NewAxis})) == I64{10, 1});
  Tensor t = iota<float>({3, 2, 5});
  CHECK(dims(t.index({NewAxis, Ellipsis, NewAxis, 0})) == I64{1, 3, 2, 1});
  CHECK(dims(t.index({0, NewAxis, Slice(), NewAxis, 1})) == I64{1, 2, 1});
  CHECK(dims(scalar(3).index({NewAxis, NewAxis})) == I64{1, 1});
}

TEST_CASE("slices clamp like Python", "[index]") {
  Tensor r = rank_1();
  CHECK(r.index({Slice(8, 100)}).to_vector<int32_t>() == I32{21, 34});
  CHECK(r.index({Slice(-100, 2)}).to_vector<int32_t>() == I32{0, 1});
  CHECK(r.index({Slice(-3, None)}).to_vector<int32_t>() == I32{13, 21, 34});
  CHECK(r.index({Slice(5, 2)}).num_elements() == 0);
  CHECK(r.index({Slice(100, 200)}).num_elements() == 0);
  CHECK(r.index({Slice(5, 2, -1)}).to_vector<int32_t>() == I32{5, 3, 2});
  CHECK(r.index({Slice(100, -100, -3)}).to_vector<int32_t>() == I32{34, 8, 2, 0});
  CHECK(r.index({Slice(-1, None, -4)}).to_vector<int32_t>() == I32{34, 5, 1});
  CHECK(r.index({Slice(None, -1, -1)}).num_elements() == 0);
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max(), kMin = std::numeric_limits<int64_t>::min();
  CHECK(r.index({Slice(kMin, kMax)}).num_elements() == 10);
  CHECK(r.index({Slice(0, None, kMax)}).to_vector<int32_t>() == I32{0});
  CHECK(r.index({Slice(None, None, kMin)}).to_vector<int32_t>() == I32{34});
  CHECK(dims(constant(std::vector<float>{}, Shape{0}).index({Slice(None, None, -1)})) == I64{0});
}

TEMPLATE_TEST_CASE("index works for every element size", "[index]", bool, int8_t, Half, int32_t, int64_t, double,
                   complex128_t) {
  Tensor t = iota<TestType>({4, 3});
  Tensor c = t.index({Slice(None, None, -2), 1});
  REQUIRE(dims(c) == I64{2});
  std::vector<TestType> v = c.to_vector<TestType>();
  Tensor flat = iota<TestType>({12});
  std::vector<TestType> all = flat.to_vector<TestType>();
  std::vector<TestType> want = {all[10], all[4]};
  CHECK(v == want);
}

TEST_CASE("contiguous index results share storage", "[index]") {
  Tensor m = iota<float>({4, 3});
  Tensor row = m.index({2});
  CHECK(shares_storage(row, m));
  CHECK(row.to_vector<float>() == std::vector<float>{6, 7, 8});
  Tensor rows = m.index({Slice(1, 3)});
  CHECK(shares_storage(rows, m));
  CHECK(rows.to_vector<float>() == std::vector<float>{3, 4, 5, 6, 7, 8});
  Tensor e = m.index({Slice(2, 2)});
  CHECK(dims(e) == I64{0, 3});
  Tensor col = m.index({Slice(), 0});
  CHECK(!shares_storage(col, m));
  CHECK(col.to_vector<float>() == std::vector<float>{0, 3, 6, 9});
  Tensor big = iota<int32_t>({1000, 100});
  std::vector<int32_t> rev = big.index({Slice(None, None, -1), Slice(None, None, 3)}).to_vector<int32_t>();
  CHECK(rev.size() == 34000);
  CHECK(rev[0] == 99900);
  CHECK(rev[33] == 99999);
  CHECK(rev[34] == 99800);
}

TEST_CASE("index errors", "[index][errors]") {
  Tensor r = rank_1();
  CHECK_THROWS_AS(r.index({10}), InvalidArgument);
  CHECK_THROWS_WITH(r.index({10}), "[index] index 10 is out of range for axis 0 with size 10");
  CHECK_THROWS_WITH(r.index({-11}), "[index] index -11 is out of range for axis 0 with size 10");
  Tensor m = iota<int32_t>({3, 2});
  CHECK_THROWS_WITH(m.index({Slice(), 2}), "[index] index 2 is out of range for axis 1 with size 2");
  CHECK_THROWS_WITH(m.index({Ellipsis, 5}), "[index] index 5 is out of range for axis 1 with size 2");
  CHECK_THROWS_WITH(r.index({Slice(None, None, 0)}), "[index] slice step cannot be zero");
  CHECK_THROWS_WITH(m.index({Ellipsis, 0, Ellipsis}), "[index] an index can only have a single ellipsis, got 2");
  CHECK_THROWS_WITH(m.index({0, 0, 0}), "[index] too many indices for a tensor of rank 2 (shape (3, 2)): 3 were given");
  CHECK_THROWS_AS(scalar(1.0f).index({0}), InvalidArgument);
  CHECK_THROWS_AS(constant(std::vector<float>{}, Shape{0}).index({0}), InvalidArgument);
}

TEST_CASE("strided_slice with TensorFlow masks", "[index][strided_slice]") {
  Tensor t = iota<int32_t>({3, 2, 5});
  // t[1:, :, ::2] with the end of axis 0 and all of axis 1 masked
  Tensor a = strided_slice(t, {1, 0, 0}, {0, 0, 5}, {1, 1, 2}, /*begin_mask=*/0b010, /*end_mask=*/0b011);
  CHECK(dims(a) == I64{2, 2, 3});
  CHECK(a.to_vector<int32_t>() == I32{10, 12, 14, 15, 17, 19, 20, 22, 24, 25, 27, 29});
  // t[..., 1] via the ellipsis and shrink masks
  Tensor b = strided_slice(t, {0, 1}, {0, 2}, {1, 1}, 0, 0, /*ellipsis_mask=*/0b01, 0, /*shrink=*/0b10);
  CHECK(dims(b) == I64{3, 2});
  CHECK(b.to_vector<int32_t>() == I32{1, 6, 11, 16, 21, 26});
  // t[tf.newaxis, 2]
  Tensor c = strided_slice(t, {0, 2}, {0, 3}, {1, 1}, 0, 0, 0, /*new_axis=*/0b01, /*shrink=*/0b10);
  CHECK(dims(c) == I64{1, 2, 5});
  // fewer entries than dims: the rest are taken whole
  CHECK(dims(strided_slice(t, {1}, {2}, {1})) == I64{1, 2, 5});
  // shrink with a negative begin, as foo[-1]
  CHECK(strided_slice(t, {-1, -1, -1}, {0, 0, 0}, {1, 1, 1}, 0, 0, 0, 0, 0b111).item<int32_t>() == 29);
}

TEST_CASE("strided_slice errors", "[index][strided_slice][errors]") {
  Tensor t = iota<int32_t>({3, 2});
  CHECK_THROWS_WITH(strided_slice(t, {0}, {1}, {0}), "[strided_slice] the stride for axis 0 must be non-zero");
  CHECK_THROWS_WITH(strided_slice(t, {0, 0}, {1}, {1}),
                    "[strided_slice] begin, end and strides must have the same length, got 2, 1 and 1");
  CHECK_THROWS_WITH(strided_slice(t, {3}, {4}, {1}, 0, 0, 0, 0, 1),
                    "[strided_slice] index 3 is out of range for axis 0 with size 3");
  CHECK_THROWS_WITH(strided_slice(t, {0, 0, 0}, {1, 1, 1}, {1, 1, 1}),
                    "[strided_slice] the slice spec indexes more axes than the input has (shape (3, 2))");
  CHECK_THROWS_AS(strided_slice(t, {0, 0}, {1, 1}, {1, 1}, 0, 0, 0b11), InvalidArgument);
  CHECK_THROWS_AS(strided_slice(t, {1}, {0}, {-1}, 0, 0, 0, 0, 1), InvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// gather

TEST_CASE("gather along an axis", "[gather]") {
  Tensor p = constant({{1, 2}, {3, 4}, {5, 6}});
  Tensor g = gather(p, constant({2, 0}));
  CHECK(dims(g) == I64{2, 2});
  CHECK(g.to_vector<int32_t>() == I32{5, 6, 1, 2});
  Tensor g1 = gather(p, constant({1}), 1);
  CHECK(dims(g1) == I64{3, 1});
  CHECK(g1.to_vector<int32_t>() == I32{2, 4, 6});
  CHECK(gather(p, constant({1, 1, 0}), -1).to_vector<int32_t>() == I32{2, 2, 1, 4, 4, 3, 6, 6, 5});
  Tensor g2 = gather(p, constant({{0, 1}, {2, 2}}));
  CHECK(dims(g2) == I64{2, 2, 2});
  CHECK(g2.to_vector<int32_t>() == I32{1, 2, 3, 4, 5, 6, 5, 6});
  Tensor gs = gather(p, scalar(1));
  CHECK(dims(gs) == I64{2});
  CHECK(gs.to_vector<int32_t>() == I32{3, 4});
  CHECK(gather(p, constant(std::vector<int64_t>{2, 1}, Shape{2})).to_vector<int32_t>() == I32{5, 6, 3, 4});
  Tensor ge = gather(p, constant(std::vector<int32_t>{}, Shape{0}));
  CHECK(dims(ge) == I64{0, 2});
  CHECK(dims(gather(constant(std::vector<float>{}, Shape{0, 2}), constant(std::vector<int32_t>{}, Shape{0}))) ==
        I64{0, 2});
}

TEMPLATE_TEST_CASE("gather works for every element size", "[gather]", bool, uint8_t, Half, float, int64_t, complex64_t,
                   complex128_t) {
  Tensor p = iota<TestType>({4, 3});
  std::vector<TestType> all = p.to_vector<TestType>();
  Tensor rows = gather(p, constant({3, 0}));
  std::vector<TestType> want_rows = {all[9], all[10], all[11], all[0], all[1], all[2]};
  CHECK(rows.to_vector<TestType>() == want_rows);
  Tensor cols = gather(p, constant({2}), 1);
  std::vector<TestType> want_cols = {all[2], all[5], all[8], all[11]};
  CHECK(cols.to_vector<TestType>() == want_cols);
}

TEST_CASE("gather with batch_dims", "[gather]") {
  Tensor p = constant({{1, 2, 3}, {4, 5, 6}});
  Tensor g = gather(p, constant({{2, 0}, {1, 1}}), 1, 1);
  CHECK(dims(g) == I64{2, 2});
  CHECK(g.to_vector<int32_t>() == I32{3, 1, 5, 5});
  CHECK(gather(p, constant({{2, 0}, {1, 1}}), 1, -1).to_vector<int32_t>() == I32{3, 1, 5, 5});
  // params (2, 2, 3), indices (2, 1), axis 2, batch_dims 1 -> (2, 2, 1)
  Tensor q = iota<int32_t>({2, 2, 3});
  Tensor h = gather(q, constant({{2}, {0}}), 2, 1);
  CHECK(dims(h) == I64{2, 2, 1});
  CHECK(h.to_vector<int32_t>() == I32{2, 5, 6, 9});
  CHECK_THROWS_WITH(gather(p, constant({{0}, {1}, {0}}), 1, 1),
                    "[gather] params shape (2, 3) and indices shape (3, 1) must agree on the first 1 (batch) dims");
  CHECK_THROWS_WITH(gather(p, constant({{0}, {1}}), 0, 1), "[gather] batch_dims 1 must be <= axis 0");
  CHECK_THROWS_AS(gather(p, constant({0}), 1, 2), InvalidArgument);
}

TEST_CASE("gather checks every index before reading", "[gather][errors]") {
  Tensor p = constant({{1, 2}, {3, 4}, {5, 6}});
  CHECK_THROWS_AS(gather(p, constant({0, 3})), InvalidArgument);
  CHECK_THROWS_WITH(gather(p, constant({0, 3})),
                    "[gather] indices[1] = 3 is not in [0, 3) (axis 0 of params with shape (3, 2))");
  CHECK_THROWS_WITH(gather(p, constant({{0, 1}, {-1, 0}})),
                    "[gather] indices[1, 0] = -1 is not in [0, 3) (axis 0 of params with shape (3, 2))");
  CHECK_THROWS_WITH(gather(p, constant({2}), 1),
                    "[gather] indices[0] = 2 is not in [0, 2) (axis 1 of params with shape (3, 2))");
  CHECK_THROWS_WITH(gather(p, scalar(5)), "[gather] indices = 5 is not in [0, 3) (axis 0 of params with shape (3, 2))");
  // far outside the buffer: AddressSanitizer would report a read
  CHECK_THROWS_AS(gather(p, constant(std::vector<int64_t>{int64_t{1} << 40}, Shape{1})), InvalidArgument);
  CHECK_THROWS_AS(gather(p, constant(std::vector<int64_t>{std::numeric_limits<int64_t>::min()}, Shape{1})),
                  InvalidArgument);
  CHECK_THROWS_AS(gather(constant(std::vector<float>{}, Shape{0, 2}), constant({0})), InvalidArgument);
  CHECK_THROWS_WITH(gather(p, constant({0.0f})), "[gather] indices must be int32 or int64, got float32");
  CHECK_THROWS_WITH(gather(scalar(1), constant({0})), "[gather] params must have rank >= 1, got a scalar");
  CHECK_THROWS_AS(gather(p, constant({0}), 2), InvalidArgument);
}

TEST_CASE("large gather matches a reference", "[gather]") {
  Tensor p = iota<int32_t>({1000, 64});
  std::vector<int32_t> idx(5000);
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int32_t>((i * 7919) % 1000);
  std::vector<int32_t> got = gather(p, constant(idx, Shape{5000})).to_vector<int32_t>();
  bool ok = true;
  for (size_t i = 0; i < idx.size(); ++i)
    for (int j = 0; j < 64; ++j) ok &= got[i * 64 + size_t(j)] == idx[i] * 64 + j;
  CHECK(ok);
  std::vector<int32_t> cols = gather(p, constant(std::vector<int32_t>{63, 0}, Shape{2}), 1).to_vector<int32_t>();
  CHECK(cols[0] == 63);
  CHECK(cols[1] == 0);
  CHECK(cols[1998] == 999 * 64 + 63);
}

// ---------------------------------------------------------------------------------------------
// one_hot

TEST_CASE("one_hot", "[one_hot]") {
  Tensor o = one_hot(constant({0, 2, -1, 5}), 3);
  CHECK(o.dtype() == float32);
  CHECK(dims(o) == I64{4, 3});
  CHECK(o.to_vector<float>() == std::vector<float>{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0});
  Tensor t = one_hot(constant({0, 2}), 3, 1, 0, 0);
  CHECK(dims(t) == I64{3, 2});
  CHECK(t.to_vector<float>() == std::vector<float>{1, 0, 0, 0, 0, 1});
  Tensor i = one_hot(constant(std::vector<int64_t>{1, 0}, Shape{2}), 2, 5, -1, -1, int32);
  CHECK(i.to_vector<int32_t>() == I32{-1, 5, 5, -1});
  Tensor m = one_hot(constant({{0, 1}, {2, 3}}), 3, 1, 0, 1, int32);
  CHECK(dims(m) == I64{2, 3, 2});
  CHECK(m.to_vector<int32_t>() == I32{1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0});
  Tensor b = one_hot(constant(std::vector<uint8_t>{1, 255}, Shape{2}), 2, 1, 0, -1, bool_);
  CHECK(b.to_vector<bool>() == std::vector<bool>{false, true, false, false});
  Tensor h = one_hot(scalar(1), 3, 0.5, 0, -1, float16);
  CHECK(dims(h) == I64{3});
  CHECK(h.to_vector<Half>()[1] == 0.5f);
  Tensor z = one_hot(constant({1}), 2, 1, 0, -1, complex128);
  CHECK(z.to_vector<complex128_t>() == std::vector<complex128_t>{0, 1});
  CHECK(dims(one_hot(constant({1, 2}), 0)) == I64{2, 0});
  CHECK(dims(one_hot(constant(std::vector<int32_t>{}, Shape{0}), 4)) == I64{0, 4});
}

TEST_CASE("one_hot errors", "[one_hot][errors]") {
  CHECK_THROWS_WITH(one_hot(constant({0}), -1), "[one_hot] depth must be non-negative, got -1");
  CHECK_THROWS_WITH(one_hot(constant({0}), 2, 1, 0, 2),
                    "[one_hot] axis 2 must be -1 or in [0, 1] for indices of rank 1");
  CHECK_THROWS_WITH(one_hot(constant({0.0f}), 2), "[one_hot] indices must be int32, int64 or uint8, got float32");
  CHECK_THROWS_WITH(one_hot(constant({0}), 2, 0.5, 0, -1, int32),
                    "[one_hot] on_value 0.5 is not exactly representable as int32");
  CHECK_THROWS_AS(one_hot(constant({0}), 2, 1, 0, -2), InvalidArgument);
}
