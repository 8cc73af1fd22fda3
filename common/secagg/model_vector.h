// A model update as the vector secure aggregation sums: the float32 tensors that are
// aggregated (not FedBN's local ones), each element clipped to ±clip, multiplied by the
// site's weight w (its training examples, at most max_weight) and quantized to Z_{2^32};
// then w itself as the last word. The masked sum's last word is Σw, so the coordinator gets
// the weighted FedAvg mean Σ w·Δ / Σ w without seeing any site's Δ or w.
//
// Thread-compatible.
#ifndef DERMFED_COMMON_SECAGG_MODEL_VECTOR_H_
#define DERMFED_COMMON_SECAGG_MODEL_VECTOR_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/model_state.h"
#include "common/status.h"

namespace dermfed::secagg {

// The name and dtype of the single tensor a masked update travels as.
inline constexpr char kMaskedTensorName[] = "secagg/masked";

struct QuantParams {
  double scale = 0;        // crypto::ChooseScale(clip, sites, max_weight)
  float clip = 1;          // per-element bound on Δ
  int64_t max_weight = 1;  // weights above this are clamped
};

struct VectorLayout {
  std::vector<size_t> tensors;  // indexes of the aggregated float32 tensors
  size_t words = 0;             // their elements + 1 (the weight)
};

VectorLayout LayoutFor(const ModelState& model, const std::set<std::string>& local_tensors);

// A ModelState holding one int32 tensor kMaskedTensorName of `words` elements (zeroed).
StatusOr<ModelState> NewMaskedState(size_t words);
// Checks that an uploaded masked update has exactly that layout.
Status CheckMaskedLayout(const ModelState& masked, size_t words, const std::string& what);

// Site: writes layout.words words into `out` (w·clip(Δ) quantized, then w).
Status EncodeWeighted(const ModelState& delta, const VectorLayout& layout, int64_t num_examples,
                      const QuantParams& params, uint32_t* out);
// Coordinator: the weighted mean delta in `global`'s layout (tensors outside the layout are
// zero) from the unmasked sum; `total_weight` gets Σw. FAILED_PRECONDITION if Σw is 0.
StatusOr<ModelState> DecodeMean(const std::vector<uint32_t>& sum, const ModelState& global,
                                const VectorLayout& layout, const QuantParams& params,
                                int64_t* total_weight);

}  // namespace dermfed::secagg

#endif  // DERMFED_COMMON_SECAGG_MODEL_VECTOR_H_
