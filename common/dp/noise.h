// Client-level clipping and Gaussian noise for DP-FedAvg (McMahan et al., ICLR 2018), on
// raw float buffers and on ModelStates.
//
// Each site's update Δ_k is clipped to L2 norm C, so one site changes the SUM of updates by
// at most C (its sensitivity). Gaussian noise of standard deviation z·C on that sum, with
// z the noise multiplier, then makes one round the sampled Gaussian mechanism that
// RdpAccountant accounts for. There are two places to add it:
//
//  * Central DP — the coordinator sees clipped updates, sums them, adds N(0, (z·C)²) to
//    every coordinate of the SUM once, and only then divides (McMahan et al. divide by a
//    fixed denominator, the expected number of sites, so the divisor reveals nothing).
//    Weighting sites by example count raises the sensitivity to C · max weight; weight
//    only with weights bounded by 1, or not at all. Use CentralNoiseStddev().
//
//  * Distributed DP — under secure aggregation the coordinator sees only the sum, so each
//    site adds its own share: N(0, (z·C)² / m) per coordinate, where m is the smallest
//    number of sites whose sum may be unmasked. Any s ≥ m survivors then sum to variance
//    s/m · (z·C)² ≥ (z·C)². If fewer than m survive, the round must be dropped, not
//    unmasked: the sum would carry less noise than was accounted for. Use
//    DistributedNoiseStddev().
//
// Noise comes from SecureRng, a ChaCha20 stream keyed from OpenSSL's RAND_priv_bytes: DP
// noise that an adversary can predict or reconstruct (std::mt19937 from a logged seed)
// protects nothing. Normal samples are Box–Muller over 53-bit uniforms (tails are cut at
// |x| ≈ 8.57σ, a 1e-17 event). The noise is rounded to float32 when added; like every
// floating-point Gaussian, it is not hardened against the low-order-bit attack of Mironov
// (CCS 2012), which needs the exact released floats and a weak mantissa — acceptable for
// model updates, not for releasing small counts.
//
// Thread-safety: the free functions are thread-safe on disjoint buffers. A SecureRng is
// not thread-safe: use one per thread.
#ifndef DERMFED_COMMON_DP_NOISE_H_
#define DERMFED_COMMON_DP_NOISE_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/model_state.h"
#include "common/status.h"

namespace dermfed::dp {

class SecureRngTestPeer;  // tests only (tests/common/dp/secure_rng_test_peer.h)

// A cryptographically secure random stream: ChaCha20 (RFC 8439) with "fast key erasure"
// — every refill encrypts zeros under the current key, keeps the first 32 bytes as the next
// key and hands out the rest — so the state held at any moment cannot reproduce noise that
// was already handed out. There is deliberately no way for production code to choose the
// key: Create() draws it from RAND_priv_bytes.
class SecureRng {
 public:
  static constexpr size_t kKeyBytes = 32;
  // Output bytes per key: refill n encrypts 32 + kRefillBytes zero bytes under key n with a
  // zero IV (RFC 8439 counter 0, nonce 0); bytes 0..31 become key n+1, the rest is output.
  static constexpr size_t kRefillBytes = 16 * 1024;

  // A stream keyed with 32 fresh bytes from OpenSSL's private DRBG (seeded by the OS).
  static StatusOr<SecureRng> Create();

  // A moved-from SecureRng may only be destroyed or assigned to.
  SecureRng(SecureRng&&) noexcept;
  SecureRng& operator=(SecureRng&&) noexcept;
  SecureRng(const SecureRng&) = delete;
  SecureRng& operator=(const SecureRng&) = delete;
  ~SecureRng();  // wipes the key and the unread stream

  // The next n bytes of the stream.
  Status Fill(uint8_t* out, size_t n);
  // Uniform on (0, 1], with 53 random bits: ((u >> 11) + 1) · 2^-53.
  StatusOr<double> NextUniform();
  // n independent N(0, 1) samples (Box–Muller).
  Status FillStandardNormal(double* out, size_t n);

 private:
  friend class SecureRngTestPeer;
  struct State;
  explicit SecureRng(const uint8_t key[kKeyBytes]);
  Status Refill();

  std::unique_ptr<State> state_;
};

// L2 norm of x[0..n), accumulated in double.
double L2Norm(const float* x, size_t n);

// Scales x down to L2 norm `clip` when its norm exceeds clip (to just under it — by a
// relative 2^-22 — so float rounding cannot leave it above); otherwise leaves it alone.
// Returns the norm before clipping. Errors (x untouched): clip not positive and finite;
// x holding a NaN or infinity (such an update must be rejected, not clipped).
StatusOr<double> ClipToNorm(float* x, size_t n, double clip);

// x[i] += N(0, stddev²) for every i. REQUIRES stddev positive and finite (else
// InvalidArgument; no noise is a configuration error, not a request).
Status AddGaussianNoise(float* x, size_t n, double stddev, SecureRng& rng);

// ModelState overloads: the vector is all float32 tensors taken together (one norm, one
// clip). Integer and bool tensors are skipped — they are NOT protected, so a DP update
// must not carry data-dependent ones (e.g. BatchNorm's num_batches_tracked). float64,
// float16 and bfloat16 tensors are an error naming the tensor.
StatusOr<double> L2Norm(const ModelState& state);
StatusOr<double> ClipToNorm(ModelState* state, double clip);
Status AddGaussianNoise(ModelState* state, double stddev, SecureRng& rng);

// Central DP: the standard deviation the coordinator adds to the sum, z·C.
StatusOr<double> CentralNoiseStddev(double noise_multiplier, double clip);
// Distributed DP: the standard deviation each site adds, z·C/√m, so that any m or more
// surviving sites' noise sums to at least the central variance. REQUIRES min_sites >= 1.
StatusOr<double> DistributedNoiseStddev(double noise_multiplier, double clip, int min_sites);

}  // namespace dermfed::dp

#endif  // DERMFED_COMMON_DP_NOISE_H_
