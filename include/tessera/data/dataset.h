// Datasets: indexable collections of (input, target) examples that a DataLoader batches.
//
// A Dataset returns whole batches (get_batch with a list of indices), so an implementation
// gathers rows with one memcpy each instead of building per-example tensors and stacking them.
// get_batch is const and must be thread-safe: DataLoader calls it from worker threads. It may
// allocate tensors (ts::empty, raw_data) but must not run parallel Tensor ops.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "tessera/export.h"
#include "tessera/tensor.h"

namespace tessera::data {

/// One batch: inputs and targets with the batch along axis 0.
struct Batch {
  Tensor inputs;
  Tensor targets;
};

class TESSERA_API Dataset {
 public:
  virtual ~Dataset();
  /// Number of examples.
  virtual int64_t size() const = 0;
  /// The examples at `indices` (each in [0, size()), repeats allowed), stacked along a new axis 0.
  /// Throws IndexError for an index out of range. Thread-safe.
  virtual Batch get_batch(std::span<const int64_t> indices) const = 0;
};

/// Rows of `t` (any dtype, any rank >= 1) at `indices`: shape [indices.size(), t.shape[1:]...].
/// `t` must be contiguous on a host device. Only allocation and memcpy: safe on worker threads.
/// Throws IndexError naming `op` for an index outside [0, t.size(0)).
TESSERA_API Tensor gather_rows(const Tensor& t, std::span<const int64_t> indices, const char* op = "gather_rows");

/// Examples are the rows (axis 0) of two tensors of any dtype, returned unchanged.
/// Throws ShapeError when the tensors are rank 0 or their first axes differ.
class TESSERA_API TensorDataset : public Dataset {
 public:
  TensorDataset(Tensor inputs, Tensor targets);
  int64_t size() const override { return inputs_.size(0); }
  Batch get_batch(std::span<const int64_t> indices) const override;
  const Tensor& inputs() const { return inputs_; }
  const Tensor& targets() const { return targets_; }

 private:
  Tensor inputs_, targets_;
};

/// Images kept as uint8 [N, C, H, W] in memory (4x smaller than float) with integer labels [N].
/// get_batch returns float32 images scaled to [0, 1] (pixel / 255) and int64 labels [B].
/// Throws DTypeError for non-uint8 images or non-integer labels, ShapeError for other ranks or
/// mismatched counts.
class TESSERA_API ImageDataset : public Dataset {
 public:
  ImageDataset(Tensor images, Tensor labels);
  int64_t size() const override { return images_.size(0); }
  Batch get_batch(std::span<const int64_t> indices) const override;
  /// uint8 [N, C, H, W].
  const Tensor& images() const { return images_; }
  /// int64 [N].
  const Tensor& labels() const { return labels_; }

 private:
  Tensor images_, labels_;
};

}  // namespace tessera::data
