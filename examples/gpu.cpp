// GPUs (docs/gpu.md): tensors and variables on GPU:0, eager ops there, and traced functions
// compiled to CUDA kernels. Without a GPU it says why and stops. Every value here is exact in
// float32, so the transcript is the same on any GPU (and on the CUDA emulator ctest uses).
#include <iostream>

#include "kiln/kiln.h"

using namespace kiln;

// The walkthrough's power(x, n): n - 1 chained matmuls.
Tensor power(Tensor x, int n) {
  Tensor y = x;
  for (int i = 1; i < n; ++i) y = matmul(y, x);
  return y;
}

int main() {
  if (gpu_count() == 0) {
    std::cout << "no GPU: " << cuda::unavailable_reason() << "\n";
    return 0;
  }
  const Device gpu = Device::parse("GPU:0");

  std::cout << "1. Tensors on the GPU\n";
  Tensor a = constant({{1.0f, 2.0f}, {3.0f, 4.0f}}).to(gpu);
  std::cout << a.device().to_string() << "\n" << a << "\n";  // printing copies to the host
  Tensor b;
  {
    DeviceScope scope(gpu);  // ops in the scope run on GPU:0
    b = matmul(a, a) + 1.0f;
  }
  std::cout << b.device().to_string() << "\n" << b << "\n";

  std::cout << "\n2. A variable on the GPU\n";
  Variable w;
  {
    DeviceScope scope(gpu);
    w = Variable(constant({1.0f, -2.0f}), "w");
  }
  w.assign_add(constant({0.5f, 0.5f}));  // the value is copied to the variable's device
  std::cout << w.read_value().device().to_string() << "\n" << w.read_value() << "\n";

  std::cout << "\n3. A traced function called with GPU inputs runs as CUDA kernels\n";
  auto f = function([](Tensor x) { return relu(x * 2.0f - 3.0f); });
  Tensor y = f(a);
  std::cout << y.device().to_string() << "\n" << y << "\n";

  std::cout << "\n4. power(x, 100) of a 10x10 permutation: 99 matmuls, one kernel\n";
  // a cyclic shift of the rows: its 100th power shifts by 100 = 0 (mod 10), the identity
  Tensor shift = gather(eye(10, int32), constant({1, 2, 3, 4, 5, 6, 7, 8, 9, 0}));
  auto p = function([](Tensor x) { return power(x, 100); });
  Tensor z = p(shift.to(gpu));
  std::cout << z.device().to_string() << "\n" << reduce_all(equal(z.to(kCPU), eye(10, int32))) << "\n";
  return 0;
}
