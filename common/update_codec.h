// Update compression: the codecs a site may encode its model update (Δ = local − global)
// with before upload, negotiated once per federation (federation.compression) and sent to
// sites in the FederationSpec.
//
//   none  the raw ModelState (4 bytes per float32 value)
//   fp16  every float32 value as IEEE half precision (2 bytes; relative error ≤ 2^-11)
//   int8  per tensor one float32 scale s = max|x| / 127 and round(x / s) as int8
//         (1 byte; absolute error ≤ s / 2)
//   topk  per tensor the k = ceil(fraction · numel) values of largest magnitude, as
//         increasing uint32 indices plus float32 values (8 bytes per kept value); what was
//         not sent is kept at the site and added to the next round's update (error feedback)
//
// Only float32 tensors are compressed; every other tensor (BatchNorm's int64
// num_batches_tracked, float64, ...) travels as its raw bytes, so integer state is exact.
// BatchNorm running statistics (names ending in running_mean or running_var) travel raw
// too: they are state, not gradients, and a rounded or partly sent variance delta (top-k's
// residual is stale by a round) can make the aggregated variance negative.
//
// An encoded update is one ModelState holding a single uint8 tensor "codec/<name>", so it
// crosses the wire through the one chunking path (model_transfer.h) with its own digest.
// Its bytes, little-endian:
//   "DFU1", codec (1 byte), 3 zero bytes, tensor count (uint32), then per tensor of the
//   model's manifest in order:
//     raw (not float32, or a running statistic): nbytes raw bytes
//     fp16: numel × uint16          int8: float32 scale, numel × int8
//     topk: uint32 k, k × uint32 index (strictly increasing), k × float32 value
// The size is a function of the model's layout and the negotiated codec alone
// (EncodedBytes), so a receiver knows it before reading a byte. Decoding treats the bytes
// as hostile: sizes, counts, indices, scales and values are checked before use, and errors
// name the tensor.
//
// Thread-compatible: free functions over caller-owned states.
#ifndef DERMFED_COMMON_UPDATE_CODEC_H_
#define DERMFED_COMMON_UPDATE_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/model_state.h"
#include "common/status.h"
#include "dermfed/v1/federation.pb.h"

namespace dermfed {

enum class UpdateCodec : uint8_t { kNone = 0, kFp16 = 1, kInt8 = 2, kTopK = 3 };

struct CodecOptions {
  UpdateCodec codec = UpdateCodec::kNone;
  double topk_fraction = 0.01;  // topk: share of each float32 tensor's values sent, (0, 1]
};

// The codec a federation negotiated (its spec's compression and topk_fraction): what every
// site uploads with and the coordinator accepts. An error for an unknown name or fraction.
StatusOr<CodecOptions> NegotiatedCodec(const v1::FederationSpec& spec);

// "none" (or ""), "fp16", "int8", "topk"; an error listing them otherwise.
StatusOr<UpdateCodec> ParseUpdateCodec(std::string_view name);
std::string_view UpdateCodecName(UpdateCodec codec);
// INVALID_ARGUMENT unless topk_fraction is in (0, 1] (for topk).
Status ValidateCodecOptions(const CodecOptions& options);

// The name of the one tensor an encoded update travels as: "codec/fp16", ...
std::string EncodedTensorName(UpdateCodec codec);

// topk: values sent from a float32 tensor of `numel` elements.
uint64_t TopKCount(int64_t numel, double fraction);

// Exact size in bytes of the encoding of a state with this manifest.
// REQUIRES: options.codec != kNone, options valid.
uint64_t EncodedBytes(const std::vector<TensorSpec>& manifest, const CodecOptions& options);

// Encodes `delta`. Error feedback (topk only; ignored otherwise): when `residual` is not
// null, it is added to `delta` before the values are chosen and replaced by what was not
// sent (input − sent); an empty residual counts as zero, one of another layout is an
// error. The caller should keep the new residual only once the upload was accepted.
// Errors (naming the tensor): a non-finite value; a value beyond float16's range (fp16).
StatusOr<ModelState> EncodeUpdate(const ModelState& delta, const CodecOptions& options,
                                  ModelState* residual = nullptr);

// Checks that an untrusted encoded update's manifest is the single uint8 tensor of
// EncodedBytes(layout, options) bytes; `what` names the upload in the error.
Status CheckEncodedManifest(const std::vector<TensorSpec>& encoded,
                            const std::vector<TensorSpec>& layout, const CodecOptions& options,
                            const std::string& what);

// Decodes an untrusted encoded update into a fresh state with `layout`'s manifest.
// `what` names the upload ("update from site 'a' for round 3") in every error.
StatusOr<ModelState> DecodeUpdate(const ModelState& encoded, const ModelState& layout,
                                  const CodecOptions& options, const std::string& what);

}  // namespace dermfed

#endif  // DERMFED_COMMON_UPDATE_CODEC_H_
