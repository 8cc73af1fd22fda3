// A researcher's or operator's side of the coordinator's MonitorService: typed calls with
// gRPC statuses turned into Status, a Watch that calls back per event, and a model download
// that resumes from the last byte after a broken connection.
//
// Thread-compatible.
#ifndef DERMFED_CLIENT_FEDERATION_MONITOR_CLIENT_H_
#define DERMFED_CLIENT_FEDERATION_MONITOR_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/model_state.h"
#include "common/status.h"
#include "dermfed/v1/monitor.grpc.pb.h"

namespace dermfed::client {

class MonitorClient {
 public:
  explicit MonitorClient(std::shared_ptr<grpc::Channel> channel,
                         std::chrono::seconds timeout = std::chrono::seconds(30));

  StatusOr<v1::FederationStatus> GetStatus();
  StatusOr<std::vector<v1::RoundInfo>> Rounds();
  StatusOr<std::vector<v1::SiteInfo>> Sites();
  // Follows the event stream from after `after_seq` until the federation ends (OK), the
  // callback returns false (OK), or the connection fails.
  Status Watch(int64_t after_seq, const std::function<bool(const v1::Event&)>& on_event);
  // Downloads global model `version` (-1 = latest), resuming broken streams; `header` gets
  // its version, manifest and digest.
  StatusOr<ModelState> Download(int64_t version, uint64_t max_bytes, v1::ModelHeader* header,
                                int attempts = 5);
  StatusOr<v1::ControlResponse> Pause(const std::string& reason);
  StatusOr<v1::ControlResponse> Resume(const std::string& reason);
  StatusOr<v1::ControlResponse> Stop(const std::string& reason);

 private:
  using ControlRpc = grpc::Status (v1::MonitorService::Stub::*)(
      grpc::ClientContext*, const v1::ControlRequest&, v1::ControlResponse*);
  void SetDeadline(grpc::ClientContext* ctx) const;
  StatusOr<v1::ControlResponse> Control(ControlRpc rpc, const std::string& reason,
                                        const char* what);

  std::unique_ptr<v1::MonitorService::Stub> stub_;
  std::chrono::seconds timeout_;
};

// An enum value's name for people: "WAITING_FOR_SITES" -> "waiting for sites".
std::string HumanName(std::string enum_name);
std::string StateName(v1::FederationStatus::State state);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_FEDERATION_MONITOR_CLIENT_H_
