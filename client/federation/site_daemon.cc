#include "client/federation/site_daemon.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <thread>

#include "client/data/split.h"
#include "client/evaluator.h"
#include "client/explain.h"
#include "client/federation/federation_client.h"
#include "client/federation/federation_spec.h"
#include "client/loader.h"
#include "client/site_data.h"
#include "client/trainer.h"
#include "common/digest.h"
#include "common/dp/noise.h"
#include "common/secagg/client.h"
#include "common/secagg/messages.h"
#include "common/secagg/model_vector.h"
#include "common/secagg/protocol.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/model_state_file.h"
#include "common/model/module_state.h"
#include "common/model/runtime.h"
#include "common/model/state_dict.h"
#include "common/model/torch_call.h"
#include "common/tls/tls.h"
#include "common/update_codec.h"

namespace dermfed::client {
namespace {

constexpr char kLog[] = "site";

bool Retryable(const Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded ||
         s.code() == absl::StatusCode::kInternal || s.code() == absl::StatusCode::kUnknown ||
         s.code() == absl::StatusCode::kCancelled;
}

// Everything the site holds between tasks.
struct SiteState {
  v1::FederationSpec spec;
  SiteData data;
  DatasetSplit split;
  std::vector<int64_t> counts;
  model::DualRefNet net{nullptr};
  c10::Device device{torch::kCPU};
  std::vector<std::string> local_tensor_names;  // FedBN
  ModelState local_tensors;                     // FedBN: this site's own BatchNorm state
  bool has_local_tensors = false;
  int64_t last_round = 0;
  std::optional<secagg::Client> secagg;  // this round's secure-aggregation keys and seed
  // topk error feedback: what earlier uploads did not send, added to the next update. In
  // memory only: a restarted site starts from zero (that remainder is never sent).
  ModelState topk_residual;
  // The global model this site last evaluated, kept for the TRAIN task that follows: the
  // next round trains from that same model, so it is not pulled twice (see ObtainGlobal).
  struct KeptModel {
    int64_t version = -1;
    std::string sha256;
    ModelState state;
  };
  std::optional<KeptModel> kept;
};

Status Prepare(const SiteConfig& c, const v1::JoinResponse& joined, SiteState* s) {
  s->spec = joined.spec();
  DF_ASSIGN_OR_RETURN(MetadataSchema schema,
                      ParseSchemaJson(s->spec.schema_json(), "the federation's schema"));
  SiteDataOptions o;
  o.format = c.format.empty() ? s->spec.format() : c.format;
  o.path = c.data;
  o.skip_bad_rows = c.skip_bad_rows;
  o.use_metadata = s->spec.use_metadata();
  DF_ASSIGN_OR_RETURN(s->data, LoadSiteDataWithSchema(o, schema));
  if (s->data.source.metadata_width != s->spec.metadata_dim()) {
    return InvalidArgumentError("local metadata encodes to " +
                                std::to_string(s->data.source.metadata_width) +
                                " features, the federation's model expects " +
                                std::to_string(s->spec.metadata_dim()));
  }
  SplitFractions f;
  f.validation = c.validation_fraction;
  f.test = 0;
  f.train = 1 - f.validation;
  DF_ASSIGN_OR_RETURN(s->split, SplitByGroup(s->data.dataset, f, c.seed));
  s->counts = s->data.dataset.ClassCounts(s->split.train);
  DF_ASSIGN_OR_RETURN(s->net, model::MakeDualRefNet(ModelOptionsFromSpec(s->spec)));
  DF_ASSIGN_OR_RETURN(s->device, model::PickDevice(c.device));
  DF_RETURN_IF_ERROR(model::TorchCall("moving model", [&] { s->net->to(s->device); }));
  if (s->spec.fedbn()) s->local_tensor_names = model::BatchNormTensorNames(*s->net);
  LogInfo(kLog, "site=%s data ready: %d rows (%d train / %d validation), %d groups, %d skipped",
          c.name, s->data.dataset.rows.size(), s->split.train.size(), s->split.validation.size(),
          s->data.dataset.NumGroups(), s->data.dataset.skipped.size());
  return OkStatus();
}

// Loads the global model; with FedBN, puts this site's own BatchNorm tensors back.
Status LoadGlobal(SiteState* s, const ModelState& global) {
  DF_RETURN_IF_ERROR(model::LoadModelStateInto(global, *s->net));
  if (!s->has_local_tensors) return OkStatus();
  // FedBN: put this site's own BatchNorm tensors back over the global ones.
  DF_ASSIGN_OR_RETURN(auto saved, model::ViewTensors(s->local_tensors));
  std::set<std::string> local(s->local_tensor_names.begin(), s->local_tensor_names.end());
  auto current = model::StateDictOf(*s->net);
  return model::TorchCall("restoring local BatchNorm", [&] {
    torch::NoGradGuard g;
    for (size_t i = 0; i < current.size(); ++i) {
      // Same model, same state-dict order: entry i of both is the same tensor.
      if (local.count(current[i].first)) current[i].second.copy_(saved[i].second);
    }
  });
}

Status RememberLocalTensors(SiteState* s) {
  if (s->local_tensor_names.empty()) return OkStatus();
  DF_ASSIGN_OR_RETURN(s->local_tensors, model::ToModelState(*s->net));
  s->has_local_tensors = true;
  return OkStatus();
}

// Fault injection for tests (site.debug_fault): the process dies here, as a crash would.
void MaybeFault(const SiteConfig& c, const char* where, int64_t round) {
  if (c.debug_fault == where && c.debug_fault_round == round) {
    LogWarning(kLog, "site=%s round=%d site.debug_fault: exiting %s", c.name, round, where);
    std::_Exit(3);
  }
}

// Fault injection for tests (site.debug_fault = stall_in_<where>): the site stalls here once,
// for site.debug_stall_s, so that a test can kill it at this point or let it run late.
void MaybeStall(const SiteConfig& c, const std::string& where, int64_t round) {
  static bool stalled = false;
  if (stalled || c.debug_fault != "stall_in_" + where || c.debug_fault_round != round) return;
  stalled = true;
  LogWarning(kLog, "site=%s round=%d site.debug_fault: stalling in %s for %.1f s", c.name, round,
             where, c.debug_stall_s);
  std::this_thread::sleep_for(std::chrono::duration<double>(c.debug_stall_s));
  LogWarning(kLog, "site=%s round=%d site.debug_fault: done stalling in %s", c.name, round, where);
}

// Tests only (site.debug_dump_updates): keeps a copy of each plaintext update, as the
// coordinator will decode it, so that a test can recompute the aggregate from what was really
// folded: round-<r>.sent.{dfs,json} before it is sent (the last attempt for the round), and
// round-<r>.{dfs,json} once the coordinator acknowledged it. A coordinator killed between
// folding an update and answering leaves only the first.
enum class Dump { kSent, kAcknowledged };
void DumpUpdate(const SiteConfig& c, int64_t round, int64_t num_examples, const ModelState& delta,
                Dump what) {
  if (c.debug_dump_updates.empty()) return;
  const std::string base = c.debug_dump_updates + "/round-" + std::to_string(round) +
                           (what == Dump::kSent ? ".sent" : "");
  Status s = SaveModelState(delta, base + ".dfs");
  std::ofstream meta(base + ".json");
  meta << "{\"site\": " << JsonString(c.name) << ", \"round\": " << round
       << ", \"num_examples\": " << num_examples << "}\n";
  if (!s.ok() || !meta) LogWarning(kLog, "site=%s site.debug_dump_updates: %s", c.name, s.message());
}

// The global model a TRAIN or EVALUATE task names: the kept one when the coordinator names
// its version and SHA-256, else downloaded now (chunked, resumable, SHA-256 checked) and
// checked against the SHA-256 the task announced.
StatusOr<ModelState> ObtainGlobal(const SiteConfig& c, FederationClient& client, SiteState* s,
                                  const v1::Task& task) {
  std::optional<SiteState::KeptModel> kept = std::move(s->kept);
  s->kept.reset();
  if (kept && !task.model_sha256().empty() && kept->version == task.model_version() &&
      kept->sha256 == task.model_sha256()) {
    LogInfo(kLog, "site=%s round=%d model version %d is the one this site evaluated: not pulled "
            "again", c.name, task.round(), task.model_version());
    return std::move(kept->state);
  }
  kept.reset();  // a model of another version: free it before the download
  v1::ModelHeader header;
  DF_ASSIGN_OR_RETURN(ModelState global,
                      client.PullModel(task.model_version(), 8ull << 30, &header));
  if (!task.model_sha256().empty() && header.sha256() != task.model_sha256()) {
    auto hex = [](const std::string& d) {
      return HexDigest(reinterpret_cast<const uint8_t*>(d.data()), d.size());
    };
    return DataLossError("round " + std::to_string(task.round()) +
                         ": the coordinator announced model version " +
                         std::to_string(task.model_version()) + " with SHA-256 " +
                         hex(task.model_sha256()) + " but served one with " +
                         hex(header.sha256()));
  }
  return global;
}

Status Train(const SiteConfig& c, FederationClient& client, SiteState* s, const v1::Task& task) {
  const int64_t round = task.round();
  // Where a round's time goes besides training (sent with the update, in seconds):
  // pull_seconds (download and load the global model, set up the trainer) and
  // prepare_seconds (from the last step to the upload: delta, clipping, noise, encoding or
  // masking). The upload itself is logged.
  const auto task_start = std::chrono::steady_clock::now();
  auto since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  DF_ASSIGN_OR_RETURN(ModelState global, ObtainGlobal(c, client, s, task));
  DF_RETURN_IF_ERROR(LoadGlobal(s, global));
  TrainerConfig tc;
  tc.batch_size = s->spec.batch_size();
  tc.optimizer = s->spec.optimizer();
  tc.learning_rate = s->spec.learning_rate();
  tc.weight_decay = s->spec.weight_decay();
  tc.loss.lambda_sr = s->spec.lambda_sr();
  tc.loss.lambda_cf = s->spec.lambda_cf();
  tc.loss.weighted_ce = s->spec.weighted_ce();
  tc.seed = c.seed * 7919 + static_cast<uint64_t>(round);
  DF_ASSIGN_OR_RETURN(auto trainer, Trainer::Create(s->net, s->counts, tc, s->device));
  const auto& cfg = task.config();
  if (cfg.count("proximal_mu")) trainer->SetProximalAnchor(cfg.at("proximal_mu"));

  LoaderConfig lc;
  lc.image_size = s->spec.image_size();
  lc.batch_size = static_cast<int>(tc.batch_size);
  lc.workers = c.workers > 0 ? c.workers : std::max(1u, std::thread::hardware_concurrency());
  lc.seed = tc.seed;
  BatchLoader loader(s->data.source, s->split.train, lc);
  double loss = 0, ce = 0, sr = 0, cf = 0;
  int64_t steps = 0;
  const double pull_seconds = since(task_start);
  const auto start = std::chrono::steady_clock::now();
  for (int epoch = 1; epoch <= std::max(1, task.local_epochs()); ++epoch) {
    loader.StartEpoch(static_cast<int>(round * 1000 + epoch));
    while (c.max_steps_per_round <= 0 || steps < c.max_steps_per_round) {
      DF_ASSIGN_OR_RETURN(std::optional<Batch> batch, loader.Next());
      if (!batch) break;
      DF_ASSIGN_OR_RETURN(Trainer::StepLosses l,
                          trainer->Step(batch->images, batch->metadata, batch->labels));
      loss += l.loss;
      ce += l.ce;
      sr += l.sr;
      cf += l.cf;
      ++steps;
      if (steps == 1) MaybeStall(c, "training", round);
    }
  }
  const double seconds = since(start);
  const auto trained = std::chrono::steady_clock::now();
  DF_RETURN_IF_ERROR(RememberLocalTensors(s));
  DF_ASSIGN_OR_RETURN(ModelState delta, model::ToModelState(*s->net));
  DF_RETURN_IF_ERROR(SubtractInPlace(&delta, global));
  const double n = static_cast<double>(std::max<int64_t>(steps, 1));
  std::map<std::string, double> metrics = {{"loss", loss / n}, {"ce", ce / n}, {"sr", sr / n},
                                           {"cf", cf / n}, {"steps", static_cast<double>(steps)},
                                           {"train_seconds", seconds},
                                           {"pull_seconds", pull_seconds}};
  LogInfo(kLog,
          "site=%s round=%d version=%d trained %d steps in %.1f s (model pulled and loaded in "
          "%.2f s), loss %.4f; uploading%s",
          c.name, round, task.model_version(), steps, seconds, pull_seconds, loss / n,
          task.secagg().empty() ? "" : " (masked)");
  // Sends `sent` through push() once prepare_seconds is in the metrics, and logs the upload.
  auto upload = [&](const ModelState& sent, const std::function<Status()>& push) -> Status {
    metrics["prepare_seconds"] = since(trained);
    const auto pushed = std::chrono::steady_clock::now();
    DF_RETURN_IF_ERROR(push());
    LogInfo(kLog, "site=%s round=%d update of %.1f MB accepted after %.2f s", c.name, round,
            sent.size_bytes() / 1e6, since(pushed));
    return OkStatus();
  };
  // Differential privacy: clip to the federation's bound, add this site's noise share
  // (distributed DP), and count once (DP-FedAvg).
  const bool dp = cfg.count("dp_clip") && cfg.at("dp_clip") > 0;
  if (dp) {
    DF_ASSIGN_OR_RETURN(double norm, dp::ClipToNorm(&delta, cfg.at("dp_clip")));
    metrics["update_norm"] = norm;
    if (cfg.count("dp_stddev") && cfg.at("dp_stddev") > 0) {
      DF_ASSIGN_OR_RETURN(dp::SecureRng rng, dp::SecureRng::Create());
      DF_RETURN_IF_ERROR(dp::AddGaussianNoise(&delta, cfg.at("dp_stddev"), rng));
    }
  }
  const int64_t examples =
      dp && cfg.count("dp_unweighted") ? 1 : static_cast<int64_t>(s->split.train.size());
  if (task.secagg().empty()) {
    DF_ASSIGN_OR_RETURN(CodecOptions codec, NegotiatedCodec(s->spec));
    if (codec.codec == UpdateCodec::kNone) {
      DumpUpdate(c, round, examples, delta, Dump::kSent);
      DF_RETURN_IF_ERROR(upload(delta, [&] {
        return client.PushUpdate(round, task.model_version(), examples, delta, metrics);
      }));
      DumpUpdate(c, round, examples, delta, Dump::kAcknowledged);
      return OkStatus();
    }
    // The residual changes only once the coordinator accepted the update: a refused upload
    // leaves it as it was.
    ModelState residual = s->topk_residual.Clone();
    DF_ASSIGN_OR_RETURN(ModelState encoded, EncodeUpdate(delta, codec, &residual));
    ModelState decoded;  // tests: what the coordinator decodes, not what we had
    if (!c.debug_dump_updates.empty()) {
      DF_ASSIGN_OR_RETURN(decoded, DecodeUpdate(encoded, delta, codec, "own update"));
      DumpUpdate(c, round, examples, decoded, Dump::kSent);
    }
    DF_RETURN_IF_ERROR(upload(encoded, [&] {
      return client.PushUpdate(round, task.model_version(), examples, encoded, metrics,
                               /*masked=*/false, /*sealer=*/nullptr,
                               std::string(UpdateCodecName(codec.codec)));
    }));
    s->topk_residual = std::move(residual);
    DumpUpdate(c, round, examples, decoded, Dump::kAcknowledged);
    return OkStatus();
  }
  // Secure aggregation: only the masked, quantized, weighted update leaves the site.
  if (!s->secagg) {
    return FailedPreconditionError("round " + std::to_string(round) +
                                   ": masking requested, but this site holds no keys for it "
                                   "(restarted?); the round goes on without it");
  }
  DF_ASSIGN_OR_RETURN(secagg::MaskingRequest request, secagg::MaskingRequest::Parse(task.secagg()));
  secagg::QuantParams q;
  q.scale = cfg.count("secagg_scale") ? cfg.at("secagg_scale") : 0;
  q.clip = static_cast<float>(cfg.count("secagg_clip") ? cfg.at("secagg_clip") : 0);
  q.max_weight = static_cast<int64_t>(cfg.count("secagg_max_weight") ? cfg.at("secagg_max_weight") : 0);
  const std::set<std::string> local(s->local_tensor_names.begin(), s->local_tensor_names.end());
  const secagg::VectorLayout layout = secagg::LayoutFor(delta, local);
  DF_ASSIGN_OR_RETURN(ModelState masked, secagg::NewMaskedState(layout.words));
  uint32_t* words = reinterpret_cast<uint32_t*>(masked.data());
  DF_RETURN_IF_ERROR(secagg::EncodeWeighted(delta, layout, examples, q, words));
  DF_RETURN_IF_ERROR(s->secagg->MaskInPlace(absl::Span<uint32_t>(words, layout.words), request));
  DF_ASSIGN_OR_RETURN(secagg::UploadSealer sealer,
                      secagg::UploadSealer::Create(task.upload_key(), c.name, round,
                                                   task.model_version()));
  DF_RETURN_IF_ERROR(upload(masked, [&] {
    return client.PushUpdate(round, task.model_version(), 0, masked, metrics, /*masked=*/true,
                             &sealer);
  }));
  MaybeFault(c, "exit_after_masked_upload", round);
  return OkStatus();
}

// The key, share and unmask phases of secure aggregation.
Status SecAggPhase(const SiteConfig& c, FederationClient& client, SiteState* s,
                   const v1::Task& task) {
  std::string payload;
  if (task.kind() == v1::Task::SECAGG_ADVERTISE) {
    const auto& cfg = task.config();
    const int t = static_cast<int>(cfg.count("secagg_threshold") ? cfg.at("secagg_threshold") : 0);
    const std::string context = secagg::RoundContext(
        s->spec.federation(), static_cast<uint64_t>(task.round()), std::to_string(task.model_version()));
    DF_ASSIGN_OR_RETURN(secagg::Client fresh, secagg::Client::Create(c.name, context, t));
    s->secagg.emplace(std::move(fresh));
    payload = s->secagg->advertisement().Serialize();
  } else if (!s->secagg) {
    return FailedPreconditionError("round " + std::to_string(task.round()) +
                                   ": no secure-aggregation keys for this round (restarted?)");
  } else if (task.kind() == v1::Task::SECAGG_SHARE) {
    DF_ASSIGN_OR_RETURN(secagg::AdvertisementList u1, secagg::AdvertisementList::Parse(task.secagg()));
    DF_ASSIGN_OR_RETURN(secagg::ShareBundle bundle, s->secagg->ShareKeys(u1));
    payload = bundle.Serialize();
  } else {
    DF_ASSIGN_OR_RETURN(secagg::UnmaskRequest request, secagg::UnmaskRequest::Parse(task.secagg()));
    DF_ASSIGN_OR_RETURN(secagg::UnmaskResponse response, s->secagg->Unmask(request));
    payload = response.Serialize();
  }
  DF_RETURN_IF_ERROR(client.SubmitSecAgg(task.round(), task.model_version(), task.kind(), payload));
  if (task.kind() == v1::Task::SECAGG_SHARE) MaybeFault(c, "exit_after_share", task.round());
  return OkStatus();
}

Status Evaluate(const SiteConfig& c, FederationClient& client, SiteState* s, const v1::Task& task) {
  DF_ASSIGN_OR_RETURN(ModelState global, ObtainGlobal(c, client, s, task));
  DF_RETURN_IF_ERROR(LoadGlobal(s, global));
  // The next round trains from this model: keep it rather than pull it again.
  if (!task.model_sha256().empty()) {
    s->kept = SiteState::KeptModel{task.model_version(), task.model_sha256(), std::move(global)};
  }
  const std::vector<int>& rows = s->split.validation.empty() ? s->split.train : s->split.validation;
  EvalConfig ec;
  ec.image_size = s->spec.image_size();
  ec.workers = c.workers > 0 ? c.workers : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::string> names(s->spec.class_names().begin(), s->spec.class_names().end());
  DF_ASSIGN_OR_RETURN(std::vector<float> probs,
                      PredictRows(*s->net, s->device, s->data.source, rows, ec));
  std::vector<int64_t> truth;
  truth.reserve(rows.size());
  for (int row : rows) truth.push_back(s->data.source.labels[row]);
  // A diverged global model can give NaN or infinite probabilities: those rows are not
  // scored but counted (metric non_finite_rows), and the site carries on; the model is the
  // federation's problem, not this site's data.
  DF_ASSIGN_OR_RETURN(ScoredRows scores, ScoreRows(names, truth, probs));
  if (scores.non_finite_rows > 0) {
    LogWarning(kLog, "site=%s round=%d: the global model (version %d) gives non-finite "
               "probabilities on %d of %d validation rows: it has diverged; those rows are not "
               "scored", c.name, task.round(), task.model_version(), scores.non_finite_rows,
               rows.size());
  }
  const ClassificationReport& report = scores.report;
  const size_t k = names.size();
  v1::MetricsReport r;
  r.set_site_name(c.name);
  r.set_round(task.round());
  r.set_model_version(task.model_version());
  r.set_num_examples(scores.scored_rows);
  for (size_t t = 0; t < k; ++t) {
    for (size_t p = 0; p < k; ++p) r.add_confusion(report.confusion.at(static_cast<int>(t), static_cast<int>(p)));
  }
  (*r.mutable_metrics())["loss"] = scores.loss;
  if (scores.non_finite_rows > 0) {
    (*r.mutable_metrics())["non_finite_rows"] = static_cast<double>(scores.non_finite_rows);
  }
  (*r.mutable_metrics())["macro_auc"] = report.macro_auc;
  (*r.mutable_metrics())["balanced_accuracy"] = report.confusion.BalancedAccuracy();
  (*r.mutable_metrics())["accuracy"] = report.confusion.Accuracy();
  if (c.explain && s->spec.metadata_dim() > 0) {
    // Which patient factors drive the global model here (client/explain.h): aggregate
    // numbers like the confusion matrix. Optional: a failure is logged, not fatal.
    const auto start = std::chrono::steady_clock::now();
    ImportanceConfig ic;
    ic.seed = c.seed;
    ic.max_rows = c.explain_rows;
    ic.eval = ec;
    auto groups = FeatureGroupsOf(s->data.schema, s->data.feature_names);
    auto importance = groups.ok() ? ComputeImportance(*s->net, s->device, s->data.source, rows,
                                                      *groups, names, ic)
                                  : StatusOr<FeatureImportance>(groups.status());
    if (importance.ok()) {
      for (const auto& [key, value] : ImportanceMetrics(*importance)) {
        (*r.mutable_metrics())[key] = value;
      }
      (*r.mutable_metrics())["explain_seconds"] =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    } else {
      LogWarning(kLog, "site=%s round=%d: no explanations: %s", c.name, task.round(),
                 importance.status().message());
    }
  }
  LogInfo(kLog, "site=%s round=%d version=%d evaluated %d rows: balanced accuracy %.3f", c.name,
          task.round(), task.model_version(), rows.size(), report.confusion.BalancedAccuracy());
  MaybeStall(c, "evaluation", task.round());
  return client.ReportMetrics(r);
}

}  // namespace

Status RunSiteDaemon(const SiteConfig& c, const std::atomic<bool>& stop) {
  model::ConfigureThreads(c.threads);
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (c.insecure) {
    LogWarning(kLog, "site=%s site.insecure is on: connecting WITHOUT TLS; weight deltas cross "
               "the network in the clear (tests and demos only)", c.name);
    credentials = grpc::InsecureChannelCredentials();
  } else {
    DF_ASSIGN_OR_RETURN(credentials, tls::ChannelCredentials(c.tls));
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  // gRPC's own reconnect backoff (up to 120 s by default) would otherwise keep a site away
  // from a restarted coordinator long after it is back.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(c.max_backoff_s * 1000));
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 8 << 20);
  auto channel = grpc::CreateCustomChannel(c.coordinator, credentials, args);
  FederationClient client(channel, c.name);
  int64_t task_round = 0;  // the round of the task in hand, for the stream fault points
  if (!c.debug_fault.empty()) {
    client.set_debug_hook([&](const char* where) { MaybeStall(c, where, task_round); });
  }
  SiteState state;
  bool joined = false, prepared = false;
  double backoff = 0.5;
  auto sleep_backoff = [&](const Status& why) {
    LogWarning(kLog, "site=%s %s; retrying in %.1f s", c.name, why.message(), backoff);
    // Wait on the channel rather than sleep: gRPC advances a reconnection only while something
    // polls the channel, and the calls above fail fast. Left to gRPC's 5-s backup poller, a
    // TLS handshake misses the short connect deadlines set above, and a site took a minute
    // (or, with a small site.max_backoff_s, forever) to reconnect to a restarted coordinator.
    const auto until = std::chrono::system_clock::now() +
                       std::chrono::duration_cast<std::chrono::system_clock::duration>(
                           std::chrono::duration<double>(backoff));
    auto state = channel->GetState(/*try_to_connect=*/true);
    while (!stop && channel->WaitForStateChange(state, until)) state = channel->GetState(true);
    backoff = std::min(c.max_backoff_s, backoff * 2);
  };
  while (!stop) {
    if (!joined) {
      auto j = client.Join(prepared ? static_cast<int64_t>(state.split.train.size()) : 0);
      if (!j.ok()) {
        if (Retryable(j.status())) {
          sleep_backoff(j.status());
          continue;
        }
        return j.status();
      }
      if (!prepared) {
        DF_RETURN_IF_ERROR(Prepare(c, *j, &state));
        prepared = true;
        // Tell the coordinator the real training size now that the data is read.
        auto again = client.Join(static_cast<int64_t>(state.split.train.size()));
        if (!again.ok()) continue;
      }
      joined = true;
      backoff = 0.5;
      LogInfo(kLog, "site=%s joined federation '%s'", c.name, state.spec.federation());
    }
    auto task = client.WaitForTask(state.last_round, std::chrono::seconds(30));
    if (!task.ok()) {
      if (task.status().code() == absl::StatusCode::kFailedPrecondition) {
        joined = false;  // the coordinator restarted and forgot us: join again
        continue;
      }
      if (Retryable(task.status())) {
        sleep_backoff(task.status());
        continue;
      }
      return task.status();
    }
    backoff = 0.5;
    task_round = task->round();
    Status s;
    switch (task->kind()) {
      case v1::Task::DONE:
        LogInfo(kLog, "site=%s federation finished", c.name);
        return OkStatus();
      case v1::Task::TRAIN:
        s = Train(c, client, &state, *task);
        if (s.ok()) state.last_round = task->round();
        break;
      case v1::Task::EVALUATE:
        s = Evaluate(c, client, &state, *task);
        break;
      case v1::Task::SECAGG_ADVERTISE:
      case v1::Task::SECAGG_SHARE:
      case v1::Task::SECAGG_UNMASK:
        s = SecAggPhase(c, client, &state, *task);
        break;
      default:
        continue;
    }
    if (!s.ok()) {
      // A refused update (stale round, closed round) is not fatal: the next task tells the
      // site what is current. Local data errors are.
      if (s.code() == absl::StatusCode::kFailedPrecondition ||
          s.code() == absl::StatusCode::kAlreadyExists ||
          s.code() == absl::StatusCode::kPermissionDenied || Retryable(s)) {
        LogWarning(kLog, "site=%s round=%d: %s", c.name, task->round(), s.message());
        if (Retryable(s)) sleep_backoff(s);
        continue;
      }
      return s;
    }
  }
  return OkStatus();
}

}  // namespace dermfed::client
