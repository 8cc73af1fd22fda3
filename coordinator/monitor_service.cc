#include "coordinator/monitor_service.h"

#include <chrono>
#include <map>

#include "common/log.h"
#include "common/tls/tls.h"
#include "coordinator/site_service.h"

namespace dermfed::coordinator {
namespace {
constexpr char kLog[] = "coordinator";
}  // namespace

Status CheckMonitorAccess(RoundEngine& engine, const tls::Peer& peer, bool needs_admin) {
  const bool admin = peer.role == "admin";
  if (!admin && peer.role != "researcher") {
    LogWarning(kLog, "role violation: %s '%s' called the monitor service", peer.role, peer.name);
    engine.Audit(peer.name, peer.role, "role_violation", "", -1, false,
                 "a " + peer.role + " certificate called the monitor service");
    return PermissionDeniedError("a " + peer.role + " certificate ('" + peer.name +
                                 "') may not use the monitor service");
  }
  if (needs_admin && !admin) {
    LogWarning(kLog, "role violation: researcher '%s' tried an admin control", peer.name);
    engine.Audit(peer.name, peer.role, "role_violation", "", -1, false,
                 "a researcher tried an admin control");
    return PermissionDeniedError("researcher '" + peer.name +
                                 "' may watch the federation; pause, resume and stop need an "
                                 "admin certificate");
  }
  return OkStatus();
}

StatusOr<v1::FederationStatus> FederationStatusView(RoundEngine& engine, Store& store) {
  v1::FederationStatus status = engine.Snapshot();
  DF_ASSIGN_OR_RETURN(auto metrics, store.GlobalMetrics());
  if (!metrics.empty()) status.set_latest_metrics_json(metrics.back().second);
  return status;
}

StatusOr<v1::ListRoundsResponse> RoundsView(Store& store) {
  DF_ASSIGN_OR_RETURN(auto rounds, store.Rounds());
  DF_ASSIGN_OR_RETURN(auto metrics, store.GlobalMetrics());
  std::map<int64_t, std::string> by_round(metrics.begin(), metrics.end());
  v1::ListRoundsResponse resp;
  for (const RoundRecord& r : rounds) {
    v1::RoundInfo* info = resp.add_rounds();
    info->set_round(r.round);
    info->set_model_version(r.model_version);
    info->set_model_sha256_hex(r.digest);
    info->set_sites_selected(r.sites_selected);
    info->set_sites_reported(r.sites_reported);
    info->set_started_unix_s(r.started_unix_s);
    info->set_finished_unix_s(r.finished_unix_s);
    auto it = by_round.find(r.round);
    if (it != by_round.end()) info->set_metrics_json(it->second);
  }
  return resp;
}

StatusOr<std::string> MonitorServiceImpl::Caller(grpc::ServerContext* ctx, bool needs_admin) {
  if (!tls_) return std::string("operator");
  auto peer = tls::PeerOf(*ctx);
  if (!peer.ok()) {
    LogWarning(kLog, "monitor service refused %s: %s", ctx->peer(), peer.status().message());
    return peer.status();
  }
  DF_RETURN_IF_ERROR(CheckMonitorAccess(*engine_, *peer, needs_admin));
  return peer->role + ":" + peer->name;
}

grpc::Status MonitorServiceImpl::GetStatus(grpc::ServerContext* ctx, const v1::StatusRequest*,
                                           v1::FederationStatus* resp) {
  auto who = Caller(ctx, false);
  if (!who.ok()) return ToGrpc(who.status());
  auto status = FederationStatusView(*engine_, *store_);
  if (!status.ok()) return ToGrpc(status.status());
  *resp = std::move(status).value();
  return grpc::Status::OK;
}

grpc::Status MonitorServiceImpl::ListRounds(grpc::ServerContext* ctx, const v1::ListRoundsRequest*,
                                            v1::ListRoundsResponse* resp) {
  auto who = Caller(ctx, false);
  if (!who.ok()) return ToGrpc(who.status());
  auto rounds = RoundsView(*store_);
  if (!rounds.ok()) return ToGrpc(rounds.status());
  *resp = std::move(rounds).value();
  return grpc::Status::OK;
}

grpc::Status MonitorServiceImpl::ListSites(grpc::ServerContext* ctx, const v1::ListSitesRequest*,
                                           v1::ListSitesResponse* resp) {
  auto who = Caller(ctx, false);
  if (!who.ok()) return ToGrpc(who.status());
  for (auto& s : engine_->Sites()) *resp->add_sites() = std::move(s);
  return grpc::Status::OK;
}

grpc::Status MonitorServiceImpl::Watch(grpc::ServerContext* ctx, const v1::WatchRequest* req,
                                       grpc::ServerWriter<v1::Event>* writer) {
  auto who = Caller(ctx, false);
  if (!who.ok()) return ToGrpc(who.status());
  if (req->after_seq() < 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "after_seq must be >= 0");
  }
  EventLog& log = engine_->events();
  int64_t seen = req->after_seq();
  while (!ctx->IsCancelled()) {
    // Wake up now and then to notice a cancelled watcher.
    std::vector<v1::Event> events = log.After(seen, std::chrono::milliseconds(500));
    for (const v1::Event& e : events) {
      if (!writer->Write(e)) return grpc::Status(grpc::StatusCode::CANCELLED, "watcher went away");
      seen = e.seq();
    }
    if (events.empty() && log.closed()) return grpc::Status::OK;  // the federation is over
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled");
}

grpc::Status MonitorServiceImpl::DownloadModel(grpc::ServerContext* ctx,
                                               const v1::DownloadRequest* req,
                                               grpc::ServerWriter<v1::ModelChunk>* writer) {
  auto who = Caller(ctx, false);
  if (!who.ok()) return ToGrpc(who.status());
  auto model = engine_->ModelForDownload(req->model_version());
  if (!model.ok()) return ToGrpc(model.status());
  return WriteModelStream(ctx, writer, **model, req->offset(), engine_->metrics(), "download");
}

grpc::Status MonitorServiceImpl::Pause(grpc::ServerContext* ctx, const v1::ControlRequest* req,
                                       v1::ControlResponse* resp) {
  auto who = Caller(ctx, true);
  if (!who.ok()) return ToGrpc(who.status());
  *resp = engine_->Pause(*who, req->reason());
  return grpc::Status::OK;
}

grpc::Status MonitorServiceImpl::Resume(grpc::ServerContext* ctx, const v1::ControlRequest* req,
                                        v1::ControlResponse* resp) {
  auto who = Caller(ctx, true);
  if (!who.ok()) return ToGrpc(who.status());
  *resp = engine_->Resume(*who, req->reason());
  return grpc::Status::OK;
}

grpc::Status MonitorServiceImpl::Stop(grpc::ServerContext* ctx, const v1::ControlRequest* req,
                                      v1::ControlResponse* resp) {
  auto who = Caller(ctx, true);
  if (!who.ok()) return ToGrpc(who.status());
  *resp = engine_->Stop(*who, req->reason());
  return grpc::Status::OK;
}

}  // namespace dermfed::coordinator
