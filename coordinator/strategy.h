// Strategy: how a round's site updates become the next global model. One interface, one
// file per algorithm (coordinator/strategies/), no sockets and no LibTorch: everything works
// on ModelState buffers.
//
// A round's lifecycle, as the RoundEngine drives it:
//   ConfigureFit(round)          -> key/values sent to every selected site (e.g. proximal_mu)
//   agg = NewAggregator(global)  ;  agg->Fold(site, n_k, Δ_k) as each update arrives
//   Δ = agg->Finish()            -> the aggregate delta (a weighted mean for linear strategies)
//   Apply(Δ, &global)            -> new global model (server optimizers keep state here)
//
// Linear strategies (FedAvg, FedProx, FedAdam/Yogi/Adagrad) fold each update into one running
// sum, so memory is O(model) however many sites report; they also accept masked fixed-point
// sums under secure aggregation. Robust ones (median, trimmed mean, Krum) must see every
// update individually: IsLinear() is false and the config loader refuses them with secure
// aggregation.
//
// Tensors that are not floating point (BatchNorm's num_batches_tracked) are not averaged:
// Apply leaves them as in the global model. Tensors whose names are in `local_tensors`
// (FedBN: BatchNorm weights, biases and statistics stay at the sites) are skipped too.
//
// Thread-compatible: the RoundEngine serializes calls on one Strategy and one Aggregator.
#ifndef DERMFED_COORDINATOR_STRATEGY_H_
#define DERMFED_COORDINATOR_STRATEGY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/model_state.h"
#include "common/status.h"

namespace dermfed::coordinator {

struct StrategyConfig {
  std::string name = "fedavg";  // fedavg | fedprox | fedadam | fedyogi | fedadagrad |
                                // fedmedian | trimmed_mean | krum
  double proximal_mu = 0.01;    // fedprox
  // Server optimizers (Reddi et al. 2021): x <- x + eta * m / (sqrt(v) + tau).
  double server_learning_rate = 0.01;
  double beta1 = 0.9;
  double beta2 = 0.99;
  double tau = 1e-3;
  double trim_fraction = 0.1;  // trimmed_mean: fraction cut at each end per coordinate
  int krum_byzantine = 1;      // krum: f, the number of Byzantine sites tolerated
  int krum_select = 1;         // krum: m; 1 = Krum, > 1 = Multi-Krum (mean of the m best)
};

class Aggregator {
 public:
  virtual ~Aggregator() = default;
  // Folds one site's delta, weighted by its number of training examples. The delta must
  // have the global model's layout (CheckSameLayout) and finite values; otherwise nothing
  // is folded and the error names the site and the tensor.
  virtual Status Fold(const std::string& site, int64_t num_examples, const ModelState& delta) = 0;
  // Number of updates folded so far.
  virtual int num_folded() const = 0;
  // The aggregate delta. REQUIRES: num_folded() >= 1 (else FailedPrecondition). Call once.
  virtual StatusOr<ModelState> Finish() = 0;
};

class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual std::string name() const = 0;
  virtual bool IsLinear() const = 0;
  // Per-round settings the sites need (e.g. {"proximal_mu", 0.01} for FedProx).
  virtual std::map<std::string, double> ConfigureFit(int round) const { return {}; }
  virtual std::unique_ptr<Aggregator> NewAggregator(const ModelState& global) const = 0;
  // global <- global (+) aggregate delta, for every floating-point tensor not in
  // local_tensors().
  virtual Status Apply(const ModelState& aggregate_delta, ModelState* global) = 0;

  // Server-side optimizer state (FedAdam's m and v, ...) as one ModelState so it is
  // checkpointed with the global model and a restarted coordinator resumes exactly; an empty
  // state (no tensors) for stateless strategies.
  virtual StatusOr<ModelState> SaveState() const;
  virtual Status RestoreState(const ModelState& state);

  void set_local_tensors(std::set<std::string> names) { local_tensors_ = std::move(names); }
  const std::set<std::string>& local_tensors() const { return local_tensors_; }

 protected:
  std::set<std::string> local_tensors_;
};

// Builds the strategy `config.name`; an unknown name or an out-of-range parameter is an
// InvalidArgument naming the key (e.g. "strategy.trim_fraction must be in [0, 0.5)").
StatusOr<std::unique_ptr<Strategy>> MakeStrategy(const StrategyConfig& config);

// Names accepted by MakeStrategy.
const std::vector<std::string>& StrategyNames();

}  // namespace dermfed::coordinator

#endif  // DERMFED_COORDINATOR_STRATEGY_H_
