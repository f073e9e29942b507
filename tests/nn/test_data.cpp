// data::Dataset: slicing, batching, seeded shuffling, repeat, take, skip, map, prefetch.
#include <catch2/catch.hpp>

#include <kiln/kiln.h>

#include <algorithm>
#include <set>

using namespace kiln;
using Catch::Matchers::Contains;

namespace {
std::vector<int32_t> firsts(const data::Dataset& ds) {
  std::vector<int32_t> out;
  for (const data::Element& e : ds) {
    auto v = e[0].to_vector<int32_t>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}
}  // namespace

TEST_CASE("from_tensor_slices and batch", "[data]") {
  Tensor x = range(0, 10, 1, int32), y = range(0, 20, 2, int32);
  auto ds = data::Dataset::from_tensor_slices({x, y});
  CHECK(ds.cardinality() == 10);
  int i = 0;
  for (const data::Element& e : ds) {
    REQUIRE(e.size() == 2);
    CHECK(e[0].shape() == Shape{});
    CHECK(e[1].item<int32_t>() == 2 * i);
    ++i;
  }
  CHECK(i == 10);
  auto b = ds.batch(4);
  CHECK(b.cardinality() == 3);
  std::vector<Shape> shapes;
  for (const data::Element& e : b) shapes.push_back(e[0].shape());
  CHECK(shapes == std::vector<Shape>{{4}, {4}, {2}});
  auto dropped = ds.batch(4, true);
  CHECK(dropped.cardinality() == 2);
  CHECK(firsts(dropped) == std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7});
  // rows of a matrix
  auto rows = data::Dataset::from_tensor_slices({reshape(range(0, 6, 1, int32), {3, 2})}).batch(2);
  auto it = rows.begin_iteration();
  CHECK(it->next()->at(0).shape() == Shape{2, 2});
  CHECK(it->next()->at(0).shape() == Shape{1, 2});
  CHECK_FALSE(it->next().has_value());
}

TEST_CASE("shuffle is a seeded permutation, reshuffled each iteration", "[data]") {
  auto ds = data::Dataset::from_tensor_slices({range(0, 50, 1, int32)}).shuffle(50, 9);
  auto a = firsts(ds), b = firsts(ds);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == firsts(data::Dataset::from_tensor_slices({range(0, 50, 1, int32)})));
  CHECK(a != b);
  // the same seed gives the same sequence of orders
  auto again = data::Dataset::from_tensor_slices({range(0, 50, 1, int32)}).shuffle(50, 9);
  CHECK(firsts(again) == a);
  auto fixed = data::Dataset::from_tensor_slices({range(0, 50, 1, int32)}).shuffle(50, 9, false);
  CHECK(firsts(fixed) == firsts(fixed));
  // a small buffer only moves elements a little ahead
  auto local = firsts(data::Dataset::from_tensor_slices({range(0, 50, 1, int32)}).shuffle(2, 1));
  CHECK(local[0] <= 1);
}

TEST_CASE("repeat, take, skip, map and prefetch", "[data]") {
  auto ds = data::Dataset::from_tensor_slices({range(0, 3, 1, int32)});
  CHECK(firsts(ds.repeat(2)) == std::vector<int32_t>{0, 1, 2, 0, 1, 2});
  CHECK(ds.repeat().cardinality() == -2);
  CHECK(firsts(ds.repeat().take(7)) == std::vector<int32_t>{0, 1, 2, 0, 1, 2, 0});
  CHECK(firsts(ds.skip(1)) == std::vector<int32_t>{1, 2});
  CHECK(ds.take(2).cardinality() == 2);
  CHECK(firsts(ds.repeat(0)).empty());
  auto doubled = ds.map([](const data::Element& e) { return data::Element{e[0] * 2}; });
  CHECK(firsts(doubled) == std::vector<int32_t>{0, 2, 4});
  auto pre = data::Dataset::from_tensor_slices({range(0, 100, 1, int32)}).map([](const data::Element& e) {
               return data::Element{e[0] + 1};
             }).batch(10).prefetch(3);
  auto v = firsts(pre);
  REQUIRE(v.size() == 100);
  CHECK(v.front() == 1);
  CHECK(v.back() == 100);
  // an iterator destroyed early stops its producer thread
  { auto it = pre.begin_iteration(); it->next(); }
  // errors raised while producing come out of next()
  auto failing = ds.map([](const data::Element& e) -> data::Element {
                   if (e[0].item<int32_t>() == 1) fail<InvalidArgument>("my_map", "bad element");
                   return e;
                 }).prefetch(2);
  auto it = failing.begin_iteration();
  CHECK(it->next().has_value());
  CHECK_THROWS_WITH(it->next(), Contains("bad element"));
}

TEST_CASE("dataset errors are typed", "[data][errors]") {
  CHECK_THROWS_AS(data::Dataset::from_tensor_slices({}), InvalidArgument);
  CHECK_THROWS_AS(data::Dataset::from_tensor_slices({scalar(1.0f)}), InvalidArgument);
  CHECK_THROWS_WITH(data::Dataset::from_tensor_slices({ones({3}), ones({4})}), Contains("same first dim"));
  auto ds = data::Dataset::from_tensor_slices({ones({3})});
  CHECK_THROWS_AS(ds.batch(0), InvalidArgument);
  CHECK_THROWS_AS(ds.shuffle(0), InvalidArgument);
  CHECK_THROWS_AS(ds.repeat(-2), InvalidArgument);
  CHECK_THROWS_AS(ds.take(-2), InvalidArgument);
  CHECK_THROWS_AS(ds.prefetch(0), InvalidArgument);
  auto ragged = ds.map([](const data::Element& e) {
    static int n = 0;
    return data::Element{ones({++n})};
  });
  CHECK_THROWS_WITH(firsts(ragged.batch(2)), Contains("cannot batch"));
}
