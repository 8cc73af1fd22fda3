// FedAdagrad, FedAdam and FedYogi: adaptive server optimizers over the example-weighted mean
// delta Δ (Reddi et al., "Adaptive Federated Optimization", ICLR 2021, Algorithm 2):
//   m <- β1·m + (1 − β1)·Δ
//   Adagrad: v <- v + Δ²
//   Adam:    v <- β2·v + (1 − β2)·Δ²
//   Yogi:    v <- v − (1 − β2)·Δ²·sign(v − Δ²)
//   x <- x + η·m / (√v + τ)
// Algorithm 2 takes v_{-1} >= τ² as an input; we start at its lower end, v_{-1} = τ², and
// m_{-1} = 0. Like the paper there is no bias correction (unlike Flower's FedAdam, which
// also starts v at 0). m and v are kept per updated tensor across rounds and saved as a
// ModelState of "m/<tensor>" and "v/<tensor>" (float64 for float64 tensors, else float32).
#include <cmath>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "coordinator/strategies/builtin.h"
#include "coordinator/strategies/weighted_mean_aggregator.h"

namespace dermfed::coordinator {
namespace {

enum class Rule { kAdagrad, kAdam, kYogi };

template <typename T>
struct Hyper {
  T beta1, one_minus_beta1, beta2, one_minus_beta2, eta, tau;
};

// One optimizer step over n coordinates; x, m, v are updated in place.
template <Rule R, typename T>
void Step(T* __restrict x, T* __restrict m, T* __restrict v, const T* __restrict d, size_t n,
          const Hyper<T>& h) {
  for (size_t i = 0; i < n; ++i) {
    const T di = d[i];
    const T d2 = di * di;
    const T mi = h.beta1 * m[i] + h.one_minus_beta1 * di;
    T vi = v[i];
    if constexpr (R == Rule::kAdagrad) {
      vi = vi + d2;
    } else if constexpr (R == Rule::kAdam) {
      vi = h.beta2 * vi + h.one_minus_beta2 * d2;
    } else {
      const T sign = static_cast<T>(vi > d2) - static_cast<T>(vi < d2);
      vi = vi - h.one_minus_beta2 * d2 * sign;
    }
    m[i] = mi;
    v[i] = vi;
    x[i] += h.eta * mi / (std::sqrt(vi) + h.tau);
  }
}

DType StateDType(DType tensor_dtype) {
  return tensor_dtype == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

class FedOpt : public Strategy {
 public:
  FedOpt(Rule rule, const StrategyConfig& config) : rule_(rule), config_(config) {}

  std::string name() const override {
    switch (rule_) {
      case Rule::kAdagrad:
        return "fedadagrad";
      case Rule::kAdam:
        return "fedadam";
      case Rule::kYogi:
        return "fedyogi";
    }
    return "fedopt";
  }
  bool IsLinear() const override { return true; }
  std::unique_ptr<Aggregator> NewAggregator(const ModelState& global) const override {
    return std::make_unique<WeightedMeanAggregator>(global);
  }

  Status Apply(const ModelState& aggregate_delta, ModelState* global) override {
    DF_RETURN_IF_ERROR(ValidateAggregate(aggregate_delta, *global, local_tensors_));
    if (state_.num_tensors() == 0) {
      DF_ASSIGN_OR_RETURN(state_, InitialState(*global));
    }
    // Slots of m and v for every updated tensor (-1 elsewhere), all checked before any write.
    DF_ASSIGN_OR_RETURN(auto slots, MatchState(*global));
    for (size_t t = 0; t < global->num_tensors(); ++t) {
      if (slots[t].first < 0) continue;
      StepTensor(global->manifest()[t], global->TensorData(t), aggregate_delta.TensorData(t),
                 state_.TensorData(slots[t].first), state_.TensorData(slots[t].second));
    }
    return OkStatus();
  }

  StatusOr<ModelState> SaveState() const override {
    if (state_.num_tensors() == 0) return ModelState::Create({});
    return state_.Clone();
  }

  Status RestoreState(const ModelState& state) override {
    std::unordered_map<std::string, size_t> index;
    for (size_t t = 0; t < state.num_tensors(); ++t) index[state.manifest()[t].name] = t;
    for (size_t t = 0; t < state.num_tensors(); ++t) {
      const TensorSpec& spec = state.manifest()[t];
      const std::string where = name() + " state tensor '" + spec.name + "'";
      const bool is_m = spec.name.rfind("m/", 0) == 0, is_v = spec.name.rfind("v/", 0) == 0;
      if (!is_m && !is_v)
        return InvalidArgumentError(where + " is not named m/<tensor> or v/<tensor>");
      if (spec.dtype != DType::kFloat32 && spec.dtype != DType::kFloat64) {
        return InvalidArgumentError(where + " is " + std::string(DTypeName(spec.dtype)) +
                                    ", expected float32 or float64");
      }
      const std::string twin = (is_m ? "v/" : "m/") + spec.name.substr(2);
      auto it = index.find(twin);
      if (it == index.end()) return InvalidArgumentError(where + " has no '" + twin + "'");
      const TensorSpec& other = state.manifest()[it->second];
      if (other.dtype != spec.dtype || other.shape != spec.shape) {
        return InvalidArgumentError(where + " and '" + twin + "' differ in dtype or shape");
      }
      const uint8_t* data = state.TensorData(t);
      const int64_t n = spec.numel();
      if (FirstNonFinite(data, spec.dtype, n) >= 0) {
        return InvalidArgumentError(where + " has a non-finite value");
      }
      if (is_v) {
        for (int64_t i = 0; i < n; ++i) {
          if (LoadAsDouble(data, spec.dtype, i) < 0) {
            return InvalidArgumentError(where + " has a negative value at element " +
                                        std::to_string(i));
          }
        }
      }
    }
    state_ = state.Clone();
    return OkStatus();
  }

 private:
  // m = 0 and v = τ² for every tensor this strategy updates.
  StatusOr<ModelState> InitialState(const ModelState& global) const {
    std::vector<TensorSpec> specs;
    for (const TensorSpec& spec : global.manifest()) {
      if (!IsAggregated(spec, local_tensors_)) continue;
      for (const char* prefix : {"m/", "v/"}) {
        TensorSpec s;
        s.name = prefix + spec.name;
        s.dtype = StateDType(spec.dtype);
        s.shape = spec.shape;
        specs.push_back(std::move(s));
      }
    }
    DF_ASSIGN_OR_RETURN(ModelState state, ModelState::Create(std::move(specs)));
    const double tau2 = config_.tau * config_.tau;
    for (size_t t = 1; t < state.num_tensors(); t += 2) {  // the v/ tensors
      const TensorSpec& spec = state.manifest()[t];
      for (int64_t i = 0; i < spec.numel(); ++i)
        StoreFromDouble(tau2, spec.dtype, i, state.TensorData(t));
    }
    return state;
  }

  StatusOr<std::vector<std::pair<int, int>>> MatchState(const ModelState& global) const {
    std::unordered_map<std::string_view, int> index;
    for (size_t t = 0; t < state_.num_tensors(); ++t) index[state_.manifest()[t].name] = t;
    std::vector<std::pair<int, int>> slots(global.num_tensors(), {-1, -1});
    for (size_t t = 0; t < global.num_tensors(); ++t) {
      const TensorSpec& spec = global.manifest()[t];
      if (!IsAggregated(spec, local_tensors_)) continue;
      int found[2];
      const char* prefixes[2] = {"m/", "v/"};
      for (int k = 0; k < 2; ++k) {
        const std::string key = prefixes[k] + spec.name;
        auto it = index.find(key);
        if (it == index.end()) {
          return FailedPreconditionError(name() + " state has no '" + key +
                                         "' for global tensor '" + spec.name +
                                         "' (restored from another model?)");
        }
        const TensorSpec& s = state_.manifest()[it->second];
        if (s.dtype != StateDType(spec.dtype) || s.shape != spec.shape) {
          return FailedPreconditionError(
              name() + " state tensor '" + key + "' is " + std::string(DTypeName(s.dtype)) + " " +
              ShapeText(s.shape) + ", expected " + std::string(DTypeName(StateDType(spec.dtype))) +
              " " + ShapeText(spec.shape));
        }
        found[k] = it->second;
      }
      slots[t] = {found[0], found[1]};
    }
    return slots;
  }

  template <typename T>
  Hyper<T> MakeHyper() const {
    return {static_cast<T>(config_.beta1),
            static_cast<T>(1.0 - config_.beta1),
            static_cast<T>(config_.beta2),
            static_cast<T>(1.0 - config_.beta2),
            static_cast<T>(config_.server_learning_rate),
            static_cast<T>(config_.tau)};
  }

  template <typename T>
  void Dispatch(T* x, T* m, T* v, const T* d, size_t n) const {
    const Hyper<T> h = MakeHyper<T>();
    switch (rule_) {
      case Rule::kAdagrad:
        Step<Rule::kAdagrad>(x, m, v, d, n, h);
        break;
      case Rule::kAdam:
        Step<Rule::kAdam>(x, m, v, d, n, h);
        break;
      case Rule::kYogi:
        Step<Rule::kYogi>(x, m, v, d, n, h);
        break;
    }
  }

  void StepTensor(const TensorSpec& spec, uint8_t* x, const uint8_t* d, uint8_t* m,
                  uint8_t* v) const {
    const size_t n = static_cast<size_t>(spec.numel());
    auto* mf = reinterpret_cast<float*>(m);
    auto* vf = reinterpret_cast<float*>(v);
    switch (spec.dtype) {
      case DType::kFloat32:
        Dispatch(reinterpret_cast<float*>(x), mf, vf, reinterpret_cast<const float*>(d), n);
        return;
      case DType::kFloat64:
        Dispatch(reinterpret_cast<double*>(x), reinterpret_cast<double*>(m),
                 reinterpret_cast<double*>(v), reinterpret_cast<const double*>(d), n);
        return;
      default: {  // float16 / bfloat16: step in float32, round x once
        std::vector<float> xs(n), ds(n);
        for (size_t i = 0; i < n; ++i) {
          xs[i] = static_cast<float>(LoadAsDouble(x, spec.dtype, i));
          ds[i] = static_cast<float>(LoadAsDouble(d, spec.dtype, i));
        }
        Dispatch(xs.data(), mf, vf, ds.data(), n);
        for (size_t i = 0; i < n; ++i) StoreFromDouble(xs[i], spec.dtype, i, x);
        return;
      }
    }
  }

  const Rule rule_;
  const StrategyConfig config_;
  ModelState state_;  // empty until the first Apply or a non-empty RestoreState
};

Status CheckOptimizerParams(const StrategyConfig& c, bool uses_beta2) {
  DF_RETURN_IF_ERROR(CheckParam(std::isfinite(c.server_learning_rate) && c.server_learning_rate > 0,
                                "server_learning_rate", "a finite number > 0",
                                c.server_learning_rate));
  DF_RETURN_IF_ERROR(CheckParam(c.beta1 >= 0 && c.beta1 < 1, "beta1", "in [0, 1)", c.beta1));
  if (uses_beta2) {
    DF_RETURN_IF_ERROR(CheckParam(c.beta2 >= 0 && c.beta2 < 1, "beta2", "in [0, 1)", c.beta2));
  }
  return CheckParam(std::isfinite(c.tau) && c.tau > 0, "tau", "a finite number > 0", c.tau);
}

StatusOr<std::unique_ptr<Strategy>> MakeFedOpt(Rule rule, const StrategyConfig& config) {
  DF_RETURN_IF_ERROR(CheckOptimizerParams(config, rule != Rule::kAdagrad));
  return std::unique_ptr<Strategy>(std::make_unique<FedOpt>(rule, config));
}

}  // namespace

StatusOr<std::unique_ptr<Strategy>> MakeFedAdam(const StrategyConfig& config) {
  return MakeFedOpt(Rule::kAdam, config);
}
StatusOr<std::unique_ptr<Strategy>> MakeFedYogi(const StrategyConfig& config) {
  return MakeFedOpt(Rule::kYogi, config);
}
StatusOr<std::unique_ptr<Strategy>> MakeFedAdagrad(const StrategyConfig& config) {
  return MakeFedOpt(Rule::kAdagrad, config);
}

}  // namespace dermfed::coordinator
