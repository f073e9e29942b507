// Segment sums: unsorted_segment_sum (TensorFlow semantics), the scatter-add that the gradients of
// gather and strided_slice are built from. Sums run in a fixed order, so results are reproducible.
#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/defs/elementwise_common.h"
#include "ops/defs/shape_common.h"
#include "ops/kernels/cpu/scalar_fn.h"

namespace kiln::ops {
namespace {

TypeList infer_unsorted_segment_sum(const OpDef& def, const Attrs& attrs, std::span<const Tensor> in) {
  const Tensor &data = in[0], &ids = in[1];
  check_dtype_class(def.name, "data", data.dtype(), S | U | F | C);
  if (ids.dtype() != DType::Int32 && ids.dtype() != DType::Int64)
    fail<InvalidArgument>(def.name, "segment_ids must be int32 or int64, got ", dtype_name(ids.dtype()));
  const int64_t num_segments = attrs.get_int("num_segments");
  if (num_segments < 0) fail<InvalidArgument>(def.name, "num_segments must be non-negative, got ", num_segments);
  const Shape &ds = data.shape(), &is = ids.shape();
  bool prefix = is.rank() <= ds.rank();
  for (int64_t i = 0; prefix && i < is.rank(); ++i) {
    const int64_t a = ds.dim(size_t(i)), b = is.dim(size_t(i));
    prefix = a == b || a < 0 || b < 0;  // unknown dims (tracing) are checked when the op runs
  }
  if (!prefix)
    fail<InvalidArgument>(def.name, "segment_ids shape ", is.to_string(), " must be a prefix of data shape ",
                          ds.to_string());
  Shape out{num_segments};
  for (int64_t i = is.rank(); i < ds.rank(); ++i) out.push_back(ds.dim(size_t(i)));
  if (out.is_fully_defined()) checked_nbytes(def.name, out, data.dtype());
  return {TensorType{data.dtype(), out}};
}

// Columns summed per work unit: the accumulators of one unit live on the stack.
constexpr int64_t kColumnBlock = 256;
// Element additions below which the kernel stays on the calling thread.
constexpr int64_t kSegmentGrain = int64_t{1} << 15;

void kernel_unsorted_segment_sum(KernelContext& ctx) {
  const Tensor &data = ctx.inputs[0], &ids = ctx.inputs[1];
  const int64_t num_segments = ctx.attrs.get_int("num_segments");
  const int64_t rows = ids.num_elements();
  // read and validate every id before anything is written, so a bad id never writes memory
  std::vector<int64_t> seg(size_t(rows), 0);
  auto read_ids = [&](auto* idx) {
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t v = static_cast<int64_t>(idx[i]);
      if (v < 0 || v >= num_segments)
        fail<InvalidArgument>(ctx.def.name, "segment_ids", multi_index_string(i, ids.shape()), " = ", v,
                              " is not in [0, ", num_segments, ") (num_segments ", num_segments, ")");
      seg[size_t(i)] = v;
    }
  };
  if (ids.dtype() == DType::Int32)
    read_ids(static_cast<const int32_t*>(ids.raw_data()));
  else
    read_ids(static_cast<const int64_t*>(ids.raw_data()));
  Tensor& out = ctx.output(0);
  const int64_t total = out.num_elements();
  if (total == 0) return;
  const int64_t inner = total / num_segments;
  // segments no id names stay zero (all-zero bits are 0 for every numeric dtype)
  const unsigned char zero[16] = {};
  fill_elements(static_cast<char*>(out.mutable_raw_data()), total, dtype_size(out.dtype()), zero);
  if (rows == 0 || inner == 0) return;

  // positions grouped by segment, each group in increasing position, so every output element sums
  // its rows in one fixed order; a sort keeps the scratch memory proportional to the ids, not to
  // num_segments
  std::vector<int64_t> order(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) order[size_t(r)] = r;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return seg[size_t(a)] < seg[size_t(b)]; });
  std::vector<int64_t> run_start;  // run g is order[run_start[g] .. run_start[g + 1])
  for (int64_t k = 0; k < rows; ++k)
    if (k == 0 || seg[size_t(order[size_t(k)])] != seg[size_t(order[size_t(k - 1)])]) run_start.push_back(k);
  const int64_t runs = static_cast<int64_t>(run_start.size());
  run_start.push_back(rows);

  visit_dtype(data.dtype(), ctx.def.name, [&](auto tag) {
    using T = decltype(tag);
    if constexpr ((dtype_class_of<T>() & (S | U | F | C)) != 0) {
      using A = cpu::acc_t<T>;
      const T* x = static_cast<const T*>(data.raw_data());
      T* o = static_cast<T*>(out.mutable_raw_data());
      // a unit is one run (segment) and one block of columns; units never share an output element
      const int64_t blocks = (inner + kColumnBlock - 1) / kColumnBlock;
      const int64_t units = runs * blocks;
      const int64_t grain = std::max<int64_t>(1, kSegmentGrain * units / std::max<int64_t>(1, rows * inner));
      parallel_for(units, grain, [&](int64_t ub, int64_t ue) {
        A acc[kColumnBlock];
        for (int64_t u = ub; u < ue; ++u) {
          const int64_t g = u / blocks, j0 = (u % blocks) * kColumnBlock;
          const int64_t w = std::min(kColumnBlock, inner - j0);
          std::fill(acc, acc + w, A(0));
          for (int64_t k = run_start[size_t(g)]; k < run_start[size_t(g) + 1]; ++k) {
            const T* row = x + order[size_t(k)] * inner + j0;
            for (int64_t j = 0; j < w; ++j) acc[j] += static_cast<A>(row[j]);
          }
          T* dst = o + seg[size_t(order[size_t(run_start[size_t(g)])])] * inner + j0;
          for (int64_t j = 0; j < w; ++j) dst[j] = static_cast<T>(acc[j]);
        }
      });
    }
  });
}

}  // namespace

OpDef define_UnsortedSegmentSum() {
  OpDef d;
  d.traits = kDifferentiable;
  d.num_inputs = 2;
  d.attrs = {{"num_segments", AttrKind::Int}};
  d.infer = infer_unsorted_segment_sum;
  d.cpu_kernel = kernel_unsorted_segment_sum;
  return d;
}

}  // namespace kiln::ops
