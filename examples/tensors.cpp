// The walkthrough's tensor chapter ("张量") in C++: creating tensors, host access, math, shapes,
// indexing, reshape, dtypes and cast, broadcasting, ragged, string and sparse tensors. Prints what
// the walkthrough prints.
#include <kiln/kiln.h>

#include <iostream>

using namespace kiln;

int main() {
  std::cout << "1. Basic tensors\n";
  Tensor rank_0_tensor = constant(4);
  std::cout << rank_0_tensor << "\n";
  Tensor rank_1_tensor = constant({2.0, 3.0, 4.0});
  std::cout << rank_1_tensor << "\n";
  Tensor rank_2_tensor = constant({{1, 2}, {3, 4}, {5, 6}}, float16);
  std::cout << rank_2_tensor << "\n";
  Tensor rank_3_tensor = constant({{{0, 1, 2, 3, 4}, {5, 6, 7, 8, 9}},
                                   {{10, 11, 12, 13, 14}, {15, 16, 17, 18, 19}},
                                   {{20, 21, 22, 23, 24}, {25, 26, 27, 28, 29}}});
  std::cout << rank_3_tensor << "\n";

  std::cout << "\n2. Converting to host values\n";
  std::cout << numpy_str(rank_2_tensor) << "\n";
  std::vector<Half> host = rank_2_tensor.to_vector<Half>();
  std::cout << "to_vector<Half>() has " << host.size() << " elements, first " << float(host[0]) << "\n";

  std::cout << "\n3. Math\n";
  Tensor a = constant({{1, 2}, {3, 4}});
  Tensor b = ones({2, 2}, int32);
  std::cout << add(a, b) << "\n\n";
  std::cout << multiply(a, b) << "\n\n";
  std::cout << matmul(a, b) << "\n\n";
  std::cout << a + b << "\n\n";
  std::cout << a * b << "\n\n";
  Tensor c = constant({{4.0, 5.0}, {10.0, 1.0}});
  std::cout << reduce_max(c) << "\n";
  std::cout << argmax(c) << "\n";
  std::cout << softmax(c) << "\n";
  std::cout << reduce_max(constant({1, 2, 3})) << "\n";

  std::cout << "\n4. Shapes\n";
  Tensor rank_4_tensor = zeros({3, 2, 4, 5});
  std::cout << "Type of every element: " << rank_4_tensor.dtype() << "\n";
  std::cout << "Number of axes: " << rank_4_tensor.ndim() << "\n";
  std::cout << "Shape of tensor: " << rank_4_tensor.shape() << "\n";
  std::cout << "Elements along axis 0 of tensor: " << rank_4_tensor.shape()[0] << "\n";
  std::cout << "Elements along the last axis of tensor: " << rank_4_tensor.shape()[-1] << "\n";
  std::cout << "Total number of elements (3*2*4*5):  " << size(rank_4_tensor).item<int32_t>() << "\n";
  std::cout << rank(rank_4_tensor) << "\n";
  std::cout << shape_of(rank_4_tensor) << "\n";

  std::cout << "\n5. Indexing\n";
  Tensor fib = constant({0, 1, 1, 2, 3, 5, 8, 13, 21, 34});
  std::cout << numpy_str(fib) << "\n";
  std::cout << "First: " << numpy_str(fib.index({0})) << "\n";
  std::cout << "Second: " << numpy_str(fib.index({1})) << "\n";
  std::cout << "Last: " << numpy_str(fib.index({-1})) << "\n";
  std::cout << "Everything: " << numpy_str(fib.index({Slice()})) << "\n";
  std::cout << "Before 4: " << numpy_str(fib.index({Slice(None, 4)})) << "\n";
  std::cout << "From 4 to the end: " << numpy_str(fib.index({Slice(4, None)})) << "\n";
  std::cout << "From 2, before 7: " << numpy_str(fib.index({Slice(2, 7)})) << "\n";
  std::cout << "Every other item: " << numpy_str(fib.index({Slice(None, None, 2)})) << "\n";
  std::cout << "Reversed: " << numpy_str(fib.index({Slice(None, None, -1)})) << "\n";
  std::cout << numpy_str(rank_2_tensor) << "\n";
  std::cout << numpy_str(rank_2_tensor.index({1, 1})) << "\n";
  std::cout << "Second row: " << numpy_str(rank_2_tensor.index({1, Slice()})) << "\n";
  std::cout << "Second column: " << numpy_str(rank_2_tensor.index({Slice(), 1})) << "\n";
  std::cout << "Last row: " << numpy_str(rank_2_tensor.index({-1, Slice()})) << "\n";
  std::cout << "First item in last column: " << numpy_str(rank_2_tensor.index({0, -1})) << "\n";
  std::cout << "Skip the first row:\n" << numpy_str(rank_2_tensor.index({Slice(1, None), Slice()})) << " \n\n";
  std::cout << rank_3_tensor.index({Slice(), Slice(), 4}) << "\n";

  std::cout << "\n6. Manipulating shapes\n";
  Tensor x = constant({{1}, {2}, {3}});
  std::cout << x.shape() << "\n";
  std::cout << x << "\n";
  std::cout << x.shape().to_list_string() << "\n";
  Tensor reshaped = reshape(x, {1, 3});
  std::cout << x.shape() << "\n";
  std::cout << reshaped.shape() << "\n";
  std::cout << reshape(rank_3_tensor, {-1}) << "\n";
  std::cout << reshape(rank_3_tensor, {3 * 2, 5}) << " \n\n";
  std::cout << reshape(rank_3_tensor, {3, -1}) << "\n";
  std::cout << reshape(rank_3_tensor, {2, 3, 5}) << " \n\n";
  std::cout << reshape(rank_3_tensor, {5, 6}) << " \n\n";
  try {
    reshape(rank_3_tensor, {7, -1});
  } catch (const Error& e) {
    std::cout << e.type_name() << ": " << e.what() << "\n";
  }

  std::cout << "\n7. DTypes\n";
  Tensor the_f64_tensor = constant({2.2, 3.3, 4.4}, float64);
  Tensor the_f16_tensor = cast(the_f64_tensor, float16);
  Tensor the_u8_tensor = cast(the_f16_tensor, uint8);
  std::cout << the_u8_tensor << "\n";

  std::cout << "\n8. Broadcasting\n";
  Tensor bx = constant({1, 2, 3});
  Tensor by = constant(2);
  Tensor bz = constant({2, 2, 2});
  std::cout << multiply(bx, constant(2)) << "\n";
  std::cout << bx * by << "\n";
  std::cout << bx * bz << "\n";
  bx = reshape(bx, {3, 1});
  by = range(1, 5);
  std::cout << bx << " \n\n";
  std::cout << by << " \n\n";
  std::cout << multiply(bx, by) << "\n";
  std::cout << broadcast_to(constant({1, 2, 3}), {3, 3}) << "\n";

  std::cout << "\n9. Ragged tensors\n";
  try {
    constant({{0, 1, 2, 3}, {4, 5}, {6, 7, 8}, {9}});
  } catch (const Error& e) {
    std::cout << e.type_name() << ": " << e.what() << "\n";
  }
  RaggedTensor ragged_tensor = ragged::constant({{0, 1, 2, 3}, {4, 5}, {6, 7, 8}, {9}});
  std::cout << ragged_tensor << "\n";
  std::cout << ragged_tensor.shape() << "\n";

  std::cout << "\n10. String tensors\n";
  Tensor scalar_string_tensor = constant("Gray wolf");
  std::cout << scalar_string_tensor << "\n";
  Tensor tensor_of_strings = constant({"Gray wolf", "Quick brown fox", "Lazy dog"});
  std::cout << tensor_of_strings << "\n";
  std::cout << constant("🥳👍") << "\n";
  std::cout << strings::split(scalar_string_tensor, " ") << "\n";
  std::cout << strings::split(tensor_of_strings) << "\n";
  Tensor text = constant("1 10 100");
  std::cout << strings::to_number(strings::split(text, " ")) << "\n";
  Tensor byte_strings = strings::bytes_split(constant("Duck"));
  Tensor byte_ints = io::decode_raw(constant("Duck"), uint8);
  std::cout << "Byte strings: " << byte_strings << "\n";
  std::cout << "Bytes: " << byte_ints << "\n";
  Tensor unicode_bytes = constant("アヒル 🦆");
  Tensor unicode_char_bytes = strings::unicode_split(unicode_bytes, "UTF-8");
  Tensor unicode_values = strings::unicode_decode(unicode_bytes, "UTF-8");
  std::cout << "\nUnicode bytes: " << unicode_bytes << "\n";
  std::cout << "\nUnicode chars: " << unicode_char_bytes << "\n";
  std::cout << "\nUnicode values: " << unicode_values << "\n";

  std::cout << "\n11. Sparse tensors\n";
  sparse::SparseTensor sparse_tensor({{0, 0}, {1, 2}}, {1, 2}, {3, 4});
  std::cout << sparse_tensor << " \n\n";
  std::cout << sparse::to_dense(sparse_tensor) << "\n";
  return 0;
}
