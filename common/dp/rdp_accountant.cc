#include "common/dp/rdp_accountant.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace dermfed::dp {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr absl::string_view kSerialTag = "dermfed-rdp/1";
// The fractional-order series converges polynomially in the worst case; over z in
// [0.3, 5] and q in [1e-4, 0.9] it needs a few thousand terms. Past this many the order is
// reported as +inf (never chosen), which can only overstate ε.
constexpr int kMaxFractionalTerms = 200000;

// log(e^x + e^y).
double LogAdd(double x, double y) {
  const double a = std::min(x, y);
  const double b = std::max(x, y);
  if (a == -kInf) return b;
  return std::log1p(std::exp(a - b)) + b;
}

// log(e^x - e^y) for x >= y; NaN if x < y (a numerical failure the caller reports as +inf).
double LogSub(double x, double y) {
  if (x < y) return std::numeric_limits<double>::quiet_NaN();
  if (y == -kInf) return x;
  if (x == y) return -kInf;
  const double d = x - y;
  if (d > 700) return x;  // e^d - 1 == e^d to double precision (and expm1 would overflow)
  return std::log(std::expm1(d)) + y;
}

// log(erfc(x)), accurate far into the upper tail where erfc underflows. Below 20 glibc's
// erfc keeps full relative precision (erfc(20) ~ 5e-176); above, the asymptotic series
// erfc(x) = e^(-x²)/(x√π) · (1 − 1/(2x²) + 3/(4x⁴) − ...) is exact to ~1e-15.
double LogErfc(double x) {
  if (x < 20) return std::log(std::erfc(x));
  const double inv2 = 1.0 / (2 * x * x);
  // Σ_k (−1)^k (2k−1)!! / (2x²)^k, k = 0..6.
  double series = 1.0;
  double term = 1.0;
  for (int k = 1; k <= 6; ++k) {
    term *= -(2 * k - 1) * inv2;
    series += term;
  }
  return -x * x - std::log(x) - 0.5 * std::log(M_PI) + std::log(series);
}

// log A_α for integer α (Mironov et al. 2019, Sec. 3.3): A_α = Σ_i C(α,i) q^i (1−q)^(α−i)
// exp((i² − i) / (2σ²)). REQUIRES 0 < q < 1.
double LogAInt(double q, double sigma, int64_t alpha) {
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  const double two_var = 2 * sigma * sigma;
  double log_a = -kInf;
  double log_binom = 0;  // log C(α, i), built incrementally
  for (int64_t i = 0; i <= alpha; ++i) {
    if (i > 0) log_binom += std::log(static_cast<double>(alpha - i + 1)) - std::log(i);
    const double di = static_cast<double>(i);
    const double s = log_binom + di * log_q + static_cast<double>(alpha - i) * log_1mq +
                     (di * di - di) / two_var;
    log_a = LogAdd(log_a, s);
  }
  return log_a;
}

// log A_α for fractional α: the integral split at z0 where the two mixture components
// cross, each half a binomial series whose coefficients C(α, i) change sign past α.
// REQUIRES 0 < q < 1. Returns +inf if the series does not settle or cancels badly.
double LogAFrac(double q, double sigma, double alpha) {
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  const double two_var = 2 * sigma * sigma;
  const double z0 = sigma * sigma * (log_1mq - log_q) + 0.5;  // σ² log(1/q − 1) + 1/2
  const double erfc_scale = std::sqrt(2.0) * sigma;
  const double log_half = std::log(0.5);
  double log_a0 = -kInf;
  double log_a1 = -kInf;
  double log_coef = 0;  // log |C(α, i)|
  bool positive = true;
  for (int i = 0; i < kMaxFractionalTerms; ++i) {
    if (i > 0) {
      const double factor = (alpha - (i - 1)) / i;  // C(α,i) = C(α,i−1)·(α−i+1)/i
      if (factor < 0) positive = !positive;
      log_coef += std::log(std::fabs(factor));
    }
    const double di = i;
    const double j = alpha - di;
    const double log_t0 = log_coef + di * log_q + j * log_1mq;
    const double log_t1 = log_coef + j * log_q + di * log_1mq;
    const double log_e0 = log_half + LogErfc((di - z0) / erfc_scale);
    const double log_e1 = log_half + LogErfc((z0 - j) / erfc_scale);
    const double log_s0 = log_t0 + (di * di - di) / two_var + log_e0;
    const double log_s1 = log_t1 + (j * j - j) / two_var + log_e1;
    if (positive) {
      log_a0 = LogAdd(log_a0, log_s0);
      log_a1 = LogAdd(log_a1, log_s1);
    } else {
      log_a0 = LogSub(log_a0, log_s0);
      log_a1 = LogSub(log_a1, log_s1);
      if (std::isnan(log_a0) || std::isnan(log_a1)) return kInf;
    }
    if (std::max(log_s0, log_s1) < -30) return LogAdd(log_a0, log_a1);
  }
  return kInf;
}

// RDP of one step at one order. REQUIRES valid q, z, order (checked by the callers).
double RdpOneStep(double q, double z, double order) {
  if (q == 1.0) return order / (2 * z * z);
  if (std::isinf(order)) return kInf;
  double log_a = std::floor(order) == order ? LogAInt(q, z, static_cast<int64_t>(order))
                                            : LogAFrac(q, z, order);
  if (std::isnan(log_a)) return kInf;
  return log_a / (order - 1);
}

Status ValidateMechanism(double noise_multiplier, double sample_rate, int64_t steps) {
  if (!(noise_multiplier > 0) || !std::isfinite(noise_multiplier)) {
    return InvalidArgumentError(absl::StrCat(
        "noise multiplier (sigma / clip) must be positive and finite, got ", noise_multiplier));
  }
  if (!(sample_rate > 0 && sample_rate <= 1)) {
    return InvalidArgumentError(absl::StrCat(
        "sampling rate (sites sampled per round / total sites) must be in (0, 1], got ",
        sample_rate));
  }
  if (steps < 1) {
    return InvalidArgumentError(absl::StrCat("steps must be at least 1, got ", steps));
  }
  return OkStatus();
}

Status ValidateOrders(const std::vector<double>& orders) {
  if (orders.empty()) return InvalidArgumentError("RDP orders: the list is empty");
  for (size_t i = 0; i < orders.size(); ++i) {
    if (!(orders[i] > 1) || !std::isfinite(orders[i])) {
      return InvalidArgumentError(
          absl::StrCat("RDP order #", i, " is ", orders[i], "; orders must be finite and > 1"));
    }
  }
  std::vector<double> sorted = orders;
  std::sort(sorted.begin(), sorted.end());
  auto dup = std::adjacent_find(sorted.begin(), sorted.end());
  if (dup != sorted.end()) {
    return InvalidArgumentError(absl::StrCat("RDP order ", *dup, " is listed twice"));
  }
  return OkStatus();
}

std::string ExactDouble(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

StatusOr<double> ParseDouble(absl::string_view field, absl::string_view what) {
  double v = 0;
  if (!absl::SimpleAtod(field, &v)) {
    return InvalidArgumentError(
        absl::StrCat("RDP accountant checkpoint: ", what, " '", field, "' is not a number"));
  }
  return v;
}

}  // namespace

std::vector<double> DefaultRdpOrders() {
  std::vector<double> orders = {1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5};
  for (int a = 5; a <= 64; ++a) orders.push_back(a);
  for (double a : {128.0, 256.0, 512.0}) orders.push_back(a);
  return orders;
}

StatusOr<std::vector<double>> ComputeRdp(double sample_rate, double noise_multiplier, int64_t steps,
                                         const std::vector<double>& orders) {
  DF_RETURN_IF_ERROR(ValidateMechanism(noise_multiplier, sample_rate, steps));
  DF_RETURN_IF_ERROR(ValidateOrders(orders));
  std::vector<double> rdp(orders.size());
  for (size_t i = 0; i < orders.size(); ++i) {
    rdp[i] = static_cast<double>(steps) * RdpOneStep(sample_rate, noise_multiplier, orders[i]);
  }
  return rdp;
}

StatusOr<PrivacySpent> EpsilonFromRdp(const std::vector<double>& orders,
                                      const std::vector<double>& rdp, double delta) {
  if (orders.size() != rdp.size()) {
    return InvalidArgumentError(
        absl::StrCat("EpsilonFromRdp: ", orders.size(), " orders but ", rdp.size(), " RDP values"));
  }
  if (orders.empty()) return InvalidArgumentError("EpsilonFromRdp: no orders");
  if (!(delta > 0 && delta < 1)) {
    return InvalidArgumentError(absl::StrCat("delta must be in (0, 1), got ", delta));
  }
  PrivacySpent best;
  best.delta = delta;
  best.epsilon = kInf;
  best.best_order = orders.front();
  for (size_t i = 0; i < orders.size(); ++i) {
    const double a = orders[i];
    const double r = rdp[i];
    if (std::isnan(r) || r < 0) {
      return InternalError(absl::StrCat("RDP at order ", a, " is ", r));
    }
    double eps = kInf;
    if (delta * delta + std::expm1(-r) > 0) {
      eps = 0;  // the KL bound δ ≤ sqrt(1 − e^(−rdp)) already meets δ
    } else if (a > 1.01) {
      eps = r + std::log1p(-1 / a) - std::log(delta * a) / (a - 1);
    }
    if (eps < best.epsilon) {
      best.epsilon = eps;
      best.best_order = a;
    }
  }
  best.epsilon = std::max(0.0, best.epsilon);
  return best;
}

RdpAccountant::RdpAccountant() : RdpAccountant(DefaultRdpOrders()) {}

RdpAccountant::RdpAccountant(std::vector<double> orders) : orders_(std::move(orders)) {}

StatusOr<RdpAccountant> RdpAccountant::WithOrders(std::vector<double> orders) {
  DF_RETURN_IF_ERROR(ValidateOrders(orders));
  return RdpAccountant(std::move(orders));
}

Status RdpAccountant::Step(double noise_multiplier, double sample_rate, int64_t steps) {
  DF_RETURN_IF_ERROR(ValidateMechanism(noise_multiplier, sample_rate, steps));
  if (!history_.empty() && history_.back().noise_multiplier == noise_multiplier &&
      history_.back().sample_rate == sample_rate) {
    history_.back().steps += steps;
    return OkStatus();
  }
  DF_ASSIGN_OR_RETURN(std::vector<double> per_step,
                      ComputeRdp(sample_rate, noise_multiplier, 1, orders_));
  history_.push_back({noise_multiplier, sample_rate, steps});
  per_step_rdp_.push_back(std::move(per_step));
  return OkStatus();
}

std::vector<double> RdpAccountant::rdp() const {
  // Summed from the history every time, in history order, so an accountant restored from a
  // checkpoint gives bit-identical answers to the one that wrote it.
  std::vector<double> total(orders_.size(), 0.0);
  for (size_t s = 0; s < history_.size(); ++s) {
    const double steps = static_cast<double>(history_[s].steps);
    for (size_t i = 0; i < total.size(); ++i) total[i] += steps * per_step_rdp_[s][i];
  }
  return total;
}

StatusOr<PrivacySpent> RdpAccountant::Spent(double delta) const {
  return EpsilonFromRdp(orders_, rdp(), delta);
}

int64_t RdpAccountant::total_steps() const {
  int64_t total = 0;
  for (const Segment& s : history_) total += s.steps;
  return total;
}

std::string RdpAccountant::Serialize() const {
  std::string out = absl::StrCat(kSerialTag, ";orders=");
  out += absl::StrJoin(orders_, ",", [](std::string* o, double v) { o->append(ExactDouble(v)); });
  out += ";steps=";
  out += absl::StrJoin(history_, ",", [](std::string* o, const Segment& s) {
    absl::StrAppend(o, ExactDouble(s.noise_multiplier), ":", ExactDouble(s.sample_rate), ":",
                    s.steps);
  });
  return out;
}

StatusOr<RdpAccountant> RdpAccountant::Restore(absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ';');
  if (parts.size() != 3 || parts[0] != kSerialTag) {
    return InvalidArgumentError(absl::StrCat("RDP accountant checkpoint: expected '", kSerialTag,
                                             ";orders=...;steps=...', got '", text.substr(0, 64),
                                             text.size() > 64 ? "...'" : "'"));
  }
  if (!absl::StartsWith(parts[1], "orders=") || !absl::StartsWith(parts[2], "steps=")) {
    return InvalidArgumentError(
        "RDP accountant checkpoint: fields must be 'orders=' then 'steps='");
  }
  std::vector<double> orders;
  for (absl::string_view field : absl::StrSplit(parts[1].substr(7), ',')) {
    DF_ASSIGN_OR_RETURN(double order, ParseDouble(field, "order"));
    orders.push_back(order);
  }
  DF_ASSIGN_OR_RETURN(RdpAccountant accountant, WithOrders(std::move(orders)));
  const absl::string_view steps_field = parts[2].substr(6);
  if (steps_field.empty()) return accountant;
  int segment = 0;
  for (absl::string_view run : absl::StrSplit(steps_field, ',')) {
    std::vector<absl::string_view> f = absl::StrSplit(run, ':');
    if (f.size() != 3) {
      return InvalidArgumentError(absl::StrCat("RDP accountant checkpoint: step run #", segment,
                                               " '", run, "' is not z:q:count"));
    }
    DF_ASSIGN_OR_RETURN(double z, ParseDouble(f[0], "noise multiplier"));
    DF_ASSIGN_OR_RETURN(double q, ParseDouble(f[1], "sampling rate"));
    int64_t count = 0;
    if (!absl::SimpleAtoi(f[2], &count)) {
      return InvalidArgumentError(absl::StrCat("RDP accountant checkpoint: step count '", f[2],
                                               "' in run #", segment, " is not an integer"));
    }
    DF_RETURN_IF_ERROR(Annotate(accountant.Step(z, q, count),
                                absl::StrCat("RDP accountant checkpoint, step run #", segment)));
    ++segment;
  }
  return accountant;
}

}  // namespace dermfed::dp
