// dermfed-coordinator: runs one federation. See docs/configuration.md for its settings and
// docs/ARCHITECTURE.md for what it does.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/strings/str_join.h"
#include "client/data/metadata_encoder.h"
#include "client/data/metadata_schema.h"
#include "client/federation/federation_spec.h"
#include "common/allocator.h"
#include "common/config_flags.h"
#include "common/log.h"
#include "common/model/backbone.h"
#include "common/model/dualrefnet.h"
#include "common/model/module_state.h"
#include "common/model/runtime.h"
#include "common/model/state_dict.h"
#include "coordinator/coordinator_config.h"
#include "coordinator/http_server.h"
#include "coordinator/round_engine.h"
#include "coordinator/monitor_service.h"
#include "coordinator/site_service.h"
#include "coordinator/store.h"

namespace dermfed::coordinator {
namespace {

constexpr char kLog[] = "coordinator";

StatusOr<client::MetadataSchema> FederationSchema(const CoordinatorConfig& c) {
  if (!c.schema.empty()) return client::LoadSchemaFile(c.schema);
  return client::BuiltinSchema(c.format);
}

Status WriteExport(const CoordinatorConfig& c, const v1::FederationSpec& spec, Store& store) {
  DF_ASSIGN_OR_RETURN(std::optional<RoundRecord> last, store.LastCompleted());
  if (!last) return FailedPreconditionError("no completed round to export");
  DF_ASSIGN_OR_RETURN(ModelState state, store.LoadGlobal(last->round));
  DF_RETURN_IF_ERROR(client::SaveRunFromState(c.export_dir, spec, state));
  DF_ASSIGN_OR_RETURN(auto metrics, store.GlobalMetrics());
  std::ofstream out(c.export_dir + "/history.json");
  out << "[\n";
  for (size_t i = 0; i < metrics.size(); ++i) {
    out << "  " << metrics[i].second << (i + 1 < metrics.size() ? ",\n" : "\n");
  }
  out << "]\n";
  if (!out) return InternalError(c.export_dir + "/history.json: cannot write");
  LogInfo(kLog, "exported the global model of round %d to %s", last->round, c.export_dir);
  return OkStatus();
}

int Main(const std::string& config_path, const std::map<std::string, std::string>& overrides) {
  auto config = LoadCoordinatorConfig(config_path, overrides);
  if (!config.ok()) {
    std::cerr << "dermfed-coordinator: " << config.status().message() << "\n";
    return 2;
  }
  const CoordinatorConfig& c = *config;
  // Certificates (and the CRL) are checked before anything is written to server.state_dir, so
  // a refused start leaves no half-made state behind.
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (c.insecure) {
    LogWarning(kLog, "server.insecure is on: NO TLS, NO CERTIFICATES. Anyone who can reach %s "
               "can join as any site and control the federation. Use this only for tests and "
               "local demos.", c.listen);
    credentials = grpc::InsecureServerCredentials();
  } else {
    auto tls = tls::ServerCredentials(c.tls);
    if (!tls.ok()) {
      std::cerr << "dermfed-coordinator: " << tls.status().message() << "\n";
      return 2;
    }
    credentials = *tls;
  }
  model::ConfigureThreads(c.threads);
  auto schema = FederationSchema(c);
  if (!schema.ok()) {
    std::cerr << "dermfed-coordinator: " << schema.status().message() << "\n";
    return 2;
  }
  int64_t metadata_dim = 0;
  if (c.use_metadata) {
    auto encoder = client::MetadataEncoder::Create(*schema, schema->ColumnNames());
    if (!encoder.ok()) {
      std::cerr << "dermfed-coordinator: schema: " << encoder.status().message() << "\n";
      return 2;
    }
    metadata_dim = encoder->width();
  }
  model::DualRefNetOptions options;
  options.backbone = c.backbone;
  options.num_classes = static_cast<int64_t>(schema->class_names.size());
  options.metadata_dim = metadata_dim;
  options.sr_factor = c.sr_factor;

  v1::FederationSpec spec;
  spec.set_federation(c.name);
  spec.set_backbone(c.backbone);
  spec.set_num_classes(options.num_classes);
  for (const auto& n : schema->class_names) spec.add_class_names(n);
  spec.set_image_size(c.image_size);
  spec.set_sr_factor(c.sr_factor);
  spec.set_use_metadata(c.use_metadata);
  spec.set_schema_json(client::SchemaToJson(*schema));
  spec.set_format(c.format);
  spec.set_metadata_dim(metadata_dim);
  spec.set_batch_size(c.batch_size);
  spec.set_optimizer(c.optimizer);
  spec.set_learning_rate(c.learning_rate);
  spec.set_weight_decay(c.weight_decay);
  spec.set_lambda_sr(c.lambda_sr);
  spec.set_lambda_cf(c.lambda_cf);
  spec.set_weighted_ce(c.weighted_ce);
  spec.set_fedbn(c.fedbn);
  spec.set_rounds(c.rounds);
  spec.set_compression(c.compression);
  spec.set_topk_fraction(c.topk_fraction);

  // The model as the config describes it: the layout every checkpoint must have.
  torch::manual_seed(c.seed);
  auto net = model::MakeDualRefNet(options);
  if (!net.ok()) {
    std::cerr << "dermfed-coordinator: " << net.status().message() << "\n";
    return 2;
  }
  auto strategy = MakeStrategy(c.strategy);
  if (!strategy.ok()) {
    std::cerr << "dermfed-coordinator: " << strategy.status().message() << "\n";
    return 2;
  }
  if (c.fedbn) {
    auto names = model::BatchNormTensorNames(**net);
    (*strategy)->set_local_tensors(std::set<std::string>(names.begin(), names.end()));
  }
  auto fresh = model::ToModelState(**net);
  if (!fresh.ok()) {
    std::cerr << "dermfed-coordinator: " << fresh.status().message() << "\n";
    return 1;
  }

  // Opened once the configuration has built a model: a refused start writes nothing.
  auto store = Store::Open(c.state_dir);
  if (!store.ok()) {
    std::cerr << "dermfed-coordinator: " << store.status().message() << "\n";
    return 1;
  }
  (*store)->set_keep_checkpoints(c.keep_checkpoints);
  int64_t completed = 0;
  ModelState global;
  auto last = (*store)->LastCompleted();
  if (!last.ok()) {
    std::cerr << "dermfed-coordinator: " << last.status().message() << "\n";
    return 1;
  }
  if (*last) {
    completed = (*last)->round;
    auto loaded = (*store)->LoadGlobal(completed);
    auto sstate = (*store)->LoadStrategyState(completed);
    Status s = loaded.ok() ? fresh->CheckSameLayout(*loaded) : loaded.status();
    if (s.ok()) s = sstate.ok() ? (*strategy)->RestoreState(*sstate) : sstate.status();
    if (!s.ok()) {
      std::cerr << "dermfed-coordinator: cannot resume from " << c.state_dir << " (round "
                << completed << "): " << s.message()
                << "\n  (a changed model configuration needs a new server.state_dir)\n";
      return 1;
    }
    global = std::move(loaded).value();
  } else {
    if (!c.init_checkpoint.empty()) {
      Status s = model::LoadTorchvisionWeights((*net)->backbone(), c.init_checkpoint);
      if (!s.ok()) {
        std::cerr << "dermfed-coordinator: model.init_checkpoint: " << s.message() << "\n";
        return 2;
      }
      fresh = model::ToModelState(**net);
    }
    global = std::move(fresh).value();
    RoundRecord r0;
    r0.started_unix_s = r0.finished_unix_s =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    r0.digest = MakeGlobalModel(0, global.Clone())->hex_digest;
    auto empty = (*strategy)->SaveState();
    Status s = empty.ok() ? (*store)->CompleteRound(r0, global, *empty) : empty.status();
    if (!s.ok()) {
      std::cerr << "dermfed-coordinator: " << s.message() << "\n";
      return 1;
    }
  }

  const std::string audit_path = c.audit_log.empty() ? c.state_dir + "/audit.log" : c.audit_log;
  auto audit_log = audit::AuditLog::Open(audit_path);
  if (!audit_log.ok()) {
    std::cerr << "dermfed-coordinator: audit log: " << audit_log.status().message() << "\n";
    return 1;
  }
  RoundEngine engine(c, spec, std::move(global), completed, std::move(strategy).value(),
                     store->get());
  engine.set_audit(audit_log->get());
  SiteServiceImpl service(&engine, c.max_concurrent_uploads, /*tls=*/!c.insecure);
  MonitorServiceImpl monitor(&engine, store->get(), /*tls=*/!c.insecure);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(c.listen, credentials, &port);
  builder.RegisterService(&service);
  builder.RegisterService(&monitor);
  builder.SetMaxReceiveMessageSize(8 << 20);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::cerr << "dermfed-coordinator: cannot listen on " << c.listen << "\n";
    return 1;
  }
  LogInfo(kLog, "federation '%s' listening on port %d: %d rounds, min_sites %d, strategy %s, "
          "backbone %s, state in %s",
          c.name, port, c.rounds, c.min_sites, c.strategy.name, c.backbone, c.state_dir);
  if (!c.port_file.empty()) {
    const std::string tmp = c.port_file + ".tmp";
    std::ofstream(tmp) << port << "\n";
    std::filesystem::rename(tmp, c.port_file);
  }

  std::unique_ptr<HttpServer> http;
  if (!c.http_listen.empty()) {
    auto started = HttpServer::Start(c, &engine, store->get());
    if (!started.ok()) {
      std::cerr << "dermfed-coordinator: " << started.status().message() << "\n";
      server->Shutdown();
      return 2;
    }
    http = std::move(started).value();
  }

  // SIGINT/SIGTERM stop the engine cleanly; completed rounds are already on disk.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::atomic<bool> exiting{false};
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig != 0 && !exiting) {
      LogWarning(kLog, "signal %d: stopping", sig);
      engine.Stop();
    }
  });

  Status result = engine.Run();
  int rc = 0;
  if (!result.ok()) {
    LogError(kLog, "%s", result.message());
    rc = 1;
  } else if (!c.export_dir.empty()) {
    Status s = WriteExport(c, spec, **store);
    if (!s.ok()) {
      LogError(kLog, "export: %s", s.message());
      rc = 1;
    }
  }
  // A site busy with a task when the federation ended (training, evaluating, uploading) asks
  // for its next one when it is done: keep answering until every live site has been told
  // the federation is over, up to server.stop_grace_s; and at least 2 s, so that watchers'
  // long polls see the end too. A site not told keeps retrying, as after a crash.
  const auto ended = std::chrono::steady_clock::now();
  const std::vector<std::string> untold =
      engine.AwaitSitesToldDone(std::chrono::duration<double>(c.stop_grace_s));
  if (!untold.empty()) {
    LogWarning(kLog, "%d site(s) did not ask for a task within server.stop_grace_s = %g s and "
               "were not told that the federation is over: %s; they keep retrying until "
               "their admins stop them", untold.size(), c.stop_grace_s,
               absl::StrJoin(untold, ", "));
  }
  std::this_thread::sleep_until(ended + std::chrono::seconds(2));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  http.reset();
  exiting = true;  // the wake-up below is ours, not an operator's signal
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  return rc;
}

}  // namespace
}  // namespace dermfed::coordinator

int main(int argc, char** argv) {
  // Every gRPC call runs on its own thread, and each upload or download allocates
  // chunk-sized (2 MiB) buffers there. glibc gives each thread its own malloc arena (up to
  // 8 per core) and keeps what is freed in it, so peak memory grew with the number of sites
  // talking at once: one ResNet-50 round took 1150 MiB with 16 sites against 700 MiB with 2,
  // and 940 MiB with 2 arenas (tests/bench: coordinator_rss_16_vs_2_sites). Before any thread
  // starts; the environment's malloc settings still win.
  dermfed::TuneAllocator(/*max_arenas=*/2);
  // SIGINT and SIGTERM are taken by sigwait in Main's signal thread: block them here, before
  // any thread exists, so that every thread inherits the block. Blocked too late, a signal
  // could land on a gRPC or LibTorch thread instead: with SIGINT ignored (as a non-interactive
  // shell starts `dermfed-coordinator &`) it was then discarded and Ctrl-C-style stops hung.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  CLI::App app{"dermfed-coordinator: runs one federation of DualRefNet training"};
  dermfed::ConfigFlags flags;
  dermfed::AddConfigFlags(app, dermfed::coordinator::CoordinatorConfigKeys(), &flags);
  CLI11_PARSE(app, argc, argv);
  auto overrides = flags.Overrides();
  if (!overrides.ok()) {
    std::cerr << "dermfed-coordinator: " << overrides.status().message() << "\n";
    return 2;
  }
  return dermfed::coordinator::Main(flags.config_path, *overrides);
}
