// Generated skin-lesion-like images and metadata with a learnable class signal, in memory.
// For the quickstart demo and tests; the on-disk dataset generator (`dermfed datagen`, in the
// public datasets' native formats) builds on the same drawing code.
//
// Thread-compatible.
#ifndef DERMFED_CLIENT_SYNTHETIC_H_
#define DERMFED_CLIENT_SYNTHETIC_H_

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace dermfed::client {

// Rows of (normalized image, encoded metadata, label) as tensors.
struct TensorDataset {
  torch::Tensor images;    // N x 3 x H x W float32, ImageNet-normalized
  torch::Tensor metadata;  // N x M float32, or undefined when M == 0
  torch::Tensor labels;    // N int64

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  std::vector<int64_t> ClassCounts(int64_t num_classes) const;
  TensorDataset Slice(int64_t begin, int64_t end) const;
  TensorDataset Select(const torch::Tensor& indices) const;
};

struct SyntheticSpec {
  int64_t rows = 480;
  int64_t num_classes = 6;
  int64_t image_size = 64;
  int64_t metadata_dim = 8;
  uint64_t seed = 1;
  // Relative class frequencies (need not sum to 1); empty = PAD-UFES-20's imbalance
  // (BCC 845, ACK 730, NEV 244, SEK 235, SCC 192, MEL 52) cycled over num_classes.
  std::vector<double> class_weights;
};

// Draws one lesion image per label: N x 3 x size x size floats in [0, 1]. Each class has its
// own lesion colour and border-ring frequency; position, size, skin tone and noise vary per
// image. `generator` is a CPU generator (at::detail::createCPUGenerator(seed)).
torch::Tensor DrawLesionImages(const torch::Tensor& labels, int64_t num_classes, int64_t image_size,
                               at::Generator& generator);

// Each class has its own lesion colour and border texture; the lesion's position, size and
// the skin tone vary per row, with noise, so the task is learnable but not trivial. The
// metadata carries a weaker, noisy class signal. Deterministic for a seed.
TensorDataset MakeSyntheticDataset(const SyntheticSpec& spec);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_SYNTHETIC_H_
