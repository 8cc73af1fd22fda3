#include "client/federation/monitor_client.h"

#include <algorithm>
#include <cctype>

#include "client/federation/federation_client.h"

namespace dermfed::client {

MonitorClient::MonitorClient(std::shared_ptr<grpc::Channel> channel, std::chrono::seconds timeout)
    : stub_(v1::MonitorService::NewStub(channel)), timeout_(timeout) {}

void MonitorClient::SetDeadline(grpc::ClientContext* ctx) const {
  ctx->set_deadline(std::chrono::system_clock::now() + timeout_);
}

StatusOr<v1::FederationStatus> MonitorClient::GetStatus() {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::FederationStatus resp;
  DF_RETURN_IF_ERROR(FromGrpc(stub_->GetStatus(&ctx, v1::StatusRequest(), &resp), "status"));
  return resp;
}

StatusOr<std::vector<v1::RoundInfo>> MonitorClient::Rounds() {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::ListRoundsResponse resp;
  DF_RETURN_IF_ERROR(FromGrpc(stub_->ListRounds(&ctx, v1::ListRoundsRequest(), &resp), "rounds"));
  return std::vector<v1::RoundInfo>(resp.rounds().begin(), resp.rounds().end());
}

StatusOr<std::vector<v1::SiteInfo>> MonitorClient::Sites() {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::ListSitesResponse resp;
  DF_RETURN_IF_ERROR(FromGrpc(stub_->ListSites(&ctx, v1::ListSitesRequest(), &resp), "sites"));
  return std::vector<v1::SiteInfo>(resp.sites().begin(), resp.sites().end());
}

Status MonitorClient::Watch(int64_t after_seq,
                            const std::function<bool(const v1::Event&)>& on_event) {
  grpc::ClientContext ctx;  // no deadline: a watch lasts as long as the federation
  v1::WatchRequest req;
  req.set_after_seq(after_seq);
  auto reader = stub_->Watch(&ctx, req);
  v1::Event event;
  while (reader->Read(&event)) {
    if (!on_event(event)) {
      ctx.TryCancel();
      reader->Finish();
      return OkStatus();
    }
  }
  return FromGrpc(reader->Finish(), "watch");
}

StatusOr<ModelState> MonitorClient::Download(int64_t version, uint64_t max_bytes,
                                             v1::ModelHeader* header, int attempts) {
  return DownloadModelChunks(
      version < 0 ? std::string("the latest global model")
                  : "global model version " + std::to_string(version),
      max_bytes,
      [&](grpc::ClientContext* ctx, uint64_t offset, const v1::ModelHeader* pinned) {
        v1::DownloadRequest req;
        req.set_model_version(pinned ? pinned->model_version() : version);
        req.set_offset(offset);
        return stub_->DownloadModel(ctx, req);
      },
      attempts, header);
}

StatusOr<v1::ControlResponse> MonitorClient::Control(ControlRpc rpc, const std::string& reason,
                                                     const char* what) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::ControlRequest req;
  req.set_reason(reason);
  v1::ControlResponse resp;
  DF_RETURN_IF_ERROR(FromGrpc((stub_.get()->*rpc)(&ctx, req, &resp), what));
  return resp;
}

StatusOr<v1::ControlResponse> MonitorClient::Pause(const std::string& reason) {
  return Control(&v1::MonitorService::Stub::Pause, reason, "pause");
}

StatusOr<v1::ControlResponse> MonitorClient::Resume(const std::string& reason) {
  return Control(&v1::MonitorService::Stub::Resume, reason, "resume");
}

StatusOr<v1::ControlResponse> MonitorClient::Stop(const std::string& reason) {
  return Control(&v1::MonitorService::Stub::Stop, reason, "stop");
}

std::string HumanName(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) {
    return c == '_' ? ' ' : static_cast<char>(std::tolower(c));
  });
  return name;
}

std::string StateName(v1::FederationStatus::State state) {
  return HumanName(v1::FederationStatus::State_Name(state));
}

}  // namespace dermfed::client
