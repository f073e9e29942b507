// Eager per-op latency: Kiln against LibTorch (and a hand-written loop for large elementwise
// work) in the same run, printed as a table of times and ratios.
//   usage: bench_eager_ops [--threads N]
#include <torch/torch.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "bench/timing.h"
#include "kiln/kiln.h"

namespace {

struct Row {
  std::string name;
  double kiln_ns, ref_ns;
  std::string ref_name;
};

void print(const std::vector<Row>& rows) {
  std::printf("%-34s %14s %14s %10s  %s\n", "benchmark", "kiln", "reference", "ref/kiln", "reference is");
  for (const Row& r : rows) {
    std::printf("%-34s %14s %14s %9.2fx  %s\n", r.name.c_str(), kiln::bench::format_ns(r.kiln_ns).c_str(),
                kiln::bench::format_ns(r.ref_ns).c_str(), r.ref_ns / r.kiln_ns, r.ref_name.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  using kiln::bench::keep;
  using kiln::bench::time_ns;
  int threads = 0;
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
  if (threads > 0) {
    kiln::set_num_threads(threads);
    torch::set_num_threads(threads);
  }
  std::printf("threads: kiln %d, torch %d\n", kiln::get_num_threads(), torch::get_num_threads());
  torch::NoGradGuard no_grad;
  std::vector<Row> rows;

  {  // a 1-element add: the fixed cost of an eager op
    kiln::Tensor a = kiln::constant({1.0f}), b = kiln::constant({2.0f});
    torch::Tensor ta = torch::ones({1}), tb = torch::ones({1});
    double k = time_ns([&] { keep(a + b); });
    double t = time_ns([&] { keep(ta + tb); });
    rows.push_back({"add, 1 element (float32)", k, t, "LibTorch"});
  }
  {  // 10x10 matmul
    kiln::Tensor a = kiln::random::normal({10, 10}, 1), b = kiln::random::normal({10, 10}, 2);
    torch::Tensor ta = torch::randn({10, 10}), tb = torch::randn({10, 10});
    double k = time_ns([&] { keep(kiln::matmul(a, b)); });
    double t = time_ns([&] { keep(torch::matmul(ta, tb)); });
    rows.push_back({"matmul 10x10 (float32)", k, t, "LibTorch"});
  }
  {  // power(x, 100) on a 10x10 int32 matrix, as in the walkthrough
    kiln::Tensor x = kiln::random::uniform({10, 10}, 3, 0, 3, kiln::int32);
    torch::Tensor tx = torch::randint(0, 3, {10, 10}, torch::kInt32);
    double k = time_ns([&] {
      kiln::Tensor r = kiln::eye(10, kiln::int32);
      for (int i = 0; i < 100; ++i) r = kiln::matmul(x, r);
      keep(r);
    });
    double t = time_ns([&] {
      torch::Tensor r = torch::eye(10, torch::kInt32);
      for (int i = 0; i < 100; ++i) r = torch::matmul(tx, r);
      keep(r);
    });
    rows.push_back({"power(x, 100), 10x10 int32", k, t, "LibTorch"});
  }
  {  // large elementwise work against LibTorch and a hand-written loop
    const int64_t n = 1 << 20;
    kiln::Tensor a = kiln::random::normal({n}, 4), b = kiln::random::normal({n}, 5);
    torch::Tensor ta = torch::randn({n}), tb = torch::randn({n});
    std::vector<float> ha(a.to_vector<float>()), hb(b.to_vector<float>()), hc(n);
    double k = time_ns([&] { keep(a + b); });
    double t = time_ns([&] { keep(ta + tb); });
    double h = time_ns([&] {
      const float *x = ha.data(), *y = hb.data();
      float* z = hc.data();
      for (int64_t i = 0; i < n; ++i) z[i] = x[i] + y[i];
      keep(hc);
    });
    rows.push_back({"add, 1M elements (float32)", k, t, "LibTorch"});
    rows.push_back({"add, 1M elements (float32)", k, h, "hand-written loop, 1 thread"});
    double ke = time_ns([&] { keep(kiln::exp(a)); });
    double te = time_ns([&] { keep(torch::exp(ta)); });
    rows.push_back({"exp, 1M elements (float32)", ke, te, "LibTorch"});
  }
  {  // a large matmul: oneDNN's sgemm against LibTorch's OpenBLAS
    kiln::Tensor a = kiln::random::normal({512, 512}, 6), b = kiln::random::normal({512, 512}, 7);
    torch::Tensor ta = torch::randn({512, 512}), tb = torch::randn({512, 512});
    double k = time_ns([&] { keep(kiln::matmul(a, b)); }, 5);
    double t = time_ns([&] { keep(torch::matmul(ta, tb)); }, 5);
    rows.push_back({"matmul 512x512 (float32)", k, t, "LibTorch"});
  }
  {  // a reduction
    kiln::Tensor a = kiln::random::normal({1024, 1024}, 8);
    torch::Tensor ta = torch::randn({1024, 1024});
    double k = time_ns([&] { keep(kiln::reduce_sum(a, 1)); });
    double t = time_ns([&] { keep(ta.sum(1)); });
    rows.push_back({"reduce_sum axis 1, 1024x1024", k, t, "LibTorch"});
  }
  print(rows);
  return 0;
}
