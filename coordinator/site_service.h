// The gRPC face of the RoundEngine for sites: converts messages and Status, streams models
// out in chunks, and reassembles uploaded updates (bounded concurrency, each one verified
// before it reaches the engine). No business logic lives here.
//
// Thread-safe (gRPC calls handlers concurrently; the engine is thread-safe).
#ifndef DERMFED_COORDINATOR_SITE_SERVICE_H_
#define DERMFED_COORDINATOR_SITE_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <mutex>
#include <string>

#include "coordinator/round_engine.h"
#include "dermfed/v1/federation.grpc.pb.h"

namespace dermfed::coordinator {

grpc::Status ToGrpc(const Status& s);

// Streams `model` from byte `offset`: a header chunk (version, manifest, SHA-256 of the
// whole), then the buffer in kChunkBytes pieces. Shared by sites' and researchers' downloads;
// the bytes sent are counted in `metrics` under `kind`.
grpc::Status WriteModelStream(grpc::ServerContext* ctx, grpc::ServerWriter<v1::ModelChunk>* writer,
                              const GlobalModel& model, uint64_t offset, ServerMetrics& metrics,
                              const std::string& kind);

class SiteServiceImpl final : public v1::SiteService::Service {
 public:
  // tls: callers are identified by their certificates (role site); otherwise by name.
  SiteServiceImpl(RoundEngine* engine, int max_concurrent_uploads, bool tls);

  grpc::Status Join(grpc::ServerContext* ctx, const v1::JoinRequest* req,
                    v1::JoinResponse* resp) override;
  grpc::Status WaitForTask(grpc::ServerContext* ctx, const v1::TaskRequest* req,
                           v1::Task* resp) override;
  grpc::Status PullModel(grpc::ServerContext* ctx, const v1::PullRequest* req,
                         grpc::ServerWriter<v1::ModelChunk>* writer) override;
  grpc::Status PushUpdate(grpc::ServerContext* ctx, grpc::ServerReader<v1::ModelChunk>* reader,
                          v1::PushAck* resp) override;
  grpc::Status ReportMetrics(grpc::ServerContext* ctx, const v1::MetricsReport* req,
                             v1::Ack* resp) override;
  grpc::Status SubmitSecAgg(grpc::ServerContext* ctx, const v1::SecAggMessage* req,
                            v1::Ack* resp) override;

 private:
  // The caller's identity. Without TLS it is the name the site gives; with mutual TLS
  // (security issue) it comes from the certificate and the field is ignored.
  StatusOr<std::string> Identity(grpc::ServerContext* ctx, const std::string& claimed);

  RoundEngine* engine_;
  const bool tls_;
  std::mutex upload_mu_;
  std::condition_variable upload_cv_;
  int uploads_free_;
};

}  // namespace dermfed::coordinator

#endif  // DERMFED_COORDINATOR_SITE_SERVICE_H_
