// load_sites: many simulated sites in one process, against a real dermfed-coordinator.
//
// One thread per site, each with its own gRPC channel (and, with --pki, its own site
// certificate: the coordinator identifies it by that, as it would a hospital), speaking the
// real protocol through the site's own FederationClient: join, long-poll for tasks, pull the
// model in chunks, push an update in chunks, pull again and report an evaluation. What a site
// would compute locally is replaced by something cheap of the right shape: the update is a
// small random delta with exactly the global model's layout (the coordinator cannot tell it
// from a trained one: same bytes, same checks, same fold), and the evaluation a random
// confusion matrix. Under secure aggregation each site runs the real protocol (keys, Shamir
// shares, masking, sealed upload, unmasking) with common/secagg, as dermfed-site does.
//
// Why not 100 dermfed-site processes: each one loads LibTorch, reads and decodes images and
// trains, so on one 2-core machine the run measures the sites, not the coordinator (see
// tests/load/README.md for the numbers).
//
// With --coordinator-pid it samples the coordinator's /proc/PID/status (VmRSS, VmHWM) every
// 50 ms and attributes each sample to the round in progress. It writes one JSON report
// (--report, default stdout) with per-round times, RSS and bytes, and per-site outcomes.
// Exit status: 0 when every site got DONE, 1 otherwise.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "client/federation/federation_client.h"
#include "common/model_state.h"
#include "common/secagg/client.h"
#include "common/secagg/messages.h"
#include "common/secagg/model_vector.h"
#include "common/secagg/protocol.h"
#include "common/secagg/upload_seal.h"
#include "common/tls/tls.h"

namespace dermfed::load {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string coordinator;
  int sites = 100;
  int first = 1;
  std::string prefix = "site-";
  std::string pki;  // empty: plaintext (the coordinator must run with server.insecure)
  int64_t train_rows = 50;
  int eval_rows = 20;
  double delta_scale = 1e-3;
  int pid = 0;
  std::string report;
  double timeout_s = 1800;
};

double Seconds(Clock::time_point t0, Clock::time_point t) {
  return std::chrono::duration<double>(t - t0).count();
}

// What happened in one round, as the simulated sites saw it.
struct RoundLog {
  std::optional<Clock::time_point> train_start, train_end, eval_start, eval_end;
  int updates = 0;      // pushes the coordinator accepted
  int evaluations = 0;  // reports the coordinator accepted
  uint64_t bytes_pulled = 0, bytes_pushed = 0;
  // Secure aggregation's own messages: what sites submit, and the requests in their tasks.
  uint64_t secagg_bytes_up = 0, secagg_bytes_down = 0;
  int64_t rss_max_kb = 0, rss_end_kb = 0, hwm_end_kb = 0;
};

// Shared by the site threads and the RSS sampler.
class LoadLog {
 public:
  LoadLog(int sites, int pid) : sites_(sites), pid_(pid), t0_(Clock::now()) {}

  void TrainTask(int64_t round) {
    std::lock_guard<std::mutex> lock(mu_);
    RoundLog& r = rounds_[round];
    if (!r.train_start) r.train_start = Clock::now();
    current_round_ = std::max(current_round_, round);
  }
  void Pushed(int64_t round, uint64_t bytes, bool accepted) {
    std::lock_guard<std::mutex> lock(mu_);
    RoundLog& r = rounds_[round];
    r.bytes_pushed += bytes;
    if (accepted) {
      ++r.updates;
      r.train_end = Clock::now();
    }
  }
  void Pulled(int64_t round, uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    rounds_[round].bytes_pulled += bytes;
    model_bytes_ = bytes;
  }
  void SecAggBytes(int64_t round, uint64_t up, uint64_t down) {
    std::lock_guard<std::mutex> lock(mu_);
    rounds_[round].secagg_bytes_up += up;
    rounds_[round].secagg_bytes_down += down;
  }
  void EvalTask(int64_t round) {
    std::lock_guard<std::mutex> lock(mu_);
    RoundLog& r = rounds_[round];
    if (!r.eval_start) r.eval_start = Clock::now();
  }
  void Evaluated(int64_t round) {
    int64_t rss = 0, hwm = 0;
    ReadRss(&rss, &hwm);
    std::lock_guard<std::mutex> lock(mu_);
    RoundLog& r = rounds_[round];
    ++r.evaluations;
    r.eval_end = Clock::now();
    // The last report closes the round: what the coordinator holds now is what it keeps
    // between rounds.
    if (r.evaluations == sites_) {
      r.rss_end_kb = rss;
      r.hwm_end_kb = hwm;
    }
  }
  void Error(const std::string& site, const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    if (errors_.size() < 50) errors_.push_back(site + ": " + what);
    ++error_count_;
  }
  void Done(bool done) {
    std::lock_guard<std::mutex> lock(mu_);
    (done ? done_ : failed_)++;
  }

  // Samples the coordinator's RSS into the round in progress until `stop`.
  void Sample(const std::atomic<bool>& stop) {
    while (!stop) {
      int64_t rss = 0, hwm = 0;
      if (ReadRss(&rss, &hwm)) {
        std::lock_guard<std::mutex> lock(mu_);
        RoundLog& r = rounds_[current_round_];
        r.rss_max_kb = std::max(r.rss_max_kb, rss);
        peak_hwm_kb_ = std::max(peak_hwm_kb_, hwm);
        if (start_rss_kb_ == 0) start_rss_kb_ = rss;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  std::string Json(const Options& o, double total_seconds) {
    std::lock_guard<std::mutex> lock(mu_);
    std::ostringstream j;
    j.precision(6);
    j << "{\n  \"sites\": " << sites_ << ", \"sites_done\": " << done_
      << ", \"sites_failed\": " << failed_ << ", \"errors\": " << error_count_
      << ", \"model_bytes\": " << model_bytes_ << ", \"seconds\": " << total_seconds
      << ", \"secure_aggregation\": " << (secagg_ ? "true" : "false")
      << ",\n  \"coordinator_rss_start_kb\": " << start_rss_kb_
      << ", \"coordinator_peak_hwm_kb\": " << peak_hwm_kb_ << ",\n  \"rounds\": [";
    bool first = true;
    for (const auto& [round, r] : rounds_) {
      if (round == 0) continue;
      auto at = [&](const std::optional<Clock::time_point>& t) {
        return t ? std::to_string(Seconds(t0_, *t)) : std::string("null");
      };
      // The round's wall time: from its first TRAIN task to its last evaluation report.
      const double wall = r.train_start && r.eval_end ? Seconds(*r.train_start, *r.eval_end) : NAN;
      const double train =
          r.train_start && r.train_end ? Seconds(*r.train_start, *r.train_end) : NAN;
      j << (first ? "\n" : ",\n") << "    {\"round\": " << round << ", \"updates\": " << r.updates
        << ", \"evaluations\": " << r.evaluations << ", \"train_start_s\": " << at(r.train_start)
        << ", \"eval_end_s\": " << at(r.eval_end)
        << ", \"wall_s\": " << (std::isfinite(wall) ? std::to_string(wall) : "null")
        << ", \"train_phase_s\": " << (std::isfinite(train) ? std::to_string(train) : "null")
        << ", \"bytes_pulled\": " << r.bytes_pulled << ", \"bytes_pushed\": " << r.bytes_pushed
        << ", \"secagg_bytes_up\": " << r.secagg_bytes_up
        << ", \"secagg_bytes_down\": " << r.secagg_bytes_down
        << ", \"coordinator_rss_max_kb\": " << r.rss_max_kb
        << ", \"coordinator_rss_end_kb\": " << r.rss_end_kb
        << ", \"coordinator_hwm_end_kb\": " << r.hwm_end_kb << "}";
      first = false;
    }
    j << "\n  ],\n  \"first_errors\": [";
    for (size_t i = 0; i < errors_.size(); ++i) {
      std::string e = errors_[i];
      for (char& c : e) {
        if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) c = ' ';
      }
      j << (i ? ", " : "") << "\"" << e << "\"";
    }
    j << "],\n  \"coordinator\": \"" << o.coordinator
      << "\", \"tls\": " << (o.pki.empty() ? "false" : "true") << "\n}\n";
    return j.str();
  }
  void set_secagg() {
    std::lock_guard<std::mutex> lock(mu_);
    secagg_ = true;
  }

 private:
  bool ReadRss(int64_t* rss, int64_t* hwm) {
    if (pid_ <= 0) return false;
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    bool found = false;
    while (std::getline(in, line)) {
      if (line.rfind("VmRSS:", 0) == 0) {
        *rss = std::strtoll(line.c_str() + 6, nullptr, 10);
        found = true;
      } else if (line.rfind("VmHWM:", 0) == 0) {
        *hwm = std::strtoll(line.c_str() + 6, nullptr, 10);
      }
    }
    return found;
  }

  const int sites_;
  const int pid_;
  const Clock::time_point t0_;
  std::mutex mu_;
  std::map<int64_t, RoundLog> rounds_;
  int64_t current_round_ = 0;
  int64_t start_rss_kb_ = 0, peak_hwm_kb_ = 0;
  uint64_t model_bytes_ = 0;
  std::vector<std::string> errors_;
  int error_count_ = 0, done_ = 0, failed_ = 0;
  bool secagg_ = false;
};

// A delta with `global`'s exact layout: float32 tensors get values uniform in
// [-scale, scale] (a cheap xorshift, seeded per site and round), every other tensor zeros.
ModelState RandomDelta(const ModelState& global, uint64_t seed, double scale) {
  auto created = ModelState::Create(global.manifest());
  ModelState delta = std::move(created).value();  // the layout is the global model's
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < delta.num_tensors(); ++i) {
    const TensorSpec& t = delta.manifest()[i];
    if (t.dtype != DType::kFloat32) continue;
    float* v = reinterpret_cast<float*>(delta.TensorData(i));
    for (int64_t k = 0; k < t.numel(); ++k) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      v[k] = static_cast<float>(scale * ((x >> 11) * (2.0 / 9007199254740992.0) - 1.0));
    }
  }
  return delta;
}

class SimulatedSite {
 public:
  SimulatedSite(const Options& o, int index, LoadLog* log)
      : o_(o), name_(o.prefix + std::to_string(index)), index_(index), log_(log) {}

  // Runs until DONE (true), a fatal error or the timeout (false).
  bool Run(const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
    args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 8 << 20);
    // Separate TCP connections, as separate hospitals would have.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    client::FederationClient client(grpc::CreateCustomChannel(o_.coordinator, credentials, args),
                                    name_);
    const auto deadline = Clock::now() + std::chrono::duration<double>(o_.timeout_s);
    // As dermfed-site does: join to learn the spec, then again with the training rows.
    StatusOr<v1::JoinResponse> joined = Status(absl::StatusCode::kUnavailable, "not tried");
    for (int attempt = 0; attempt < 60 && !joined.ok(); ++attempt) {
      joined = client.Join(0);
      if (!joined.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    if (!joined.ok() || !client.Join(o_.train_rows).ok()) {
      log_->Error(name_, "join: " + std::string(joined.status().message()));
      return false;
    }
    spec_ = joined->spec();
    int64_t last_round = 0;
    while (Clock::now() < deadline) {
      auto task = client.WaitForTask(last_round, std::chrono::seconds(30));
      if (!task.ok()) {
        log_->Error(name_, "task: " + std::string(task.status().message()));
        if (task.status().code() == absl::StatusCode::kFailedPrecondition) {
          (void)client.Join(o_.train_rows);
        } else {
          std::this_thread::sleep_for(std::chrono::milliseconds(500));
        }
        continue;
      }
      Status s;
      switch (task->kind()) {
        case v1::Task::DONE:
          return true;
        case v1::Task::TRAIN:
          s = Train(client, *task);
          if (s.ok()) last_round = task->round();
          break;
        case v1::Task::EVALUATE:
          s = Evaluate(client, *task);
          break;
        case v1::Task::SECAGG_ADVERTISE:
        case v1::Task::SECAGG_SHARE:
        case v1::Task::SECAGG_UNMASK:
          s = SecAgg(client, *task);
          break;
        default:
          continue;
      }
      if (!s.ok()) log_->Error(name_, std::string(s.message()));
    }
    log_->Error(name_, "no DONE before the timeout");
    return false;
  }

 private:
  StatusOr<ModelState> Pull(client::FederationClient& client, const v1::Task& task) {
    DF_ASSIGN_OR_RETURN(ModelState global, client.PullModel(task.model_version(), 8ull << 30));
    log_->Pulled(task.round(), global.size_bytes());
    return global;
  }

  Status Train(client::FederationClient& client, const v1::Task& task) {
    log_->TrainTask(task.round());
    DF_ASSIGN_OR_RETURN(ModelState global, Pull(client, task));
    const uint64_t seed = static_cast<uint64_t>(index_) * 100003 + task.round();
    ModelState delta = RandomDelta(global, seed, o_.delta_scale);
    const std::map<std::string, double> metrics = {{"loss", 1.0 + 0.01 * (index_ % 7)},
                                                   {"steps", 1}};
    if (task.secagg().empty()) {
      Status s =
          client.PushUpdate(task.round(), task.model_version(), o_.train_rows, delta, metrics);
      log_->Pushed(task.round(), delta.size_bytes(), s.ok());
      return s;
    }
    if (!secagg_) return FailedPreconditionError("masking requested without this round's keys");
    const auto& cfg = task.config();
    DF_ASSIGN_OR_RETURN(secagg::MaskingRequest request,
                        secagg::MaskingRequest::Parse(task.secagg()));
    secagg::QuantParams q;
    q.scale = cfg.count("secagg_scale") ? cfg.at("secagg_scale") : 0;
    q.clip = static_cast<float>(cfg.count("secagg_clip") ? cfg.at("secagg_clip") : 0);
    q.max_weight =
        static_cast<int64_t>(cfg.count("secagg_max_weight") ? cfg.at("secagg_max_weight") : 0);
    const secagg::VectorLayout layout = secagg::LayoutFor(delta, {});
    DF_ASSIGN_OR_RETURN(ModelState masked, secagg::NewMaskedState(layout.words));
    uint32_t* words = reinterpret_cast<uint32_t*>(masked.data());
    DF_RETURN_IF_ERROR(secagg::EncodeWeighted(delta, layout, o_.train_rows, q, words));
    DF_RETURN_IF_ERROR(secagg_->MaskInPlace(absl::Span<uint32_t>(words, layout.words), request));
    DF_ASSIGN_OR_RETURN(
        secagg::UploadSealer sealer,
        secagg::UploadSealer::Create(task.upload_key(), name_, task.round(), task.model_version()));
    log_->SecAggBytes(task.round(), 0, task.secagg().size() + task.upload_key().size());
    Status s = client.PushUpdate(task.round(), task.model_version(), 0, masked, metrics,
                                 /*masked=*/true, &sealer);
    log_->Pushed(task.round(), masked.size_bytes(), s.ok());
    return s;
  }

  Status SecAgg(client::FederationClient& client, const v1::Task& task) {
    log_->set_secagg();
    std::string payload;
    if (task.kind() == v1::Task::SECAGG_ADVERTISE) {
      log_->TrainTask(task.round());  // the round starts with its key phase
      const auto& cfg = task.config();
      const int t =
          static_cast<int>(cfg.count("secagg_threshold") ? cfg.at("secagg_threshold") : 0);
      const std::string context =
          secagg::RoundContext(spec_.federation(), static_cast<uint64_t>(task.round()),
                               std::to_string(task.model_version()));
      DF_ASSIGN_OR_RETURN(secagg::Client fresh, secagg::Client::Create(name_, context, t));
      secagg_.emplace(std::move(fresh));
      payload = secagg_->advertisement().Serialize();
    } else if (!secagg_) {
      return FailedPreconditionError("no secure-aggregation keys for this round");
    } else if (task.kind() == v1::Task::SECAGG_SHARE) {
      DF_ASSIGN_OR_RETURN(secagg::AdvertisementList u1,
                          secagg::AdvertisementList::Parse(task.secagg()));
      DF_ASSIGN_OR_RETURN(secagg::ShareBundle bundle, secagg_->ShareKeys(u1));
      payload = bundle.Serialize();
    } else {
      DF_ASSIGN_OR_RETURN(secagg::UnmaskRequest request,
                          secagg::UnmaskRequest::Parse(task.secagg()));
      DF_ASSIGN_OR_RETURN(secagg::UnmaskResponse response, secagg_->Unmask(request));
      payload = response.Serialize();
    }
    log_->SecAggBytes(task.round(), payload.size(), task.secagg().size());
    return client.SubmitSecAgg(task.round(), task.model_version(), task.kind(), payload);
  }

  Status Evaluate(client::FederationClient& client, const v1::Task& task) {
    log_->EvalTask(task.round());
    DF_ASSIGN_OR_RETURN(ModelState global, Pull(client, task));
    const int64_t k = std::max<int64_t>(1, spec_.num_classes());
    std::vector<int64_t> confusion(static_cast<size_t>(k * k), 0);
    uint64_t x = static_cast<uint64_t>(index_) * 7919 + task.round() * 104729 + 1;
    auto next = [&x] {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      return x;
    };
    int64_t right = 0;
    for (int i = 0; i < o_.eval_rows; ++i) {
      const int64_t t = static_cast<int64_t>(next() % k);
      const int64_t p = next() % 2 ? t : static_cast<int64_t>(next() % k);
      right += t == p;
      ++confusion[t * k + p];
    }
    v1::MetricsReport r;
    r.set_site_name(name_);
    r.set_round(task.round());
    r.set_model_version(task.model_version());
    r.set_num_examples(o_.eval_rows);
    for (int64_t c : confusion) r.add_confusion(c);
    (*r.mutable_metrics())["loss"] = 1.5;
    (*r.mutable_metrics())["macro_auc"] = 0.6;
    (*r.mutable_metrics())["accuracy"] = static_cast<double>(right) / std::max(1, o_.eval_rows);
    Status s = client.ReportMetrics(r);
    if (s.ok()) log_->Evaluated(task.round());
    return s;
  }

  const Options& o_;
  const std::string name_;
  const int index_;
  LoadLog* log_;
  v1::FederationSpec spec_;
  std::optional<secagg::Client> secagg_;
};

int Main(int argc, char** argv) {
  Options o;
  CLI::App app{"Many simulated sites in one process against a real dermfed-coordinator"};
  app.add_option("--coordinator", o.coordinator, "host:port of the coordinator")->required();
  app.add_option("--sites", o.sites, "number of simulated sites");
  app.add_option("--first", o.first, "index of the first site (names PREFIX<i>)");
  app.add_option("--prefix", o.prefix, "site name prefix");
  app.add_option("--pki", o.pki,
                 "test PKI folder (certs/make-test-pki.sh): site i uses site/PREFIX<i>.crt; "
                 "empty = plaintext");
  app.add_option("--train-rows", o.train_rows, "training rows each site reports (FedAvg weight)");
  app.add_option("--eval-rows", o.eval_rows, "validation rows in each site's confusion matrix");
  app.add_option("--delta-scale", o.delta_scale, "updates are uniform in [-s, s]");
  app.add_option("--coordinator-pid", o.pid, "sample this process's RSS");
  app.add_option("--report", o.report, "write the JSON report here (default stdout)");
  app.add_option("--timeout-s", o.timeout_s, "give up after this long");
  CLI11_PARSE(app, argc, argv);

  std::vector<std::shared_ptr<grpc::ChannelCredentials>> credentials;
  for (int i = 0; i < o.sites; ++i) {
    if (o.pki.empty()) {
      credentials.push_back(grpc::InsecureChannelCredentials());
      continue;
    }
    const std::string name = o.prefix + std::to_string(o.first + i);
    tls::TlsFiles files;
    files.ca = o.pki + "/ca/ca.crt";
    files.cert = o.pki + "/site/" + name + ".crt";
    files.key = o.pki + "/site/" + name + ".key";
    auto c = tls::ChannelCredentials(files);
    if (!c.ok()) {
      std::fprintf(stderr, "load_sites: %s: %s\n", name.c_str(),
                   std::string(c.status().message()).c_str());
      return 2;
    }
    credentials.push_back(*c);
  }

  LoadLog log(o.sites, o.pid);
  std::atomic<bool> stop{false};
  std::thread sampler([&] { log.Sample(stop); });
  const auto start = Clock::now();
  std::vector<std::unique_ptr<SimulatedSite>> sites;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < o.sites; ++i) {
    sites.push_back(std::make_unique<SimulatedSite>(o, o.first + i, &log));
    threads.emplace_back([&, i] {
      const bool done = sites[i]->Run(credentials[i]);
      log.Done(done);
      if (done) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  stop = true;
  sampler.join();

  const std::string json = log.Json(o, seconds);
  if (o.report.empty()) {
    std::fputs(json.c_str(), stdout);
  } else {
    std::ofstream(o.report) << json;
  }
  std::fprintf(stderr, "load_sites: %d of %d sites finished in %.1f s\n", ok.load(), o.sites,
               seconds);
  return ok == o.sites ? 0 : 1;
}

}  // namespace
}  // namespace dermfed::load

int main(int argc, char** argv) { return dermfed::load::Main(argc, argv); }
