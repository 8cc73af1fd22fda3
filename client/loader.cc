#include "client/loader.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "client/image/codec.h"

namespace dermfed::client {

BatchLoader::BatchLoader(const LoaderSource& source, std::vector<int> rows, LoaderConfig config)
    : source_(source), rows_(std::move(rows)), config_(config) {
  config_.batch_size = std::max(1, config_.batch_size);
  config_.workers = std::max(1, config_.workers);
  config_.prefetch_batches = std::max(1, config_.prefetch_batches);
}

BatchLoader::~BatchLoader() { StopWorkers(); }

int64_t BatchLoader::num_batches() const {
  return (num_rows() + config_.batch_size - 1) / config_.batch_size;
}

void BatchLoader::StopWorkers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void BatchLoader::StartEpoch(int epoch) {
  StopWorkers();
  order_ = rows_;
  if (config_.shuffle) {
    // Fisher-Yates with our own generator: the order must not depend on the library.
    Rng rng = RowRng(config_.seed, static_cast<uint64_t>(epoch), ~0ull);
    for (size_t i = order_.size(); i > 1; --i) {
      std::swap(order_[i - 1], order_[rng() % i]);
    }
  }
  epoch_ = epoch;
  next_to_build_ = 0;
  next_to_hand_out_ = 0;
  ready_.clear();
  stop_ = false;
  for (int w = 0; w < config_.workers; ++w) workers_.emplace_back([this] { Work(); });
}

void BatchLoader::Work() {
  while (true) {
    int64_t index;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] {
        return stop_ || next_to_build_ >= num_batches() ||
               next_to_build_ < next_to_hand_out_ + config_.prefetch_batches;
      });
      if (stop_ || next_to_build_ >= num_batches()) return;
      index = next_to_build_++;
    }
    Batch batch;
    Status s = BuildBatch(index, &batch);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (s.ok()) {
        ready_.emplace(index, std::move(batch));
      } else {
        ready_.emplace(index, s);
      }
    }
    cv_.notify_all();
  }
}

Status BatchLoader::BuildBatch(int64_t index, Batch* batch) {
  const int64_t begin = index * config_.batch_size;
  const int64_t end = std::min<int64_t>(begin + config_.batch_size, num_rows());
  const int64_t n = end - begin;
  const int s = config_.image_size;
  const int m = source_.metadata_width;
  // Decoding threads must not fan out into LibTorch's pool; these ops are tiny anyway.
  batch->images = torch::empty({n, 3, s, s}, torch::kFloat32);
  batch->labels = torch::empty({n}, torch::kInt64);
  if (m > 0) batch->metadata = torch::empty({n, m}, torch::kFloat32);
  float* img = batch->images.data_ptr<float>();
  int64_t* lab = batch->labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int row = order_[static_cast<size_t>(begin + i)];
    batch->rows.push_back(row);
    auto decoded = DecodeImageFile(source_.image_paths[row], s);
    if (!decoded.ok()) {
      if (static_cast<size_t>(row) < source_.row_context.size()) {
        return Annotate(decoded.status(), source_.row_context[row]);
      }
      return decoded.status();
    }
    Rng rng = RowRng(config_.seed, static_cast<uint64_t>(epoch_), static_cast<uint64_t>(row));
    TransformToTensor(*decoded, s, config_.augment, rng, img + i * 3 * s * s);
    lab[i] = source_.labels[row];
    if (m > 0) {
      std::copy_n(source_.metadata.data() + static_cast<size_t>(row) * m, m,
                  batch->metadata.data_ptr<float>() + i * m);
    }
  }
  return OkStatus();
}

StatusOr<std::optional<Batch>> BatchLoader::Next() {
  std::unique_lock<std::mutex> lock(mu_);
  if (workers_.empty() && next_to_hand_out_ < num_batches()) {
    return FailedPreconditionError("BatchLoader::Next called before StartEpoch");
  }
  if (next_to_hand_out_ >= num_batches()) return std::optional<Batch>();
  const int64_t want = next_to_hand_out_;
  cv_.wait(lock, [&] { return ready_.count(want) > 0; });
  auto node = ready_.extract(want);
  ++next_to_hand_out_;
  lock.unlock();
  cv_.notify_all();
  if (!node.mapped().ok()) return node.mapped().status();
  return std::optional<Batch>(std::move(node.mapped()).value());
}

}  // namespace dermfed::client
