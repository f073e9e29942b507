// Reductions, argmax/argmin and softmax: results against references, dtype rules, empty and
// scalar inputs, large inputs, canonical attributes and error messages.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ops/dispatch.h"
#include "ops/ops.h"
#include "runtime/parallel.h"

using namespace kiln;

namespace {

// A deterministic stream of doubles in [lo, hi).
std::vector<double> pseudo_random(size_t n, double lo, double hi, uint64_t seed = 1) {
  std::vector<double> v(n);
  uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (auto& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = lo + (hi - lo) * static_cast<double>(s >> 11) * (1.0 / 9007199254740992.0);
  }
  return v;
}

template <class T>
std::vector<T> convert_all(const std::vector<double>& v) {
  std::vector<T> out;
  for (double d : v) out.push_back(static_cast<T>(d));
  return out;
}

enum class Op { Sum, Prod, Max, Min, Mean };

// Reference reduction of a row-major array in double precision.
std::vector<double> reference(const std::vector<double>& x, const std::vector<int64_t>& shape,
                              const std::vector<int64_t>& axes, Op op) {
  const size_t r = shape.size();
  std::vector<bool> red(r, false);
  for (int64_t a : axes) red[static_cast<size_t>(a)] = true;
  int64_t nout = 1, count = 1;
  for (size_t i = 0; i < r; ++i) (red[i] ? count : nout) *= shape[i];
  double init = op == Op::Prod ? 1 : op == Op::Max ? -INFINITY : op == Op::Min ? INFINITY : 0;
  std::vector<double> out(static_cast<size_t>(nout), init);
  std::vector<int64_t> idx(r, 0);
  for (size_t k = 0; k < x.size(); ++k) {
    int64_t o = 0;
    for (size_t i = 0; i < r; ++i)
      if (!red[i]) o = o * shape[i] + idx[i];
    double& acc = out[static_cast<size_t>(o)];
    switch (op) {
      case Op::Sum:
      case Op::Mean:
        acc += x[k];
        break;
      case Op::Prod:
        acc *= x[k];
        break;
      case Op::Max:
        acc = std::max(acc, x[k]);
        break;
      case Op::Min:
        acc = std::min(acc, x[k]);
        break;
    }
    for (size_t i = r; i-- > 0;) {
      if (++idx[i] < shape[i]) break;
      idx[i] = 0;
    }
  }
  if (op == Op::Mean)
    for (double& v : out) v /= static_cast<double>(count);
  return out;
}

Tensor run(Op op, const Tensor& x, Axes axes, bool keepdims = false) {
  switch (op) {
    case Op::Sum:
      return reduce_sum(x, axes, keepdims);
    case Op::Prod:
      return reduce_prod(x, axes, keepdims);
    case Op::Max:
      return reduce_max(x, axes, keepdims);
    case Op::Min:
      return reduce_min(x, axes, keepdims);
    case Op::Mean:
      return reduce_mean(x, axes, keepdims);
  }
  return {};
}

// True when a and b are at most `ulps` float32 steps apart.
bool within_ulps(float a, float b, int ulps) {
  float lo = b, hi = b;
  for (int i = 0; i < ulps; ++i) {
    lo = std::nextafter(lo, -INFINITY);
    hi = std::nextafter(hi, INFINITY);
  }
  return a >= lo && a <= hi;
}

// Records the attributes of every op it sees, then lets the eager base run it.
class AttrRecorder : public ops::Level {
 public:
  ops::TensorList process(const ops::OpDef& def, const ops::Attrs& attrs, std::span<const Tensor> inputs,
                          const ops::TypeList& types) override {
    last = attrs;
    return process_below(def, attrs, inputs, types);
  }
  ops::Attrs last;
};

}  // namespace

TEST_CASE("walkthrough: softmax, reduce_max and argmax", "[reduce]") {
  Tensor x = constant({{4.0, 5.0}, {10.0, 1.0}});
  REQUIRE(x.dtype() == float32);
  Tensor s = softmax(x);
  REQUIRE(s.dtype() == float32);
  REQUIRE(s.shape() == Shape{2, 2});
  std::vector<float> got = s.to_vector<float>();
  std::vector<float> want = {2.6894143e-01f, 7.3105854e-01f, 9.9987662e-01f, 1.2339458e-04f};
  for (size_t i = 0; i < 4; ++i) CHECK(within_ulps(got[i], want[i], 1));
  Tensor m = reduce_max(x);
  CHECK(m.dtype() == float32);
  CHECK(m.shape() == Shape{});
  CHECK(m.item<float>() == 10.0f);
  Tensor am = argmax(x);
  CHECK(am.dtype() == int64);
  CHECK(am.to_vector<int64_t>() == std::vector<int64_t>{1, 0});
  CHECK(argmax(s).to_vector<int64_t>() == std::vector<int64_t>{1, 0});
  Tensor mi = reduce_max(constant({1, 2, 3}));
  CHECK(mi.dtype() == int32);
  CHECK(mi.item<int32_t>() == 3);
}

TEST_CASE("reductions over single, multiple, negative and all axes", "[reduce]") {
  Tensor x = constant({{1, 2, 3}, {4, 5, 6}});
  CHECK(reduce_sum(x).item<int32_t>() == 21);
  CHECK(reduce_sum(x, 0).to_vector<int32_t>() == std::vector<int32_t>{5, 7, 9});
  CHECK(reduce_sum(x, 1).to_vector<int32_t>() == std::vector<int32_t>{6, 15});
  CHECK(reduce_sum(x, -1).to_vector<int32_t>() == std::vector<int32_t>{6, 15});
  CHECK(reduce_sum(x, {0, 1}).item<int32_t>() == 21);
  CHECK(reduce_sum(x, {-1, 0}).item<int32_t>() == 21);
  Tensor k = reduce_sum(x, 1, /*keepdims=*/true);
  CHECK(k.shape() == Shape{2, 1});
  CHECK(k.to_vector<int32_t>() == std::vector<int32_t>{6, 15});
  CHECK(reduce_sum(x, Axes{}, true).shape() == Shape{1, 1});
  CHECK(reduce_prod(x, 0).to_vector<int32_t>() == std::vector<int32_t>{4, 10, 18});
  CHECK(reduce_max(x, 1).to_vector<int32_t>() == std::vector<int32_t>{3, 6});
  CHECK(reduce_min(x, 0).to_vector<int32_t>() == std::vector<int32_t>{1, 2, 3});
  CHECK(reduce_mean(x, 0).to_vector<int32_t>() == std::vector<int32_t>{2, 3, 4});
  // an explicit empty list reduces nothing
  Tensor same = reduce_sum(x, std::vector<int64_t>{});
  CHECK(same.shape() == Shape{2, 3});
  CHECK(same.to_vector<int32_t>() == x.to_vector<int32_t>());
}

TEST_CASE("every axis subset of a rank-4 tensor matches a reference", "[reduce]") {
  const std::vector<int64_t> shape = {3, 4, 5, 6};
  std::vector<double> data = pseudo_random(360, 0.5, 1.5);
  Tensor x64 = constant(data, Shape(shape));
  std::vector<int32_t> idata;
  for (double d : data) idata.push_back(static_cast<int32_t>(d * 100) - 100);
  Tensor xi = constant(idata, Shape(shape));
  std::vector<double> idata_d(idata.begin(), idata.end());
  for (int mask = 0; mask < 16; ++mask) {
    std::vector<int64_t> axes;
    for (int64_t a = 0; a < 4; ++a)
      if (mask & (1 << a)) axes.push_back(a);
    for (Op op : {Op::Sum, Op::Prod, Op::Max, Op::Min, Op::Mean}) {
      INFO("mask " << mask << " op " << static_cast<int>(op));
      std::vector<double> want = reference(data, shape, axes, op);
      Tensor got = run(op, x64, axes);
      REQUIRE(got.num_elements() == static_cast<int64_t>(want.size()));
      std::vector<double> g = got.to_vector<double>();
      for (size_t i = 0; i < want.size(); ++i) CHECK(g[i] == Approx(want[i]).epsilon(1e-12));
      Tensor kept = run(op, x64, axes, true);
      for (int64_t a = 0; a < 4; ++a)
        CHECK(kept.shape().dim(static_cast<size_t>(a)) == ((mask & (1 << a)) ? 1 : shape[static_cast<size_t>(a)]));
      if (op == Op::Sum || op == Op::Max || op == Op::Min) {
        std::vector<double> iwant = reference(idata_d, shape, axes, op);
        std::vector<int32_t> ig = run(op, xi, axes).to_vector<int32_t>();
        for (size_t i = 0; i < iwant.size(); ++i) CHECK(ig[i] == static_cast<int32_t>(iwant[i]));
      }
    }
  }
}

TEST_CASE("integer sums wrap and integer means truncate toward zero", "[reduce]") {
  CHECK(reduce_sum(constant({100, 100}, int8)).item<int8_t>() == -56);
  CHECK(reduce_sum(constant({200, 100}, uint8)).item<uint8_t>() == 44);
  CHECK(reduce_sum(constant({INT32_MAX, 1})).item<int32_t>() == INT32_MIN);
  CHECK(reduce_sum(constant({INT64_MAX, int64_t{1}}, int64)).item<int64_t>() == INT64_MIN);
  CHECK(reduce_prod(constant({65536, 65536})).item<int32_t>() == 0);
  CHECK(reduce_prod(constant({16, 16}, int8)).item<int8_t>() == 0);
  // the mean's sum is taken in a wider type, so it does not wrap
  CHECK(reduce_mean(constant({100, 100}, int8)).item<int8_t>() == 100);
  CHECK(reduce_mean(constant({INT64_MAX, INT64_MAX - 2}, int64)).item<int64_t>() == INT64_MAX - 1);
  CHECK(reduce_mean(constant({-3, -4})).item<int32_t>() == -3);
  CHECK(reduce_mean(constant({3, 4})).item<int32_t>() == 3);
  CHECK(reduce_mean(constant({250, 251}, uint8)).item<uint8_t>() == 250);
}

namespace {
// Checks sum, prod, max, min and mean of integer type T over rows of every length up to 300 and
// over columns, against plain loops (a guard against miscompiled vector loops too).
template <class T>
void check_integer_reductions() {
  for (int64_t n = 1; n <= 300; ++n) {
    for (int64_t cols : {int64_t{1}, int64_t{3}}) {
      INFO(dtype_name(dtype_v<T>) << " n " << n << " cols " << cols);
      std::vector<T> v(static_cast<size_t>(n * cols));
      for (size_t i = 0; i < v.size(); ++i)
        v[i] = static_cast<T>(static_cast<int64_t>(i * 37 % 101) - (std::is_signed_v<T> ? 50 : 0));
      Tensor x = constant(v, Shape{n, cols});
      std::vector<T> sum = reduce_sum(x, 0).template to_vector<T>();
      std::vector<T> prod = reduce_prod(x, 0).template to_vector<T>();
      std::vector<T> mx = reduce_max(x, 0).template to_vector<T>();
      std::vector<T> mn = reduce_min(x, 0).template to_vector<T>();
      std::vector<T> mean = reduce_mean(x, 0).template to_vector<T>();
      for (int64_t c = 0; c < cols; ++c) {
        uint64_t s = 0, p = 1;
        int64_t exact = 0;
        T hi = v[static_cast<size_t>(c)], lo = hi;
        for (int64_t r = 0; r < n; ++r) {
          T e = v[static_cast<size_t>(r * cols + c)];
          s += static_cast<uint64_t>(e);
          p *= static_cast<uint64_t>(e);
          exact += static_cast<int64_t>(e);
          hi = std::max(hi, e);
          lo = std::min(lo, e);
        }
        CHECK(sum[static_cast<size_t>(c)] == static_cast<T>(s));
        CHECK(prod[static_cast<size_t>(c)] == static_cast<T>(p));
        CHECK(mx[static_cast<size_t>(c)] == hi);
        CHECK(mn[static_cast<size_t>(c)] == lo);
        CHECK(mean[static_cast<size_t>(c)] == static_cast<T>(exact / n));
      }
    }
  }
}
}  // namespace

TEST_CASE("integer reductions of every length match plain loops", "[reduce]") {
  check_integer_reductions<int8_t>();
  check_integer_reductions<int16_t>();
  check_integer_reductions<int32_t>();
  check_integer_reductions<int64_t>();
  check_integer_reductions<uint8_t>();
  check_integer_reductions<uint16_t>();
  check_integer_reductions<uint32_t>();
  check_integer_reductions<uint64_t>();
}

TEST_CASE("float16 and bfloat16 accumulate in float", "[reduce]") {
  // accumulating in float16 would stop at 2048 (2048 + 1 rounds back to 2048)
  Tensor h = constant(std::vector<Half>(4096, Half(1.0f)), Shape{4096});
  CHECK(static_cast<float>(reduce_sum(h).item<Half>()) == 4096.0f);
  CHECK(static_cast<float>(reduce_mean(h).item<Half>()) == 1.0f);
  Tensor b = constant(std::vector<BFloat16>(1000, BFloat16(1.0f)), Shape{1000});
  CHECK(static_cast<float>(reduce_sum(b).item<BFloat16>()) == 1000.0f);
  Tensor hm = constant(std::vector<Half>{Half(1.5f), Half(-2.0f), Half(7.0f)}, Shape{3});
  CHECK(static_cast<float>(reduce_max(hm).item<Half>()) == 7.0f);
  CHECK(static_cast<float>(reduce_min(hm).item<Half>()) == -2.0f);
  CHECK(static_cast<float>(reduce_prod(hm).item<Half>()) == -21.0f);
}

TEST_CASE("complex sums, products and means", "[reduce]") {
  using C = std::complex<float>;
  Tensor c = constant(std::vector<C>{C(1, 2), C(3, -1), C(0, 1)}, Shape{3});
  CHECK(reduce_sum(c).item<C>() == C(4, 2));
  CHECK(reduce_prod(c).item<C>() == C(1, 2) * C(3, -1) * C(0, 1));
  C m = reduce_mean(c).item<C>();
  CHECK(m.real() == Approx(4.0 / 3));
  CHECK(m.imag() == Approx(2.0 / 3));
  CHECK_THROWS_WITH(reduce_max(c),
                    "[reduce_max] x has dtype complex64, which reduce_max does not accept (expected int8/16/32/64, "
                    "uint8/16/32/64, float16/bfloat16/float32/float64)");
}

TEST_CASE("max and min propagate NaN", "[reduce]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = constant(std::vector<float>{1, nan, 3, 4, 5, 6}, Shape{2, 3});
  CHECK(std::isnan(reduce_max(x).item<float>()));
  CHECK(std::isnan(reduce_min(x).item<float>()));
  std::vector<float> rows = reduce_max(x, 1).to_vector<float>();
  CHECK(std::isnan(rows[0]));
  CHECK(rows[1] == 6);
  std::vector<float> cols = reduce_min(x, 0).to_vector<float>();
  CHECK(cols[0] == 1);
  CHECK(std::isnan(cols[1]));
  CHECK(cols[2] == 3);
  Tensor inf = constant(std::vector<float>{-INFINITY, -INFINITY}, Shape{2});
  CHECK(reduce_max(inf).item<float>() == -INFINITY);
}

TEST_CASE("any and all take bool only", "[reduce]") {
  Tensor b = constant({{true, false}, {false, false}});
  CHECK(reduce_any(b).item<bool>());
  CHECK(!reduce_all(b).item<bool>());
  std::vector<bool> rows;
  for (bool v : reduce_any(b, 1).to_vector<bool>()) rows.push_back(v);
  CHECK(rows == std::vector<bool>{true, false});
  CHECK(reduce_all(constant({true, true})).item<bool>());
  CHECK(reduce_any(b, 0, true).shape() == Shape{1, 2});
  CHECK_THROWS_WITH(reduce_any(constant({1, 0})),
                    "[reduce_any] x has dtype int32, which reduce_any does not accept (expected bool)");
  CHECK_THROWS_WITH(reduce_sum(b),
                    "[reduce_sum] x has dtype bool, which reduce_sum does not accept (expected int8/16/32/64, "
                    "uint8/16/32/64, float16/bfloat16/float32/float64, complex64/128)");
}

TEST_CASE("empty axes reduce to the identity", "[reduce]") {
  Tensor e = constant(std::vector<float>{}, Shape{0, 3});
  Tensor s = reduce_sum(e, 0);
  CHECK(s.shape() == Shape{3});
  CHECK(s.to_vector<float>() == std::vector<float>{0, 0, 0});
  CHECK(reduce_prod(e, 0).to_vector<float>() == std::vector<float>{1, 1, 1});
  for (float v : reduce_mean(e, 0).to_vector<float>()) CHECK(std::isnan(v));
  CHECK(reduce_sum(e).item<float>() == 0);
  CHECK(reduce_sum(e, 1).shape() == Shape{0});
  CHECK(reduce_max(e, 1).shape() == Shape{0});
  CHECK(reduce_sum(e, 0, true).shape() == Shape{1, 3});
  Tensor ei = constant(std::vector<int32_t>{}, Shape{0});
  CHECK(reduce_mean(ei).item<int32_t>() == 0);
  CHECK(reduce_sum(ei).item<int32_t>() == 0);
  Tensor eb = constant(std::vector<bool>{}, Shape{2, 0});
  CHECK(!reduce_any(eb).item<bool>());
  CHECK(reduce_all(eb).item<bool>());
  CHECK_THROWS_WITH(reduce_max(constant(std::vector<float>{}, Shape{3, 0}), 1),
                    "[reduce_max] cannot reduce over axis 1 of size 0 (input shape [3, 0]): reduce_max of an empty "
                    "axis has no identity");
  CHECK_THROWS_AS(reduce_min(e), InvalidArgument);
}

TEST_CASE("scalars reduce to themselves", "[reduce]") {
  Tensor s = scalar(2.5f);
  CHECK(reduce_sum(s).shape() == Shape{});
  CHECK(reduce_sum(s).item<float>() == 2.5f);
  CHECK(reduce_mean(s, Axes{}, true).shape() == Shape{});
  CHECK(reduce_max(s).item<float>() == 2.5f);
  CHECK(reduce_prod(scalar(int64_t{7})).item<int64_t>() == 7);
  CHECK(reduce_all(scalar(true)).item<bool>());
  CHECK_THROWS_WITH(reduce_sum(s, 0),
                    "[reduce_sum] axis 0 in axes [0] is out of range for a tensor of rank 0 (expected [0, 0))");
}

TEST_CASE("axis errors name the axes", "[reduce]") {
  Tensor x = constant({{1, 2, 3}, {4, 5, 6}});
  CHECK_THROWS_WITH(reduce_sum(x, 2),
                    "[reduce_sum] axis 2 in axes [2] is out of range for a tensor of rank 2 (expected [-2, 2))");
  CHECK_THROWS_WITH(reduce_mean(x, {0, -3}),
                    "[reduce_mean] axis -3 in axes [0, -3] is out of range for a tensor of rank 2 (expected [-2, 2))");
  CHECK_THROWS_WITH(reduce_max(x, {1, -1}), "[reduce_max] axes [1, -1] name axis 1 more than once");
  CHECK_THROWS_AS(reduce_sum(x, {0, 0}), InvalidArgument);
  CHECK_THROWS_WITH(reduce_sum(Tensor()), "[reduce_sum] input 0 is undefined (None)");
}

TEST_CASE("reductions record normalized, sorted axes", "[reduce]") {
  Tensor x = constant(std::vector<float>(24, 1.0f), Shape{2, 3, 4});
  AttrRecorder rec;
  {
    ops::LevelScope scope(rec);
    reduce_sum(x, {-1, 0});
  }
  CHECK(rec.last.get_ints("axes") == std::vector<int64_t>{0, 2});
  CHECK(!rec.last.get_bool("keepdims"));
  {
    ops::LevelScope scope(rec);
    reduce_max(x, Axes{}, true);
  }
  CHECK(rec.last.get_ints("axes") == std::vector<int64_t>{0, 1, 2});
  CHECK(rec.last.get_bool("keepdims"));
  {
    ops::LevelScope scope(rec);
    argmin(x, -1, int32);
  }
  CHECK(rec.last.get_int("axis") == 2);
  CHECK(rec.last.get_type("output_type") == int32);
}

TEST_CASE("large float32 sums stay accurate", "[reduce]") {
  const size_t n = 1 << 20;
  std::vector<double> d = pseudo_random(n, 0.0, 1.0, 7);
  std::vector<float> f = convert_all<float>(d);
  double ref = 0;
  for (float v : f) ref += v;
  Tensor x = constant(f, Shape{static_cast<int64_t>(n)});
  CHECK(std::abs(reduce_sum(x).item<float>() - ref) <= 1e-6 * ref);
  CHECK(std::abs(reduce_mean(x).item<float>() - ref / n) <= 1e-6 * ref / n);
  // naive float accumulation of ones stops at 2^24 (2^24 + 1 rounds back to 2^24)
  const int64_t many = (int64_t{1} << 24) + (int64_t{1} << 20);
  Tensor ones32 = constant(std::vector<float>(static_cast<size_t>(many), 1.0f), Shape{many});
  CHECK(reduce_sum(ones32).item<float>() == static_cast<float>(many));

  // rows, columns, and the middle axis of the same data
  Tensor m = constant(f, Shape{1024, 1024});
  std::vector<double> rows(1024, 0), cols(1024, 0);
  for (size_t i = 0; i < 1024; ++i)
    for (size_t j = 0; j < 1024; ++j) {
      rows[i] += f[i * 1024 + j];
      cols[j] += f[i * 1024 + j];
    }
  std::vector<float> gr = reduce_sum(m, 1).to_vector<float>();
  std::vector<float> gc = reduce_sum(m, 0).to_vector<float>();
  for (size_t i = 0; i < 1024; ++i) {
    CHECK(std::abs(gr[i] - rows[i]) <= 1e-6 * rows[i]);
    CHECK(std::abs(gc[i] - cols[i]) <= 1e-6 * cols[i]);
  }
  // few outputs with a long reduced axis (split into blocks)
  Tensor tall = constant(f, Shape{int64_t{1} << 17, 8});
  std::vector<double> tcols(8, 0);
  for (size_t i = 0; i < n; ++i) tcols[i % 8] += f[i];
  std::vector<float> gt = reduce_sum(tall, 0).to_vector<float>();
  for (size_t j = 0; j < 8; ++j) CHECK(std::abs(gt[j] - tcols[j]) <= 1e-6 * tcols[j]);
  Tensor mid = constant(f, Shape{4, int64_t{1} << 16, 4});
  std::vector<double> mref(16, 0);
  for (size_t i = 0; i < n; ++i) mref[(i >> 18) * 4 + i % 4] += f[i];
  std::vector<float> gm = reduce_sum(mid, 1).to_vector<float>();
  for (size_t j = 0; j < 16; ++j) CHECK(std::abs(gm[j] - mref[j]) <= 1e-6 * mref[j]);
  // non-contiguous axes on a large input (the permuted-copy path)
  std::vector<float> g02 = reduce_sum(mid, {0, 2}).to_vector<float>();
  double s02 = 0;
  for (size_t i = 0; i < n; ++i)
    if (((i >> 2) & 0xffff) == 12345) s02 += f[i];
  CHECK(std::abs(g02[12345] - s02) <= 1e-6 * s02);
  CHECK(reduce_max(x).item<float>() == *std::max_element(f.begin(), f.end()));
  CHECK(reduce_min(x).item<float>() == *std::min_element(f.begin(), f.end()));

  // results do not depend on the number of threads
  const int threads = get_num_threads();
  set_num_threads(1);
  const float one_thread = reduce_sum(x).item<float>();
  const std::vector<float> one_thread_cols = reduce_sum(tall, 0).to_vector<float>();
  set_num_threads(2);
  CHECK(reduce_sum(x).item<float>() == one_thread);
  CHECK(reduce_sum(tall, 0).to_vector<float>() == one_thread_cols);
  set_num_threads(threads);
}

TEST_CASE("large integer, bool and float16 reductions", "[reduce]") {
  const int64_t n = 1 << 20;
  std::vector<int32_t> iv(static_cast<size_t>(n));
  int64_t isum = 0;
  for (int64_t i = 0; i < n; ++i) isum += iv[static_cast<size_t>(i)] = static_cast<int32_t>(i % 1000) - 400;
  Tensor xi = constant(iv, Shape{n});
  CHECK(reduce_sum(xi).item<int32_t>() == static_cast<int32_t>(isum));
  CHECK(reduce_mean(xi).item<int32_t>() == static_cast<int32_t>(isum / n));
  CHECK(reduce_max(xi).item<int32_t>() == 599);
  CHECK(argmin(xi).item<int64_t>() == 0);
  CHECK(argmax(xi).item<int64_t>() == 999);
  std::vector<bool> bv(static_cast<size_t>(n), false);
  Tensor none = constant(bv, Shape{n});
  bv.back() = true;
  Tensor last = constant(bv, Shape{n});
  CHECK(!reduce_any(none).item<bool>());
  CHECK(reduce_any(last).item<bool>());
  CHECK(!reduce_all(last).item<bool>());
  CHECK(reduce_all(logical_not(none)).item<bool>());
  Tensor h = constant(std::vector<Half>(100000, Half(0.5f)), Shape{100000});
  CHECK(static_cast<float>(reduce_sum(h).item<Half>()) == static_cast<float>(Half(50000.0f)));
  CHECK(static_cast<float>(reduce_mean(h).item<Half>()) == 0.5f);
}

TEST_CASE("argmax and argmin", "[reduce]") {
  Tensor x = constant({{3, 1, 3}, {0, 7, 7}});
  CHECK(argmax(x, 1).to_vector<int64_t>() == std::vector<int64_t>{0, 1});  // first index on ties
  CHECK(argmax(x, -1).to_vector<int64_t>() == std::vector<int64_t>{0, 1});
  CHECK(argmin(x, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 0});
  CHECK(argmax(x, 0).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 1});
  CHECK(argmin(x, 0).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0});
  Tensor i32 = argmax(x, 1, int32);
  CHECK(i32.dtype() == int32);
  CHECK(i32.to_vector<int32_t>() == std::vector<int32_t>{0, 1});
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor f = constant(std::vector<float>{1, nan, 5, nan}, Shape{4});
  CHECK(argmax(f).item<int64_t>() == 1);
  CHECK(argmin(f).item<int64_t>() == 1);
  CHECK(argmax(constant({false, true, true})).item<int64_t>() == 1);
  CHECK(argmax(constant(std::vector<Half>{Half(1.0f), Half(3.0f), Half(2.0f)}, Shape{3})).item<int64_t>() == 1);
  CHECK(argmax(constant(std::vector<uint64_t>{1, UINT64_MAX, 5}, Shape{3})).item<int64_t>() == 1);
  // a long axis split into blocks: ties across blocks keep the first index
  std::vector<float> big(1 << 20, 0.0f);
  big[700000] = 2;
  big[900000] = 2;
  big[100] = -1;
  Tensor bt = constant(big, Shape{1 << 20});
  CHECK(argmax(bt).item<int64_t>() == 700000);
  CHECK(argmin(bt).item<int64_t>() == 100);
  big[800000] = nan;
  CHECK(argmax(constant(big, Shape{1 << 20})).item<int64_t>() == 800000);
  Tensor cols = constant(big, Shape{1 << 10, 1 << 10});
  std::vector<int64_t> ac = argmax(cols, 0).to_vector<int64_t>();
  CHECK(ac[700000 % 1024] == 700000 / 1024);
  CHECK(argmax(constant(std::vector<float>{}, Shape{0, 3}), 1).shape() == Shape{0});
}

TEST_CASE("argmax errors", "[reduce]") {
  CHECK_THROWS_WITH(argmax(constant(std::vector<float>{}, Shape{2, 0}), 1),
                    "[argmax] cannot take argmax over axis 1 of size 0 (input shape [2, 0])");
  CHECK_THROWS_WITH(argmin(constant({1, 2}), 1),
                    "[argmin] axis 1 is out of range for a tensor of rank 1 (expected [-1, 1))");
  CHECK_THROWS_WITH(argmax(constant({1, 2}), 0, float32), "[argmax] output_type must be int32 or int64, got float32");
  CHECK_THROWS_AS(argmax(constant(std::vector<std::complex<float>>{{1, 0}}, Shape{1})), InvalidArgument);
  CHECK_THROWS_AS(argmax(scalar(1.0f)), InvalidArgument);
}

TEST_CASE("softmax and log_softmax", "[reduce]") {
  Tensor x = constant(std::vector<double>{1, 2, 3, -1, 0, 1000}, Shape{2, 3});
  std::vector<double> s = softmax(x).to_vector<double>();
  double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  CHECK(s[0] == Approx(std::exp(1.0) / z));
  CHECK(s[2] == Approx(std::exp(3.0) / z));
  CHECK(s[5] == 1.0);  // no overflow: the max is subtracted first
  CHECK(s[3] == 0.0);
  std::vector<double> ls = log_softmax(x).to_vector<double>();
  CHECK(ls[0] == Approx(1.0 - std::log(z)));
  CHECK(ls[3] == Approx(-1001.0));
  std::vector<double> s0 = softmax(x, 0).to_vector<double>();
  CHECK(s0[0] == Approx(std::exp(2.0) / (std::exp(2.0) + 1)));
  Tensor h = constant(std::vector<Half>{Half(0.0f), Half(0.0f)}, Shape{2});
  CHECK(static_cast<float>(softmax(h).to_vector<Half>()[0]) == 0.5f);
  Tensor empty = constant(std::vector<float>{}, Shape{2, 0});
  CHECK(softmax(empty).shape() == Shape{2, 0});
  CHECK_THROWS_WITH(softmax(constant({1, 2})),
                    "[softmax] x has dtype int32, but softmax needs a floating dtype (float16, bfloat16, float32 or "
                    "float64)");
  CHECK_THROWS_WITH(log_softmax(x, 2),
                    "[log_softmax] axis 2 is out of range for a tensor of rank 2 (expected [-2, 2))");
}
