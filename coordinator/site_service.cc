#include "coordinator/site_service.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "common/log.h"
#include "common/model_transfer.h"
#include "common/tls/tls.h"
#include "common/update_codec.h"

namespace dermfed::coordinator {
namespace {
constexpr char kLog[] = "coordinator";
}  // namespace

grpc::Status ToGrpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

grpc::Status WriteModelStream(grpc::ServerContext* ctx, grpc::ServerWriter<v1::ModelChunk>* writer,
                              const GlobalModel& g, uint64_t offset, ServerMetrics& metrics,
                              const std::string& kind) {
  const uint64_t total = g.state.size_bytes();
  if (offset > total) {
    return grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                        "offset " + std::to_string(offset) + " is beyond the " +
                            std::to_string(total) + "-byte model");
  }
  v1::ModelChunk chunk;
  v1::ModelHeader* h = chunk.mutable_header();
  h->set_model_version(g.version);
  h->set_round(g.version);
  *h->mutable_manifest() = g.manifest;
  h->set_sha256(g.sha256);
  chunk.set_offset(offset);
  if (!writer->Write(chunk)) return grpc::Status(grpc::StatusCode::CANCELLED, "peer went away");
  // One message for every chunk: its 2 MiB string is reused rather than allocated anew.
  v1::ModelChunk data;
  for (uint64_t off = offset; off < total; off += kChunkBytes) {
    if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "download cancelled");
    const uint64_t n = std::min<uint64_t>(kChunkBytes, total - off);
    data.set_offset(off);
    data.set_data(reinterpret_cast<const char*>(g.state.data()) + off, n);
    if (!writer->Write(data)) return grpc::Status(grpc::StatusCode::CANCELLED, "peer went away");
    metrics.BytesOut(kind, n);
  }
  return grpc::Status::OK;
}

SiteServiceImpl::SiteServiceImpl(RoundEngine* engine, int max_concurrent_uploads, bool tls)
    : engine_(engine), tls_(tls), uploads_free_(std::max(1, max_concurrent_uploads)) {}

StatusOr<std::string> SiteServiceImpl::Identity(grpc::ServerContext* ctx,
                                                const std::string& claimed) {
  if (!tls_) {
    if (claimed.empty()) return InvalidArgumentError("request names no site");
    return claimed;
  }
  auto peer = tls::PeerOf(*ctx);
  if (!peer.ok()) {
    LogWarning(kLog, "site service refused %s: %s", ctx->peer(), peer.status().message());
    return peer.status();
  }
  if (peer->role != "site") {
    LogWarning(kLog, "role violation: %s '%s' called the site service", peer->role, peer->name);
    engine_->Audit(peer->name, peer->role, "role_violation", "", -1, false,
                   "a " + peer->role + " certificate called the site service");
    return PermissionDeniedError("a " + peer->role + " certificate ('" + peer->name +
                                 "') may not use the site service");
  }
  if (!claimed.empty() && claimed != peer->name) {
    LogWarning(kLog, "role violation: site '%s' (by certificate) claimed to be '%s'", peer->name,
               claimed);
    engine_->Audit(peer->name, peer->role, "role_violation", peer->name, -1, false,
                   "claimed to be site '" + claimed + "'");
    return PermissionDeniedError("site '" + peer->name + "' (by its certificate) may not act as '" +
                                 claimed + "'");
  }
  return peer->name;
}

grpc::Status SiteServiceImpl::Join(grpc::ServerContext* ctx, const v1::JoinRequest* req,
                                   v1::JoinResponse* resp) {
  auto site = Identity(ctx, req->site_name());
  if (!site.ok()) return ToGrpc(site.status());
  auto r = engine_->Join(*site, req->train_rows());
  if (!r.ok()) return ToGrpc(r.status());
  *resp = std::move(r).value();
  return grpc::Status::OK;
}

grpc::Status SiteServiceImpl::WaitForTask(grpc::ServerContext* ctx, const v1::TaskRequest* req,
                                          v1::Task* resp) {
  auto site = Identity(ctx, req->site_name());
  if (!site.ok()) return ToGrpc(site.status());
  // Long-poll, but return before the client's own deadline would cut the call.
  auto wait = std::chrono::milliseconds(5000);
  const auto client_deadline = ctx->deadline();
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      client_deadline - std::chrono::system_clock::now());
  if (left.count() > 0) wait = std::min(wait, left - std::chrono::milliseconds(200));
  if (wait.count() < 0) wait = std::chrono::milliseconds(0);
  auto t = engine_->WaitForTask(*site, wait);
  if (!t.ok()) return ToGrpc(t.status());
  *resp = std::move(t).value();
  return grpc::Status::OK;
}

grpc::Status SiteServiceImpl::PullModel(grpc::ServerContext* ctx, const v1::PullRequest* req,
                                        grpc::ServerWriter<v1::ModelChunk>* writer) {
  auto site = Identity(ctx, req->site_name());
  if (!site.ok()) return ToGrpc(site.status());
  auto model = engine_->GetModel(*site, req->model_version());
  if (!model.ok()) return ToGrpc(model.status());
  return WriteModelStream(ctx, writer, **model, req->offset(), engine_->metrics(), "model");
}

grpc::Status SiteServiceImpl::PushUpdate(grpc::ServerContext* ctx,
                                         grpc::ServerReader<v1::ModelChunk>* reader,
                                         v1::PushAck* resp) {
  v1::ModelChunk first;
  if (!reader->Read(&first)) {
    // The stream broke before its header could be read (a connection reset right after the
    // upload began can cancel the call before this handler runs): nothing of it was read or
    // folded, but say so, naming the sender by its certificate, rather than drop it silently.
    auto site = Identity(ctx, "");
    const std::string why = "an upload broke before its header arrived: nothing of it was read";
    LogWarning(kLog, "site=%s %s", site.ok() ? *site : ctx->peer(), why);
    if (site.ok()) engine_->Audit(*site, "site", "reject", *site, /*round=*/-1, false, why);
    return grpc::Status(grpc::StatusCode::CANCELLED, "the upload broke before its header");
  }
  if (!first.has_header()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "an update must start with a header chunk");
  }
  const v1::ModelHeader header = first.header();
  auto site = Identity(ctx, header.site_name());
  if (!site.ok()) return ToGrpc(site.status());
  const bool masked = header.secagg_masked();
  Status check = engine_->CheckUpdate(*site, header.round(), header.model_version(),
                                      header.num_examples(), masked);
  if (!check.ok()) return ToGrpc(check);
  // From here on an update that is not folded is refused on the record (log, event, audit):
  // a broken or corrupt upload is never dropped silently, and never folded in part.
  auto refuse = [&](const Status& why) {
    return ToGrpc(engine_->RejectUpdate(*site, header.round(), header.model_version(), why));
  };
  const std::string what =
      "update from site '" + *site + "' for round " + std::to_string(header.round());
  // The federation negotiated one codec (FederationSpec.compression); anything else is
  // refused before a byte of it is read. Masked updates are never compressed.
  const CodecOptions codec = engine_->UpdateCompression();
  const std::string negotiated(UpdateCodecName(codec.codec));
  auto sent = ParseUpdateCodec(header.encoding());
  if (!sent.ok() || *sent != codec.codec) {
    return refuse(InvalidArgumentError(
        what + ": encoded as '" + (header.encoding().empty() ? "none" : header.encoding()) +
        "', but the federation negotiated update compression '" + negotiated + "'"));
  }
  const bool encoded = codec.codec != UpdateCodec::kNone;
  if (encoded && masked) {
    return refuse(InvalidArgumentError(what + ": a masked update cannot be compressed"));
  }

  // Each upload in flight holds a model-sized buffer: bound how many, so coordinator memory
  // stays O(model) with many sites.
  {
    std::unique_lock<std::mutex> lock(upload_mu_);
    upload_cv_.wait(lock, [&] { return uploads_free_ > 0; });
    --uploads_free_;
  }
  struct Release {
    SiteServiceImpl* s;
    ~Release() {
      {
        std::lock_guard<std::mutex> lock(s->upload_mu_);
        ++s->uploads_free_;
      }
      s->upload_cv_.notify_one();
    }
  } release{this};

  std::shared_ptr<const GlobalModel> global = engine_->CurrentModel();
  // A masked update is one int32 vector; its exact layout is checked by the engine.
  const size_t masked_words = masked ? engine_->MaskedUpdateWords() : 0;
  if (masked && masked_words == 0) {
    return refuse(FailedPreconditionError(what + ": not securely aggregated"));
  }
  // An encoded update is one uint8 tensor whose exact size the layout and codec fix.
  if (encoded) {
    auto specs = ManifestFromProto(header.manifest());
    Status shape = specs.ok() ? CheckEncodedManifest(*specs, global->state.manifest(), codec, what)
                              : Annotate(specs.status(), what);
    if (!shape.ok()) return refuse(shape);
  }
  auto assembler =
      masked    ? ChunkAssembler::Start(header.manifest(), header.sha256(), what, nullptr,
                                        masked_words * sizeof(uint32_t))
      : encoded ? ChunkAssembler::Start(header.manifest(), header.sha256(), what, nullptr,
                                        EncodedBytes(global->state.manifest(), codec))
                : ChunkAssembler::Start(header.manifest(), header.sha256(), what, &global->state,
                                        global->state.size_bytes());
  if (!assembler.ok()) return refuse(assembler.status());
  // Masked updates arrive sealed chunk by chunk (bound to this site's identity, the round,
  // the version and the offset); each is opened before it is assembled.
  std::optional<secagg::UploadOpener> opener;
  if (masked) {
    auto o = engine_->UploadOpenerFor(*site, header.round(), header.model_version(),
                                      header.seal_public_key());
    if (!o.ok()) return refuse(o.status());
    opener.emplace(std::move(o).value());
  }
  auto add = [&](const v1::ModelChunk& c) -> Status {
    engine_->metrics().BytesIn("update", c.data().size());
    if (!opener) return assembler->Add(c.offset(), c.data());
    DF_ASSIGN_OR_RETURN(std::string plain, opener->Open(c.offset(), c.data()));
    return assembler->Add(c.offset(), plain);
  };
  if (!first.data().empty()) {
    Status s = add(first);
    if (!s.ok()) return refuse(s);
  }
  v1::ModelChunk chunk;
  while (reader->Read(&chunk)) {
    if (chunk.has_header()) return refuse(InvalidArgumentError(what + ": a second header"));
    Status s = add(chunk);
    if (!s.ok()) return refuse(s);
  }
  if (ctx->IsCancelled()) {
    return refuse(CancelledError(what + ": the stream broke after " +
                                 std::to_string(assembler->received()) + " of " +
                                 std::to_string(assembler->total()) + " bytes; discarded"));
  }
  const uint64_t wire_bytes = assembler->received();
  auto delta = assembler->Finish();
  if (!delta.ok()) return refuse(delta.status());
  if (encoded) {
    // Decoded (untrusted bytes, checked throughout) into the global layout before folding:
    // aggregation only ever sees plain float deltas.
    delta = DecodeUpdate(*delta, global->state, codec, what);
    if (!delta.ok()) return refuse(delta.status());
  }
  if (!masked) {
    engine_->metrics().BytesIn("update_uncompressed", delta->size_bytes());
    LogInfo(kLog, "site=%s round=%d update received: %d bytes on the wire (%s), %d uncompressed",
            *site, header.round(), wire_bytes, negotiated, delta->size_bytes());
  }
  std::map<std::string, double> metrics(header.train_metrics().begin(),
                                        header.train_metrics().end());
  Status s = engine_->SubmitUpdate(*site, header.round(), header.model_version(),
                                   header.num_examples(), *delta, metrics, masked);
  if (!s.ok()) return ToGrpc(s);
  resp->set_accepted(true);
  resp->set_message("update for round " + std::to_string(header.round()) + " folded");
  return grpc::Status::OK;
}

grpc::Status SiteServiceImpl::ReportMetrics(grpc::ServerContext* ctx, const v1::MetricsReport* req,
                                            v1::Ack* resp) {
  auto site = Identity(ctx, req->site_name());
  if (!site.ok()) return ToGrpc(site.status());
  return ToGrpc(engine_->SubmitEvaluation(*req, *site));
}

grpc::Status SiteServiceImpl::SubmitSecAgg(grpc::ServerContext* ctx, const v1::SecAggMessage* req,
                                           v1::Ack* resp) {
  auto site = Identity(ctx, req->site_name());
  if (!site.ok()) return ToGrpc(site.status());
  return ToGrpc(engine_->SubmitSecAgg(*site, *req));
}

}  // namespace dermfed::coordinator
