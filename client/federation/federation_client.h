// The site's side of the wire: typed calls to the coordinator's SiteService, with models
// downloaded in chunks (resuming from the last byte after a broken stream) and updates
// uploaded in chunks. gRPC statuses become Status with the coordinator's message.
//
// Thread-compatible: one daemon thread uses it.
#ifndef DERMFED_CLIENT_FEDERATION_FEDERATION_CLIENT_H_
#define DERMFED_CLIENT_FEDERATION_FEDERATION_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "common/model_state.h"
#include "common/status.h"
#include "dermfed/v1/federation.grpc.pb.h"

namespace dermfed::client {

Status FromGrpc(const grpc::Status& s, const std::string& what);

class FederationClient {
 public:
  FederationClient(std::shared_ptr<grpc::Channel> channel, std::string site_name);

  StatusOr<v1::JoinResponse> Join(int64_t train_rows);
  StatusOr<v1::Task> WaitForTask(int64_t last_round, std::chrono::seconds timeout);
  // Downloads model `version`; retries a broken stream from where it stopped.
  StatusOr<ModelState> PullModel(int64_t version, uint64_t max_bytes);
  Status PushUpdate(int64_t round, int64_t version, int64_t num_examples, const ModelState& delta,
                    const std::map<std::string, double>& train_metrics);
  Status ReportMetrics(const v1::MetricsReport& report);

  const std::string& site_name() const { return site_; }

 private:
  std::unique_ptr<v1::SiteService::Stub> stub_;
  std::string site_;
};

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_FEDERATION_FEDERATION_CLIENT_H_
