// Train/validation/test splits that keep every group (patient or lesion) in one part, so no
// patient's images are both trained on and tested on, and that keep each class's share of
// rows close to the requested fractions in every part. Deterministic for a seed on every
// platform (own shuffle and generator; nothing from <random>'s distributions).
//
// Thread-safe: free functions.
#ifndef DERMFED_CLIENT_DATA_SPLIT_H_
#define DERMFED_CLIENT_DATA_SPLIT_H_

#include <cstdint>
#include <vector>

#include "client/data/dataset.h"
#include "common/status.h"

namespace dermfed::client {

struct SplitFractions {
  double train = 0.70;
  double validation = 0.15;
  double test = 0.15;
};

// Indices into Dataset::rows, ascending within each part.
struct DatasetSplit {
  std::vector<int> train;
  std::vector<int> validation;
  std::vector<int> test;
};

// Groups are shuffled by `seed`, then placed largest first, each into the part where it
// brings the per-class row counts closest to their targets (class count x fraction, each
// class weighted by its size so that rare classes count as much as common ones, and the
// part's total row count weighted like one more class). When that leaves a part with a
// nonzero fraction empty (tiny datasets), it takes the smallest group of the fullest part.
// Fails when a fraction is negative or they do not sum to 1, when the dataset is empty or a
// label is out of range, and when a part with a nonzero fraction ends up empty (too few
// groups for the fractions).
StatusOr<DatasetSplit> SplitByGroup(const Dataset& dataset, const SplitFractions& fractions,
                                    uint64_t seed);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_DATA_SPLIT_H_
