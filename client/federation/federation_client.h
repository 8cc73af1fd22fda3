// The site's side of the wire: typed calls to the coordinator's SiteService, with models
// downloaded in chunks (resuming from the last byte after a broken stream) and updates
// uploaded in chunks. gRPC statuses become Status with the coordinator's message.
//
// Thread-compatible: one daemon thread uses it.
#ifndef DERMFED_CLIENT_FEDERATION_FEDERATION_CLIENT_H_
#define DERMFED_CLIENT_FEDERATION_FEDERATION_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/model_state.h"
#include "common/secagg/upload_seal.h"
#include "common/status.h"
#include "dermfed/v1/federation.grpc.pb.h"

namespace dermfed::client {

Status FromGrpc(const grpc::Status& s, const std::string& what);

// Opens a model download stream starting at byte `offset`. `pinned` is null on the first
// attempt and the first attempt's header afterwards, so a retry asks for the same version.
using OpenModelStream = std::function<std::unique_ptr<grpc::ClientReaderInterface<v1::ModelChunk>>(
    grpc::ClientContext* ctx, uint64_t offset, const v1::ModelHeader* pinned)>;

// The one download loop: reads a header and chunks into a ChunkAssembler and, when the stream
// breaks (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL), reopens it from the last byte received,
// up to `attempts` times; refuses a retry whose header names a different model. Fills
// `header` (if given) with the model's header. `on_header` (tests: a fault point) runs once the
// first attempt's header has arrived, with the stream still open.
StatusOr<ModelState> DownloadModelChunks(const std::string& what, uint64_t max_bytes,
                                         const OpenModelStream& open, int attempts,
                                         v1::ModelHeader* header = nullptr,
                                         const std::function<void()>& on_header = {});

class FederationClient {
 public:
  FederationClient(std::shared_ptr<grpc::Channel> channel, std::string site_name);

  StatusOr<v1::JoinResponse> Join(int64_t train_rows);
  StatusOr<v1::Task> WaitForTask(int64_t last_round, std::chrono::seconds timeout);
  // Downloads model `version`; retries a broken stream from where it stopped.
  // `header`, when given, receives the model's header (its SHA-256 among others).
  StatusOr<ModelState> PullModel(int64_t version, uint64_t max_bytes,
                                 v1::ModelHeader* header = nullptr);
  // masked: a secure-aggregation masked vector (num_examples 0: the weight is inside).
  // sealer (masked updates): seals every chunk to the round's upload key.
  // encoding: the codec `delta` was encoded with (common/update_codec.h); "" = raw.
  Status PushUpdate(int64_t round, int64_t version, int64_t num_examples, const ModelState& delta,
                    const std::map<std::string, double>& train_metrics, bool masked = false,
                    const secagg::UploadSealer* sealer = nullptr,
                    const std::string& encoding = "");
  Status SubmitSecAgg(int64_t round, int64_t version, v1::Task::Kind phase,
                      const std::string& payload);
  Status ReportMetrics(const v1::MetricsReport& report);

  const std::string& site_name() const { return site_; }

  // Tests only (site.debug_fault): called with "download" once a model download's header has
  // arrived and with "upload" once an update's header and first chunk are written, each with
  // its stream open, so that a test can stall or kill the site mid-transfer there.
  void set_debug_hook(std::function<void(const char* where)> hook) { debug_hook_ = std::move(hook); }

 private:
  std::unique_ptr<v1::SiteService::Stub> stub_;
  std::string site_;
  std::function<void(const char* where)> debug_hook_;
};

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_FEDERATION_FEDERATION_CLIENT_H_
