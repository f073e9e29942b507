// Shapes: element counts, overflow, broadcasting, axis normalization, printing.
#include <catch2/catch.hpp>

#include "runtime/errors.h"
#include "runtime/shape.h"

using namespace kiln;

TEST_CASE("shape prints like TensorFlow", "[shape]") {
  CHECK(Shape{}.to_string() == "()");
  CHECK(Shape{3}.to_string() == "(3,)");
  CHECK(Shape{3, 2, 4, 5}.to_string() == "(3, 2, 4, 5)");
  CHECK(Shape{3, 1}.as_list() == std::vector<int64_t>{3, 1});
  CHECK(Shape{3, 2, 4, 5}[-1] == 5);
  CHECK_THROWS_AS(Shape{3}[1], OutOfRange);
}

TEST_CASE("element counts check overflow", "[shape]") {
  CHECK(Shape{}.num_elements() == 1);
  CHECK(Shape{3, 0, 5}.num_elements() == 0);
  CHECK_THROWS_AS((Shape{int64_t{1} << 40, int64_t{1} << 40}.num_elements()), InvalidArgument);
  CHECK((Shape{int64_t{1} << 40, int64_t{1} << 40, 0}.num_elements()) == 0);
  CHECK_THROWS_AS((Shape{-2, 3}.num_elements()), InvalidArgument);
}

TEST_CASE("broadcasting follows NumPy", "[shape]") {
  CHECK(broadcast_shapes("t", Shape{3, 1}, Shape{4}) == Shape{3, 4});
  CHECK(broadcast_shapes("t", Shape{}, Shape{2, 2}) == Shape{2, 2});
  CHECK(broadcast_shapes("t", Shape{2, 1, 3}, Shape{5, 1}) == Shape{2, 5, 3});
  CHECK_THROWS_WITH(broadcast_shapes("add", Shape{2, 3}, Shape{4}),
                    "[add] incompatible shapes for broadcasting: [2, 3] and [4]");
  CHECK(normalize_axis("t", -1, 3) == 2);
  CHECK_THROWS_AS(normalize_axis("t", 3, 3), InvalidArgument);
}
