// A site's compressed update (common/update_codec.h) as the coordinator decodes it: the
// bytes of the one "codec/<name>" tensor, against the layout of the global model the fuzz
// targets share (float weights, BatchNorm statistics sent raw, an int64 counter, float16).
// Input: byte 0 picks the codec (bits 0-1: fp16, int8, topk, topk) and whether the length is
// taken as it is (bit 7) or cut/padded to the size the negotiated codec and layout make
// (so most inputs reach the per-tensor decoding); bits 2-6 pick topk's fraction. The rest is
// the encoding.
//
// Checks beyond memory safety: CheckEncodedManifest accepts exactly the size EncodedBytes
// says; a refusal names the upload or the tensor; a decoded update has the layout's
// manifest and finite float32 values; it re-encodes (error feedback off) and decodes again
// to the same values for fp16 and topk (both are exact on what they decoded) and for every
// tensor sent raw (not float32, or a BatchNorm running statistic) under any codec.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/update_codec.h"
#include "tests/fuzz/fuzz_model.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dermfed;
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  static const UpdateCodec kCodecs[] = {UpdateCodec::kFp16, UpdateCodec::kInt8,
                                        UpdateCodec::kTopK, UpdateCodec::kTopK};
  CodecOptions options;
  options.codec = kCodecs[mode & 3];
  options.topk_fraction = (((mode >> 2) & 31) + 1) / 32.0;
  const ModelState& layout = fuzz::FuzzGlobalModel();
  const uint64_t expected = EncodedBytes(layout.manifest(), options);

  std::vector<uint8_t> bytes(data + 1, data + size);
  if (!(mode & 0x80)) bytes.resize(expected, 0);
  std::vector<TensorSpec> manifest = {
      {EncodedTensorName(options.codec), DType::kUInt8, {static_cast<int64_t>(bytes.size())},
       0, bytes.size()}};
  const Status shape = CheckEncodedManifest(manifest, layout.manifest(), options, "fuzz update");
  fuzz::Trace("encoded manifest", shape);
  FUZZ_CHECK(shape.ok() == (bytes.size() == expected),
             "CheckEncodedManifest disagrees with EncodedBytes: " + shape.ToString());
  if (!shape.ok()) return 0;
  auto encoded = ModelState::FromParts(manifest, bytes.data(), bytes.size());
  FUZZ_CHECK(encoded.ok(), "FromParts refused a checked manifest: " + encoded.status().ToString());

  auto decoded = DecodeUpdate(*encoded, layout, options, "fuzz update");
  fuzz::Trace("decode", decoded.status());
  if (!decoded.ok()) {
    FUZZ_CHECK(decoded.status().message().find("fuzz update") != std::string::npos ||
                   decoded.status().message().find("tensor '") != std::string::npos,
               "a refusal names neither the upload nor the tensor: " + decoded.status().ToString());
    return 0;
  }
  FUZZ_CHECK(decoded->CheckSameLayout(layout).ok(), "decoded update has another layout");
  for (const TensorSpec& t : decoded->manifest()) {
    if (t.dtype != DType::kFloat32) continue;
    const float* x = reinterpret_cast<const float*>(decoded->data() + t.offset);
    for (int64_t i = 0; i < t.numel(); ++i) {
      FUZZ_CHECK(std::isfinite(x[i]), "decoded '" + t.name + "' holds a non-finite value");
    }
  }
  // What decodes must survive another trip (a site could have sent exactly this).
  auto again = EncodeUpdate(*decoded, options);
  FUZZ_CHECK(again.ok(), "a decoded update does not re-encode: " + again.status().ToString());
  auto twice = DecodeUpdate(*again, layout, options, "fuzz update (re-encoded)");
  FUZZ_CHECK(twice.ok(), "a re-encoded update does not decode: " + twice.status().ToString());
  auto ends_with = [](const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  for (const TensorSpec& t : decoded->manifest()) {
    const uint8_t* a = decoded->data() + t.offset;
    const uint8_t* b = twice->data() + t.offset;
    const bool raw = t.dtype != DType::kFloat32 || ends_with(t.name, "running_mean") ||
                     ends_with(t.name, "running_var");
    if (raw) {
      FUZZ_CHECK(std::memcmp(a, b, t.nbytes) == 0, "raw tensor '" + t.name + "' changed");
    } else if (options.codec != UpdateCodec::kInt8) {  // int8 re-quantizes with a new scale
      const float* x = reinterpret_cast<const float*>(a);
      const float* y = reinterpret_cast<const float*>(b);
      for (int64_t i = 0; i < t.numel(); ++i) {
        FUZZ_CHECK(x[i] == y[i], "tensor '" + t.name + "' changed in a second round trip");
      }
    }
  }
  return 0;
}
