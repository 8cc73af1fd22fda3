// Model chunk reassembly as the coordinator does it for PushUpdate (coordinator/site_service.cc)
// and a site for PullModel (DownloadModelChunks): a stream of v1::ModelChunk messages, the
// first carrying the header (manifest, SHA-256), into a ChunkAssembler; a complete,
// verified update is then folded by the strategies the way the round engine does.
//
// Input: one mode byte, then the stream as varint-length-delimited ModelChunk messages
// (what a gRPC stream carries, minus gRPC's own framing). Mode bits:
//   0  1: an update checked against the global model's layout (coordinator, plaintext);
//      0: no expected layout, at most kMaxBytes (a site's download; a masked upload)
//   1  the harness replaces the header's sha256 with the digest of the chunks' data, so a
//      well-formed stream gets past Finish() (the fuzzer cannot forge SHA-256 itself)
//   2-4 the strategy that folds a finished update (index into StrategyNames())
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/delimited_message_util.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/model_state.h"
#include "common/model_transfer.h"
#include "coordinator/strategy.h"
#include "dermfed/v1/federation.pb.h"
#include "tests/fuzz/fuzz_model.h"
#include "tests/fuzz/fuzz_util.h"

namespace dermfed {
namespace {

constexpr uint64_t kMaxBytes = 1u << 20;
constexpr int kMaxChunks = 256;

// What the round engine does with a verified update: fold it (as two sites' updates, so
// the robust strategies have something to compare), finish, apply.
void Aggregate(const ModelState& delta, int64_t num_examples, int strategy_index) {
  const auto& names = coordinator::StrategyNames();
  coordinator::StrategyConfig config;
  config.name = names[static_cast<size_t>(strategy_index) % names.size()];
  config.krum_byzantine = 0;
  auto strategy = coordinator::MakeStrategy(config);
  FUZZ_CHECK(strategy.ok(), strategy.status().ToString());
  const ModelState& global = fuzz::FuzzGlobalModel();
  std::unique_ptr<coordinator::Aggregator> aggregator = (*strategy)->NewAggregator(global);
  Status folded = aggregator->Fold("site-a", num_examples, delta);
  fuzz::Trace(config.name + " fold", folded);
  if (!folded.ok()) return;  // non-finite values, num_examples <= 0: refused, as it should be
  ModelState zero = global.Clone();
  std::memset(zero.data(), 0, zero.size_bytes());
  FUZZ_CHECK(aggregator->Fold("site-b", 1, zero).ok() ||
                 num_examples == std::numeric_limits<int64_t>::max(),
             "a zero update was refused after a valid one");
  auto aggregate = aggregator->Finish();
  if (!aggregate.ok()) return;
  ModelState next = global.Clone();
  Status applied = (*strategy)->Apply(*aggregate, &next);
  fuzz::Trace(config.name + " apply", applied);
  if (applied.ok()) FUZZ_CHECK(next.SameLayout(global), "Apply changed the model's layout");
}

}  // namespace
}  // namespace dermfed

// Protobuf logs every string field with invalid UTF-8 it refuses; a fuzzer makes millions.
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dermfed;
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  const bool expect_layout = (mode & 1) != 0;
  const bool fix_digest = (mode & 2) != 0;
  const int strategy_index = (mode >> 2) & 7;

  google::protobuf::io::CodedInputStream in(data + 1, static_cast<int>(size - 1));
  std::vector<v1::ModelChunk> chunks;
  bool clean_eof = false;
  while (chunks.size() < kMaxChunks) {
    v1::ModelChunk chunk;
    if (!google::protobuf::util::ParseDelimitedFromCodedStream(&chunk, &in, &clean_eof)) break;
    chunks.push_back(std::move(chunk));
  }
  // As PushUpdate: the stream must start with a header.
  if (chunks.empty() || !chunks[0].has_header()) return 0;
  v1::ModelHeader header = chunks[0].header();
  if (fix_digest) {
    Sha256 sha;
    for (const v1::ModelChunk& c : chunks) sha.Update(c.data().data(), c.data().size());
    const auto digest = sha.Final();
    header.set_sha256(std::string(reinterpret_cast<const char*>(digest.data()), digest.size()));
  }
  const ModelState& global = fuzz::FuzzGlobalModel();
  auto assembler = expect_layout
                       ? ChunkAssembler::Start(header.manifest(), header.sha256(), "fuzzed update",
                                               &global, global.size_bytes())
                       : ChunkAssembler::Start(header.manifest(), header.sha256(),
                                               "fuzzed download", nullptr, kMaxBytes);
  fuzz::Trace("start", assembler.status());
  if (!assembler.ok()) return 0;
  FUZZ_CHECK(assembler->total() <= (expect_layout ? global.size_bytes() : kMaxBytes),
             "assembler accepted a model above its byte limit");
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (i > 0 && chunks[i].has_header()) return 0;  // "a second header"
    if (i == 0 && chunks[0].data().empty()) continue;
    const uint64_t before = assembler->received();
    Status added = assembler->Add(chunks[i].offset(), chunks[i].data());
    if (!added.ok()) {
      fuzz::Trace("chunk " + std::to_string(i), added);
      return 0;
    }
    FUZZ_CHECK(assembler->received() == before + chunks[i].data().size(), "received() is off");
    FUZZ_CHECK(assembler->received() <= assembler->total(), "received more than the model holds");
  }
  auto state = assembler->Finish();
  fuzz::Trace("finish", state.status());
  if (!state.ok()) return 0;
  // A finished state is exactly what the header announced and the chunks carried.
  const auto digest = BufferDigest(*state);
  FUZZ_CHECK(std::memcmp(digest.data(), header.sha256().data(), digest.size()) == 0,
             "Finish() returned a state whose digest differs from the header's");
  auto specs = ManifestFromProto(ManifestToProto(*state));
  FUZZ_CHECK(specs.ok(),
             "the manifest of an assembled state does not validate: " + specs.status().ToString());
  if (expect_layout) {
    FUZZ_CHECK(state->SameLayout(global), "an update with the wrong layout was assembled");
    Aggregate(*state, header.num_examples(), strategy_index);
  }
  return 0;
}
