// The walkthrough's variables chapter ("变量") in C++: creating variables, using them as tensors,
// assignment, copies, names, trainability and device placement.
#include <kiln/kiln.h>

#include <iostream>

using namespace kiln;

int main() {
  std::cout << "1. Creating variables\n";
  Tensor my_tensor = constant({{1.0, 2.0}, {3.0, 4.0}});
  Variable my_variable(my_tensor);
  Variable bool_variable(constant({false, false, false, true}));
  Variable complex_variable(constant({std::complex<double>(5, 4), std::complex<double>(6, 1)}));
  std::cout << "Shape:  " << my_variable.shape() << "\n";
  std::cout << "DType:  " << my_variable.dtype() << "\n";
  std::cout << "As NumPy:  " << numpy_str(my_variable) << "\n";

  std::cout << "\n2. Variables in ops\n";
  std::cout << "A variable: " << my_variable << "\n";
  std::cout << "\nViewed as a tensor: " << Tensor(my_variable) << "\n";
  std::cout << "\nIndex of highest value: " << argmax(my_variable) << "\n";
  std::cout << "\nCopying and reshaping:  " << reshape(my_variable, {1, 4}) << "\n";

  std::cout << "\n3. Assignment\n";
  Variable a(constant({2.0, 3.0}));
  a.assign({1, 2});  // keeps the dtype, float32
  try {
    a.assign({1.0, 2.0, 3.0});  // not allowed: it would resize the variable
  } catch (const Error& e) {
    std::cout << e.type_name() << ": " << e.what() << "\n";
  }
  a = Variable(constant({2.0, 3.0}));
  Variable b(a);  // a copy: the two never share memory
  a.assign({5, 6});
  std::cout << numpy_str(a) << "\n";
  std::cout << numpy_str(b) << "\n";
  std::cout << numpy_str(a.assign_add({2, 3})) << "\n";
  std::cout << numpy_str(a.assign_sub({7, 9})) << "\n";

  std::cout << "\n4. Names and trainability\n";
  Variable mark1(my_tensor, "Mark");
  Variable mark2(my_tensor + 1, "Mark");  // the same name, a different value
  std::cout << (mark1 == mark2) << "\n";
  Variable step_counter(constant(1), "Variable", /*trainable=*/false);
  std::cout << step_counter << "\n";

  std::cout << "\n5. Placing variables and tensors\n";
  Tensor c;
  {
    DeviceScope cpu("CPU:0");
    Variable va(constant({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}));
    Tensor vb = constant({{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}});
    c = matmul(va, vb);
  }
  std::cout << c << "\n";
  Variable va, vb;
  {
    DeviceScope cpu("CPU:0");
    va = Variable(constant({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}));
    vb = Variable(constant({{1.0, 2.0, 3.0}}));
  }
  Tensor k;
  {
    DeviceScope gpu("GPU:0");  // without a GPU this runs on the CPU (soft placement)
    k = va * vb;
  }
  std::cout << k << "\n";
  return 0;
}
