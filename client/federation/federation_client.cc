#include "client/federation/federation_client.h"

#include <optional>
#include <thread>

#include "common/model_transfer.h"

namespace dermfed::client {

Status FromGrpc(const grpc::Status& s, const std::string& what) {
  if (s.ok()) return OkStatus();
  return Status(static_cast<absl::StatusCode>(s.error_code()), what + ": " + s.error_message());
}

FederationClient::FederationClient(std::shared_ptr<grpc::Channel> channel, std::string site_name)
    : stub_(v1::SiteService::NewStub(channel)), site_(std::move(site_name)) {}

StatusOr<v1::JoinResponse> FederationClient::Join(int64_t train_rows) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::JoinRequest req;
  req.set_site_name(site_);
  req.set_train_rows(train_rows);
  v1::JoinResponse resp;
  DF_RETURN_IF_ERROR(FromGrpc(stub_->Join(&ctx, req, &resp), "join"));
  return resp;
}

StatusOr<v1::Task> FederationClient::WaitForTask(int64_t last_round, std::chrono::seconds timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  v1::TaskRequest req;
  req.set_site_name(site_);
  req.set_last_round(last_round);
  v1::Task task;
  DF_RETURN_IF_ERROR(FromGrpc(stub_->WaitForTask(&ctx, req, &task), "waiting for a task"));
  return task;
}

StatusOr<ModelState> DownloadModelChunks(const std::string& what, uint64_t max_bytes,
                                         const OpenModelStream& open, int attempts,
                                         v1::ModelHeader* header,
                                         const std::function<void()>& on_header) {
  std::optional<ChunkAssembler> assembler;
  std::optional<v1::ModelHeader> pinned;
  Status last = OkStatus();
  for (int attempt = 0; attempt < attempts; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(200 << attempt));
    grpc::ClientContext ctx;
    if (attempt > 0) {
      // The connection broke: wait for the channel to reconnect rather than failing fast,
      // with a deadline that still lets the rest arrive at 1 MiB/s.
      const uint64_t left = assembler ? assembler->total() - assembler->received() : 0;
      ctx.set_wait_for_ready(true);
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30 + (left >> 20)));
    }
    auto reader = open(&ctx, assembler ? assembler->received() : 0, pinned ? &*pinned : nullptr);
    v1::ModelChunk chunk;
    bool first = true;
    Status stream = OkStatus();
    while (reader->Read(&chunk)) {
      if (first) {
        first = false;
        if (!chunk.has_header()) {
          stream = DataLossError(what + ": stream did not start with a header");
          break;
        }
        if (!pinned) {
          auto a = ChunkAssembler::Start(chunk.header().manifest(), chunk.header().sha256(), what,
                                         nullptr, max_bytes);
          if (!a.ok()) return a.status();
          assembler.emplace(std::move(a).value());
          pinned = chunk.header();
          if (on_header) on_header();
        } else if (chunk.header().sha256() != pinned->sha256() ||
                   chunk.header().model_version() != pinned->model_version()) {
          stream = DataLossError(what + ": the model changed while the download was resumed");
          break;
        }
        if (chunk.data().empty()) continue;
      }
      stream = assembler->Add(chunk.offset(), chunk.data());
      if (!stream.ok()) break;
    }
    if (!stream.ok()) {
      ctx.TryCancel();
      reader->Finish();
      return stream;
    }
    grpc::Status s = reader->Finish();
    if (s.ok() && assembler && assembler->received() == assembler->total()) {
      if (header) *header = *pinned;
      return assembler->Finish();
    }
    last = FromGrpc(s, "downloading " + what);
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE &&
        s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED &&
        s.error_code() != grpc::StatusCode::INTERNAL && !s.ok()) {
      return last;  // refused for a reason: retrying will not help
    }
  }
  return last.ok() ? DataLossError(what + ": download incomplete after retries") : last;
}

StatusOr<ModelState> FederationClient::PullModel(int64_t version, uint64_t max_bytes,
                                                 v1::ModelHeader* header) {
  return DownloadModelChunks(
      "model version " + std::to_string(version), max_bytes,
      [&](grpc::ClientContext* ctx, uint64_t offset, const v1::ModelHeader*) {
        v1::PullRequest req;
        req.set_site_name(site_);
        req.set_model_version(version);
        req.set_offset(offset);
        return stub_->PullModel(ctx, req);
      },
      /*attempts=*/5, header, [&] {
        if (debug_hook_) debug_hook_("download");
      });
}

Status FederationClient::PushUpdate(int64_t round, int64_t version, int64_t num_examples,
                                    const ModelState& delta,
                                    const std::map<std::string, double>& train_metrics,
                                    bool masked, const secagg::UploadSealer* sealer,
                                    const std::string& encoding) {
  grpc::ClientContext ctx;
  v1::PushAck ack;
  auto writer = stub_->PushUpdate(&ctx, &ack);
  v1::ModelChunk header;
  v1::ModelHeader* h = header.mutable_header();
  h->set_round(round);
  h->set_model_version(version);
  h->set_site_name(site_);
  h->set_num_examples(num_examples);
  h->set_secagg_masked(masked);
  h->set_encoding(encoding);
  if (sealer) h->set_seal_public_key(sealer->public_key());
  *h->mutable_manifest() = ManifestToProto(delta);
  const auto digest = BufferDigest(delta);
  h->set_sha256(reinterpret_cast<const char*>(digest.data()), digest.size());
  for (const auto& [k, v] : train_metrics) (*h->mutable_train_metrics())[k] = v;
  bool ok = writer->Write(header);
  for (uint64_t off = 0; ok && off < delta.size_bytes(); off += kChunkBytes) {
    v1::ModelChunk chunk;
    chunk.set_offset(off);
    chunk.set_data(reinterpret_cast<const char*>(delta.data()) + off,
                   std::min<uint64_t>(kChunkBytes, delta.size_bytes() - off));
    if (sealer) {
      auto sealed = sealer->Seal(off, chunk.data());
      if (!sealed.ok()) {
        writer->WritesDone();
        (void)writer->Finish();
        return sealed.status();
      }
      chunk.set_data(std::move(sealed).value());
    }
    ok = writer->Write(chunk);
    if (off == 0 && debug_hook_) debug_hook_("upload");
  }
  writer->WritesDone();
  return FromGrpc(writer->Finish(), "uploading the update for round " + std::to_string(round));
}

Status FederationClient::SubmitSecAgg(int64_t round, int64_t version, v1::Task::Kind phase,
                                      const std::string& payload) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::SecAggMessage m;
  m.set_site_name(site_);
  m.set_round(round);
  m.set_model_version(version);
  m.set_phase(phase);
  m.set_payload(payload);
  v1::Ack ack;
  return FromGrpc(stub_->SubmitSecAgg(&ctx, m, &ack),
                  "secure aggregation (" + v1::Task::Kind_Name(phase) + ", round " +
                      std::to_string(round) + ")");
}

Status FederationClient::ReportMetrics(const v1::MetricsReport& report) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::Ack ack;
  return FromGrpc(stub_->ReportMetrics(&ctx, report, &ack), "reporting metrics");
}

}  // namespace dermfed::client
