// The mask generator of secure aggregation: PRG(key, context) = the AES-256-CTR keystream
// under `key` with the 16-byte initial counter block SHA-256(context)[0..16), read as
// little-endian uint32 words. Sites add PRG(b_u) (self mask) and ±PRG(s_uv) (pairwise
// masks, + for v > u, − for v < u) to their quantized update in Z_{2^32}; the pairwise
// masks cancel in the sum and the coordinator removes the self masks after unmasking.
//
// The context must name everything the mask is for (round, model version, purpose): the
// same key with the same context gives the same stream, by design, so both ends of a pair
// agree without talking. Distinct contexts start the counter at unrelated points; with at
// most ~2^25 blocks per stream, overlapping two streams is a 2^-100 event.
//
// The format is part of the protocol: every site must expand masks identically.
//
// Thread-safe: free functions with no shared state.
#ifndef DERMFED_COMMON_CRYPTO_PRG_H_
#define DERMFED_COMMON_CRYPTO_PRG_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/crypto/secret.h"
#include "common/status.h"

namespace dermfed::crypto {

inline constexpr size_t kMaskKeyBytes = 32;

enum class MaskSign { kAdd, kSubtract };

// v[i] += PRG(key, context)[i] (kAdd) or v[i] -= ... (kSubtract), mod 2^32, streaming the
// keystream in 64 KiB blocks so a model-sized v needs no second model-sized buffer.
// REQUIRES: key has kMaskKeyBytes bytes; context non-empty (else InvalidArgument).
Status AddMask(absl::Span<uint32_t> v, ByteSpan key, absl::string_view context, MaskSign sign);

// The first `count` words of PRG(key, context). For tests and small vectors; use AddMask on
// model-sized ones.
StatusOr<std::vector<uint32_t>> ExpandMask(ByteSpan key, absl::string_view context,
                                           size_t count);

}  // namespace dermfed::crypto

#endif  // DERMFED_COMMON_CRYPTO_PRG_H_
