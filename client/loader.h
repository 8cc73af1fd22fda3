// The site's multi-threaded batch loader: decodes, augments and normalizes the images of a
// split part on worker threads, a few batches ahead of the training step, and hands
// batches over in a fixed order. With the same seed and epoch the batches are identical
// whatever the number of workers: the row order comes from (seed, epoch) and each row's
// augmentation from (seed, epoch, row).
//
// Thread-compatible: one consumer calls StartEpoch/Next; the workers are internal.
#ifndef DERMFED_CLIENT_LOADER_H_
#define DERMFED_CLIENT_LOADER_H_

#include <torch/types.h>

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/image/transforms.h"
#include "common/status.h"

namespace dermfed::client {

// What the loader reads for each row; images are decoded lazily from `image_paths`.
struct LoaderSource {
  std::vector<std::string> image_paths;  // one per row
  std::vector<int64_t> labels;           // one per row
  std::vector<float> metadata;           // rows x metadata_width, row-major (may be empty)
  int metadata_width = 0;
  // Optional, one per row: where the row came from ("DIR/metadata.csv:17"), for errors.
  std::vector<std::string> row_context;
};

struct LoaderConfig {
  int image_size = 224;
  int batch_size = 32;
  int workers = 2;           // decoding threads
  int prefetch_batches = 4;  // how far the workers may run ahead
  bool shuffle = true;
  AugmentConfig augment;
  uint64_t seed = 0;
};

struct Batch {
  torch::Tensor images;    // B x 3 x S x S float32
  torch::Tensor metadata;  // B x M float32, undefined when M == 0
  torch::Tensor labels;    // B int64
  std::vector<int> rows;   // indices into the source
};

class BatchLoader {
 public:
  // `rows` are the source rows this loader serves (a split part). REQUIRES: `source` outlives
  // the loader.
  BatchLoader(const LoaderSource& source, std::vector<int> rows, LoaderConfig config);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  int64_t num_rows() const { return static_cast<int64_t>(rows_.size()); }
  int64_t num_batches() const;

  // Starts (or restarts) an epoch: the row order is drawn from (seed, epoch).
  void StartEpoch(int epoch);
  // The next batch of the epoch, std::nullopt after the last; an image that cannot be
  // decoded is an error naming the file.
  StatusOr<std::optional<Batch>> Next();

 private:
  void Work();
  void StopWorkers();
  Status BuildBatch(int64_t index, Batch* batch);

  const LoaderSource& source_;
  std::vector<int> rows_;
  LoaderConfig config_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int> order_;             // row indices for this epoch
  int epoch_ = 0;
  int64_t next_to_build_ = 0;          // guarded by mu_
  int64_t next_to_hand_out_ = 0;       // guarded by mu_
  bool stop_ = false;                  // guarded by mu_
  std::map<int64_t, StatusOr<Batch>> ready_;  // guarded by mu_
  std::vector<std::thread> workers_;
};

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_LOADER_H_
