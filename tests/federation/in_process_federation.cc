#include "tests/federation/in_process_federation.h"

#include <stdlib.h>

#include <filesystem>
#include <thread>

#include "coordinator/coordinator_config.h"
#include "coordinator/strategy.h"

namespace dermfed::fedtest {

StatusOr<std::unique_ptr<InProcessFederation>> InProcessFederation::Start(
    const InProcessOptions& options, ModelState initial) {
  std::unique_ptr<InProcessFederation> f(new InProcessFederation());
  const char* tmp = getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/dermfed-inproc-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) return InternalError("mkdtemp " + pattern + " failed");
  f->dir_ = pattern;

  coordinator::CoordinatorConfig config;
  config.name = "in-process";
  config.rounds = options.rounds;
  config.min_sites = options.min_sites;
  config.round_deadline_s = options.round_deadline_s;
  config.eval_deadline_s = options.eval_deadline_s;
  config.join_timeout_s = 120;
  config.state_dir = f->dir_ + "/state";

  v1::FederationSpec spec;
  spec.set_federation(config.name);
  spec.set_backbone("synthetic");
  spec.set_num_classes(options.num_classes);
  for (int k = 0; k < options.num_classes; ++k) spec.add_class_names("class" + std::to_string(k));
  spec.set_rounds(options.rounds);
  spec.set_compression(options.compression);
  spec.set_topk_fraction(options.topk_fraction);

  DF_ASSIGN_OR_RETURN(f->store_, coordinator::Store::Open(config.state_dir));
  DF_ASSIGN_OR_RETURN(std::unique_ptr<coordinator::Strategy> strategy,
                      coordinator::MakeStrategy(config.strategy));
  f->engine_ = std::make_unique<coordinator::RoundEngine>(config, spec, std::move(initial),
                                                          /*completed_round=*/0,
                                                          std::move(strategy), f->store_.get());
  f->service_ = std::make_unique<coordinator::SiteServiceImpl>(
      f->engine_.get(), config.max_concurrent_uploads, /*tls=*/false);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &f->port_);
  builder.RegisterService(f->service_.get());
  f->server_ = builder.BuildAndStart();
  if (!f->server_ || f->port_ == 0) return InternalError("cannot listen on 127.0.0.1:0");
  coordinator::RoundEngine* engine = f->engine_.get();
  f->run_ = std::async(std::launch::async, [engine] { return engine->Run(); });
  return f;
}

InProcessFederation::~InProcessFederation() {
  if (engine_) engine_->Stop();
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (run_.valid()) run_.wait();
  server_.reset();
  service_.reset();
  engine_.reset();
  store_.reset();
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

std::shared_ptr<grpc::Channel> InProcessFederation::NewChannel() const {
  return grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                             grpc::InsecureChannelCredentials());
}

bool InProcessFederation::WaitForRun(std::chrono::seconds timeout) {
  if (run_done_) return true;
  if (run_.wait_for(timeout) != std::future_status::ready) return false;
  run_status_ = run_.get();
  run_done_ = true;
  return true;
}

Status InProcessFederation::run_status() { return run_status_; }

StatusOr<v1::Task> NextTask(client::FederationClient& client, int64_t last_round,
                            std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    DF_ASSIGN_OR_RETURN(v1::Task task, client.WaitForTask(last_round, std::chrono::seconds(10)));
    if (task.kind() != v1::Task::WAIT) return task;
  }
  return DeadlineExceededError("site '" + client.site_name() + "' got no task within " +
                               std::to_string(timeout.count()) + " s");
}

}  // namespace dermfed::fedtest
