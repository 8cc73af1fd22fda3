// Rényi-DP accounting for client-level DP-FedAvg (McMahan et al., ICLR 2018): each round
// the coordinator samples sites with probability q = sampled / total and adds Gaussian
// noise of standard deviation z·C to the sum of updates clipped to norm C, so a round is
// one application of the Poisson-subsampled Gaussian mechanism with noise multiplier z.
//
// The RDP of that mechanism is computed as in Mironov, Talwar & Zhang 2019, "Rényi
// Differential Privacy of the Sampled Gaussian Mechanism" (arXiv:1908.10530, Sec. 3.3), in
// log space: the same computation as TensorFlow Privacy's `compute_rdp` and Opacus's
// `accountants/analysis/rdp.py` (`_compute_log_a` for integer and fractional orders; q = 1
// reduces to the plain Gaussian, α / (2 z²)). RDP composes by addition over rounds.
//
// (ε, δ) comes from the conversion of Balle et al. 2020 ("Hypothesis testing
// interpretations and Rényi DP", Thm. 21) / Canonne, Kamath & Steinke 2020 (Prop. 12):
//   ε(α) = rdp(α) + log((α − 1)/α) − (log δ + log α) / (α − 1),
// minimised over the orders, exactly as dp_accounting / TF Privacy `compute_epsilon` do
// (orders ≤ 1.01 are skipped as numerically unstable; ε is 0 when δ² ≥ 1 − e^(−rdp), the
// KL bound). Opacus's `get_privacy_spent` is the same formula without those two guards.
//
// Thread-compatible: const methods may run concurrently; Step/Restore need exclusion.
#ifndef DERMFED_COMMON_DP_RDP_ACCOUNTANT_H_
#define DERMFED_COMMON_DP_RDP_ACCOUNTANT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/status.h"

namespace dermfed::dp {

// The default orders: TF Privacy's `compute_dp_sgd_privacy` list plus 64,
//   [1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5, 5, 6, ..., 63, 64, 128, 256, 512].
// The large orders matter in the cross-silo regime (few sites, q near 1, few rounds, large
// z), where the best order for a small ε can exceed 63 (Opacus's default list stops there).
std::vector<double> DefaultRdpOrders();

// RDP of `steps` compositions of the Poisson-subsampled Gaussian mechanism, one value per
// order (+inf where it does not exist or cannot be computed). Errors name the bad input:
// noise_multiplier must be > 0 and finite, 0 < sample_rate <= 1, steps >= 1, orders > 1.
StatusOr<std::vector<double>> ComputeRdp(double sample_rate, double noise_multiplier, int64_t steps,
                                         const std::vector<double>& orders);

struct PrivacySpent {
  double epsilon = 0;     // the smallest ε over the orders; +inf if none gives a bound
  double delta = 0;       // the δ it was asked for
  double best_order = 0;  // the order that gives ε
};

// (ε, best order) at `delta` from RDP values (see the conversion above).
// REQUIRES: orders.size() == rdp.size(), 0 < delta < 1 (else InvalidArgument).
StatusOr<PrivacySpent> EpsilonFromRdp(const std::vector<double>& orders,
                                      const std::vector<double>& rdp, double delta);

// Accumulates RDP over the rounds of one training run and answers "what has it spent".
// The history is kept as runs of identical (z, q) steps, so a checkpoint of a thousand
// rounds at constant settings is one line.
class RdpAccountant {
 public:
  struct Segment {
    double noise_multiplier = 0;
    double sample_rate = 0;
    int64_t steps = 0;
  };

  // An accountant over DefaultRdpOrders().
  RdpAccountant();

  // An accountant over `orders` (each finite and > 1, no duplicates; else InvalidArgument).
  static StatusOr<RdpAccountant> WithOrders(std::vector<double> orders);

  // Records `steps` rounds with noise multiplier z = sigma / clip and sampling rate
  // q = sites sampled per round / total sites. On error nothing is recorded. Repeating the
  // last (z, q) only counts; a new (z, q) costs one RDP evaluation per order.
  Status Step(double noise_multiplier, double sample_rate, int64_t steps = 1);

  // ε at `delta` (0 < delta < 1) for everything recorded so far, with its best order.
  StatusOr<PrivacySpent> Spent(double delta) const;

  const std::vector<double>& orders() const { return orders_; }
  // Accumulated RDP, one value per order.
  std::vector<double> rdp() const;
  const std::vector<Segment>& history() const { return history_; }
  int64_t total_steps() const;

  // A one-line text form for the coordinator's checkpoint, e.g.
  //   "dermfed-rdp/1;orders=1.25,1.5,...;steps=1.1:1:30,1.3:0.5:12"
  // Doubles are written with 17 significant digits, so Restore is exact.
  std::string Serialize() const;
  // Parses Serialize()'s output and replays the history (re-validating every field).
  static StatusOr<RdpAccountant> Restore(absl::string_view text);

 private:
  explicit RdpAccountant(std::vector<double> orders);

  std::vector<double> orders_;
  std::vector<Segment> history_;
  std::vector<std::vector<double>> per_step_rdp_;  // RDP of one step, per history segment
};

}  // namespace dermfed::dp

#endif  // DERMFED_COMMON_DP_RDP_ACCOUNTANT_H_
