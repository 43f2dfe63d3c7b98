// DataLoader: batches of a Dataset in a (shuffled) order, assembled ahead on worker threads.
//
//   ts::data::DataLoader loader(ts::data::FashionMnist::train(), {.batch_size = 64, .shuffle = true});
//   for (int e = 0; e < 5; ++e)
//     for (auto& [images, labels] : loader) step(images, labels);
//
// Order: epoch e visits a permutation of [0, size) drawn from Philox with key `seed` and
// counter (i, e) (Fisher-Yates), so it depends only on (seed, epoch), never on threads or
// workers. Batch k holds order[k*batch_size ...]; the last short batch is dropped with drop_last.
//
// Position: the loader remembers (epoch, batch) = the next batch it will hand out. A loop starts
// at that position; each batch handed out advances it, and handing out the last batch of an epoch
// moves it to (epoch + 1, 0) (so inside the loop body position() is what a checkpoint must store).
// Breaking out of a loop keeps the position, so the next loop continues the same epoch;
// set_epoch() / set_position() restart elsewhere (e.g. from a checkpoint: the remaining batches
// are identical to an uninterrupted run).
//
// Workers: with num_workers = W > 0, W threads assemble batches ahead, batch k on worker k % W,
// each keeping at most `prefetch` finished batches; batches are delivered in order. An exception
// thrown by Dataset::get_batch is rethrown to the loop at that batch. Leaving a loop (break,
// exception) or destroying the loader stops and joins the workers. num_workers = 0 assembles each
// batch on the calling thread. One loop at a time per loader: starting a new loop ends the previous
// one (its iterator then compares equal to end()).
#pragma once

#include <cstdint>
#include <iterator>
#include <memory>
#include <vector>

#include "tessera/data/dataset.h"
#include "tessera/export.h"

namespace tessera::data {

struct DataLoaderOptions {
  int64_t batch_size = 64;
  bool shuffle = false;
  uint64_t seed = 0;
  bool drop_last = false;
  /// Background threads assembling batches; 0 = synchronous.
  int num_workers = 1;
  /// Finished batches each worker may hold ahead of the consumer (>= 1).
  int prefetch = 2;
};

struct LoaderPosition {
  int64_t epoch = 0;
  /// Batches of `epoch` already handed out (the index of the next one).
  int64_t batch = 0;
  friend bool operator==(const LoaderPosition&, const LoaderPosition&) = default;
};

class TESSERA_API DataLoader {
  struct Run;

 public:
  /// Throws ValueError for a null dataset, batch_size < 1, num_workers < 0 or prefetch < 1.
  explicit DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options = {});
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  const Dataset& dataset() const { return *dataset_; }
  const DataLoaderOptions& options() const { return options_; }
  /// Batches per epoch: ceil(size / batch_size), or floor with drop_last.
  int64_t num_batches() const;
  /// Examples per epoch (num_batches() * batch_size, less the short last batch).
  int64_t num_samples() const;

  /// The epoch of the next batch (already e + 1 while the body handles the last batch of epoch e).
  int64_t epoch() const { return pos_.epoch; }
  /// Starts epoch e at its first batch. Throws ValueError for e < 0.
  void set_epoch(int64_t e) { set_position(e, 0); }
  LoaderPosition position() const { return pos_; }
  /// Throws ValueError unless epoch >= 0 and 0 <= batch <= num_batches(); batch == num_batches()
  /// (a finished epoch) becomes (epoch + 1, 0). Ends a running loop.
  void set_position(int64_t epoch, int64_t batch);
  void set_position(LoaderPosition p) { set_position(p.epoch, p.batch); }

  /// The example order of epoch e (identity without shuffle).
  std::vector<int64_t> epoch_order(int64_t e) const;

  class TESSERA_API Iterator {
   public:
    using value_type = Batch;
    Iterator() = default;
    Iterator(Iterator&& o) noexcept;
    Iterator& operator=(Iterator&& o) noexcept;
    ~Iterator();
    Batch& operator*() { return batch_; }
    Batch* operator->() { return &batch_; }
    /// Moves to the next batch (waits for it); throws what its assembly threw.
    Iterator& operator++();
    bool at_end() const;
    friend bool operator==(const Iterator& it, std::default_sentinel_t) { return it.at_end(); }

   private:
    friend class DataLoader;
    explicit Iterator(DataLoader* loader);
    void fetch();
    void stop();
    DataLoader* loader_ = nullptr;
    std::shared_ptr<Run> run_;
    Batch batch_;
  };

  /// Starts a loop at position(); waits for its first batch. Ends any previous loop.
  Iterator begin();
  std::default_sentinel_t end() const { return {}; }

 private:
  void end_loop();
  std::shared_ptr<const Dataset> dataset_;
  DataLoaderOptions options_;
  LoaderPosition pos_;
  std::shared_ptr<Run> active_;  // the running loop, stopped on a new begin() or destruction
};

}  // namespace tessera::data
