// `dermfed datagen`: writes a generated dataset in a public dataset's exact on-disk format
// (PAD-UFES-20 or ISIC-2019), with the real class imbalance, patient/lesion grouping, missing
// values, and a learnable class signal in both the images and the metadata. Tests, benchmarks
// and the demo use it; no real dataset is ever committed or downloaded.
//
// Thread-compatible.
#ifndef DERMFED_CLIENT_DATAGEN_H_
#define DERMFED_CLIENT_DATAGEN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace dermfed::client {

struct DatagenOptions {
  std::string format;  // "pad-ufes-20" or "isic-2019"
  std::string out_dir;
  int64_t images = 2298;
  uint64_t seed = 1;
  int image_size = 128;
};

// Splits `total` over classes in proportion to `weights` (largest remainder), giving every
// class at least one image when total >= number of classes.
std::vector<int64_t> ProportionalCounts(const std::vector<double>& weights, int64_t total);

// Writes the dataset; the folder is created and must not already hold a dataset.
Status GenerateDataset(const DatagenOptions& options);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_DATAGEN_H_
