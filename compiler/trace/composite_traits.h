// Ragged and sparse tensors as arguments and results of traced functions: their type specs
// (structure, dtypes, shapes) are part of the signature.
#pragma once

#include "compiler/trace/signature.h"
#include "ops/ragged.h"
#include "ops/sparse.h"

namespace kiln {

/// A ragged argument: its values and row splits are tensor leaves (their dtypes and shapes,
/// hence the number of rows and values, select the graph).
template <>
struct ArgTraits<RaggedTensor> {
  static void key(const RaggedTensor& r, trace::KeyBuilder& k) {
    k.add(0x7a99000000000000ull);
    k.add_tensor(r.values());
    k.add_tensor(r.row_splits());
  }
  static void leaves(const RaggedTensor& r, trace::LeafList& out) {
    out.push_back(r.values());
    out.push_back(r.row_splits());
  }
  static RaggedTensor trace(const RaggedTensor& r, const std::string& path, trace::TraceArgs& a) {
    Tensor values = a.tensor(r.values(), path + ".values");
    Tensor splits = a.tensor(r.row_splits(), path + ".row_splits");
    return RaggedTensor::from_row_splits(values, splits);
  }
};

/// A sparse argument: indices and values are tensor leaves; the dense shape is a static value
/// (as TensorFlow's SparseTensorSpec holds it), so ops that need it work inside the trace.
template <>
struct ArgTraits<SparseTensor> {
  static void key(const SparseTensor& s, trace::KeyBuilder& k) {
    k.add(0x5a45000000000000ull | uint64_t(s.shape().rank()));
    for (int64_t d : s.shape()) k.add(uint64_t(d));
    k.add_tensor(s.indices());
    k.add_tensor(s.values());
  }
  static void leaves(const SparseTensor& s, trace::LeafList& out) {
    out.push_back(s.indices());
    out.push_back(s.values());
  }
  static SparseTensor trace(const SparseTensor& s, const std::string& path, trace::TraceArgs& a) {
    a.static_value(path + ".dense_shape", s.shape().to_list_string());
    Tensor indices = a.tensor(s.indices(), path + ".indices");
    Tensor values = a.tensor(s.values(), path + ".values");
    return SparseTensor(indices, values, s.dense_shape());
  }
};

template <>
struct ResultTraits<RaggedTensor> {
  static void leaves(const RaggedTensor& r, trace::LeafList& out) {
    out.push_back(r.values());
    out.push_back(r.row_splits());
  }
  static RaggedTensor skeleton(const RaggedTensor&) { return RaggedTensor(); }
  static RaggedTensor rebuild(const RaggedTensor&, std::span<const Tensor> v, size_t& i) {
    Tensor values = v[i++];
    Tensor splits = v[i++];
    return RaggedTensor::from_row_splits(values, splits);
  }
};

/// A sparse result keeps the dense shape it had when traced.
template <>
struct ResultTraits<SparseTensor> {
  static void leaves(const SparseTensor& s, trace::LeafList& out) {
    out.push_back(s.indices());
    out.push_back(s.values());
  }
  static SparseTensor skeleton(const SparseTensor& s) {
    return SparseTensor(zeros({0, s.shape().rank()}, int64), zeros({0}, s.dtype()), s.dense_shape());
  }
  static SparseTensor rebuild(const SparseTensor& sk, std::span<const Tensor> v, size_t& i) {
    Tensor indices = v[i++];
    Tensor values = v[i++];
    return SparseTensor(indices, values, sk.dense_shape());
  }
};

}  // namespace kiln
