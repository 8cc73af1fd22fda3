// The gRPC face of the RoundEngine for researchers and operators: status, rounds, sites, a
// live event stream, the global model to take away, and pause/resume/stop. Reads never
// change the federation; controls go through the engine, which logs and publishes them.
//
// Thread-safe (gRPC calls handlers concurrently; the engine and store are thread-safe).
#ifndef DERMFED_COORDINATOR_MONITOR_SERVICE_H_
#define DERMFED_COORDINATOR_MONITOR_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "common/tls/tls.h"
#include "coordinator/round_engine.h"
#include "coordinator/store.h"
#include "dermfed/v1/monitor.grpc.pb.h"

namespace dermfed::coordinator {

// What researchers see, shared by the gRPC MonitorService and the HTTPS JSON API.
// The engine's snapshot with the latest global metrics from the store.
StatusOr<v1::FederationStatus> FederationStatusView(RoundEngine& engine, Store& store);
// Every completed round (0 = the initial model) with its global metrics.
StatusOr<v1::ListRoundsResponse> RoundsView(Store& store);
// Whether a caller with certificate `peer` may read (researcher, admin) or, with
// `needs_admin`, control the federation; refusals are logged and audited.
Status CheckMonitorAccess(RoundEngine& engine, const tls::Peer& peer, bool needs_admin);

class MonitorServiceImpl final : public v1::MonitorService::Service {
 public:
  // tls: callers are identified by their certificates: researcher or admin may read, only
  // admin may pause, resume or stop. Without TLS every caller is an unnamed operator.
  MonitorServiceImpl(RoundEngine* engine, Store* store, bool tls)
      : engine_(engine), store_(store), tls_(tls) {}

  grpc::Status GetStatus(grpc::ServerContext* ctx, const v1::StatusRequest* req,
                         v1::FederationStatus* resp) override;
  grpc::Status ListRounds(grpc::ServerContext* ctx, const v1::ListRoundsRequest* req,
                          v1::ListRoundsResponse* resp) override;
  grpc::Status ListSites(grpc::ServerContext* ctx, const v1::ListSitesRequest* req,
                         v1::ListSitesResponse* resp) override;
  grpc::Status Watch(grpc::ServerContext* ctx, const v1::WatchRequest* req,
                     grpc::ServerWriter<v1::Event>* writer) override;
  grpc::Status DownloadModel(grpc::ServerContext* ctx, const v1::DownloadRequest* req,
                             grpc::ServerWriter<v1::ModelChunk>* writer) override;
  grpc::Status Pause(grpc::ServerContext* ctx, const v1::ControlRequest* req,
                     v1::ControlResponse* resp) override;
  grpc::Status Resume(grpc::ServerContext* ctx, const v1::ControlRequest* req,
                      v1::ControlResponse* resp) override;
  grpc::Status Stop(grpc::ServerContext* ctx, const v1::ControlRequest* req,
                    v1::ControlResponse* resp) override;

 private:
  // Who is calling, for logs and events. Without TLS every caller is "operator"; with mutual
  // TLS (security issue) it is the certificate's identity, and controls need the admin role.
  StatusOr<std::string> Caller(grpc::ServerContext* ctx, bool needs_admin);

  RoundEngine* engine_;
  Store* store_;
  const bool tls_;
};

}  // namespace dermfed::coordinator

#endif  // DERMFED_COORDINATOR_MONITOR_SERVICE_H_
