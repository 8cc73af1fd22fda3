// InProcessFederation: a real coordinator inside the test process — RoundEngine (FedAvg),
// SiteServiceImpl and a gRPC server listening on 127.0.0.1 at a port the kernel picks, with
// a Store in a fresh temporary folder. Tests talk to it over real TCP with FederationClient
// or raw stubs and look at the engine and the store directly. No LibTorch and no model
// config are involved: the global model is whatever ModelState the test hands in, so a
// VGG13-sized buffer costs only its bytes.
//
// gRPC limits are left at their defaults on both sides (4 MiB receive), so a test passing
// here also shows that the chunked transfer never needs them raised.
//
// Thread-safe as far as the engine is; the object itself is owned by one test.
#ifndef DERMFED_TESTS_FEDERATION_IN_PROCESS_FEDERATION_H_
#define DERMFED_TESTS_FEDERATION_IN_PROCESS_FEDERATION_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>

#include "client/federation/federation_client.h"
#include "common/model_state.h"
#include "common/status.h"
#include "coordinator/round_engine.h"
#include "coordinator/site_service.h"
#include "coordinator/store.h"

namespace dermfed::fedtest {

struct InProcessOptions {
  int rounds = 1;
  int min_sites = 1;
  int num_classes = 2;
  double round_deadline_s = 120;
  double eval_deadline_s = 120;
  std::string compression;  // the negotiated update codec (FederationSpec.compression)
  double topk_fraction = 0.01;
};

class InProcessFederation {
 public:
  // Starts the server and the engine's driver thread around `initial` (model version 0).
  static StatusOr<std::unique_ptr<InProcessFederation>> Start(const InProcessOptions& options,
                                                              ModelState initial);
  // Stops the engine, shuts the server down, joins the driver, removes the temp folder.
  ~InProcessFederation();

  // A fresh channel to the server with default limits.
  std::shared_ptr<grpc::Channel> NewChannel() const;
  client::FederationClient NewClient(const std::string& site) const {
    return client::FederationClient(NewChannel(), site);
  }
  coordinator::RoundEngine& engine() { return *engine_; }
  coordinator::Store& store() { return *store_; }
  int port() const { return port_; }

  // Waits up to `timeout` for RoundEngine::Run to return; false if it is still running.
  bool WaitForRun(std::chrono::seconds timeout);
  // The driver's result. REQUIRES: WaitForRun returned true.
  Status run_status();

 private:
  InProcessFederation() = default;

  std::string dir_;
  std::unique_ptr<coordinator::Store> store_;
  std::unique_ptr<coordinator::RoundEngine> engine_;
  std::unique_ptr<coordinator::SiteServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::future<Status> run_;
  bool run_done_ = false;
  Status run_status_;
};

// Waits (long-polling) for a task other than WAIT, up to `timeout`.
StatusOr<v1::Task> NextTask(client::FederationClient& client, int64_t last_round,
                            std::chrono::seconds timeout);

}  // namespace dermfed::fedtest

#endif  // DERMFED_TESTS_FEDERATION_IN_PROCESS_FEDERATION_H_
