// CollectingAggregator: the aggregator of the robust strategies (FedMedian, trimmed mean,
// Krum), which must see every update individually. It validates each update as the
// streaming aggregator does, keeps a copy of it (memory O(sites × model)), and leaves the
// combination to a subclass at Finish.
//
// Robust strategies are deliberately unweighted: num_examples must still be > 0, but it does
// not enter the aggregate. Letting a site's self-reported example count weight a median or
// a Krum score would let one Byzantine site buy back the influence those rules take away.
//
// Thread-compatible.
#ifndef DERMFED_COORDINATOR_STRATEGIES_COLLECTING_AGGREGATOR_H_
#define DERMFED_COORDINATOR_STRATEGIES_COLLECTING_AGGREGATOR_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "coordinator/strategies/tensor_ops.h"
#include "coordinator/strategy.h"

namespace dermfed::coordinator {

class CollectingAggregator : public Aggregator {
 public:
  struct Update {
    std::string site;
    int64_t num_examples;
    ModelState delta;
  };

  explicit CollectingAggregator(const ModelState& global);

  Status Fold(const std::string& site, int64_t num_examples, const ModelState& delta) override;
  int num_folded() const override { return static_cast<int>(updates_.size()); }
  StatusOr<ModelState> Finish() override;

 protected:
  // Writes the aggregate of `updates` (at least one, in fold order) into `out`, which has
  // the global layout and is all zeros; only floating tensors need writing.
  virtual Status Combine(const std::vector<Update>& updates, ModelState* out) = 0;

 private:
  Status init_status_;
  ModelState out_;  // the global's layout, zeros; becomes Finish's result
  std::vector<Update> updates_;
  bool finished_ = false;
};

// Reads elements [start, start + count) of a floating tensor as doubles into `out`.
void LoadBlockAsDouble(const uint8_t* data, DType dtype, int64_t start, int64_t count, double* out);

// For every floating tensor and coordinate, gathers the updates' n values into a scratch
// array and stores reduce(values, n) (which may reorder the values) into `out`. Works in
// blocks of coordinates so each update is read sequentially.
template <typename Reduce>
void CombineCoordinateWise(const std::vector<CollectingAggregator::Update>& updates,
                           ModelState* out, Reduce reduce) {
  constexpr int64_t kBlock = 512;
  const size_t n = updates.size();
  std::vector<double> block(n * kBlock);
  std::vector<double> values(n);
  for (size_t t = 0; t < out->num_tensors(); ++t) {
    const TensorSpec& spec = out->manifest()[t];
    if (!IsFloating(spec.dtype)) continue;
    const int64_t numel = spec.numel();
    for (int64_t start = 0; start < numel; start += kBlock) {
      const int64_t count = std::min(kBlock, numel - start);
      for (size_t s = 0; s < n; ++s) {
        LoadBlockAsDouble(updates[s].delta.TensorData(t), spec.dtype, start, count,
                          &block[s * kBlock]);
      }
      for (int64_t j = 0; j < count; ++j) {
        for (size_t s = 0; s < n; ++s) values[s] = block[s * kBlock + j];
        StoreFromDouble(reduce(values.data(), n), spec.dtype, start + j, out->TensorData(t));
      }
    }
  }
}

}  // namespace dermfed::coordinator

#endif  // DERMFED_COORDINATOR_STRATEGIES_COLLECTING_AGGREGATOR_H_
