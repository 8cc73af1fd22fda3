// A v1::Manifest protobuf (what a model header or a model state file carries) into a
// ModelState layout: ManifestFromProto (ValidateManifest), then ModelState::FromParts with a
// buffer of that size and ModelState::Create laying the same tensors out itself, and the
// arithmetic a site and the coordinator do on states of one layout. Input: the serialized
// Manifest; the buffer's bytes are derived from it.
#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/model_state.h"
#include "common/model_transfer.h"
#include "dermfed/v1/model_state.pb.h"
#include "tests/fuzz/fuzz_util.h"

namespace {
// States above this are not allocated (the real limits are the model's size and
// kMaxManifestBytes; here they would only slow the fuzzer down).
constexpr uint64_t kMaxBufferBytes = 4u << 20;
}  // namespace

// Protobuf logs every string field with invalid UTF-8 it refuses; a fuzzer makes millions.
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dermfed;
  v1::Manifest manifest;
  if (!manifest.ParseFromArray(data, static_cast<int>(size))) return 0;
  auto specs = ManifestFromProto(manifest);
  fuzz::Trace("manifest", specs.status());
  if (!specs.ok()) {
    FUZZ_CHECK(!specs.status().message().empty(), "manifest refused without a reason");
    return 0;
  }
  const uint64_t buffer_bytes = manifest.buffer_bytes();
  uint64_t sum = 0;
  for (const TensorSpec& t : *specs) {
    FUZZ_CHECK(t.offset + t.nbytes <= buffer_bytes, "validated tensor '" + t.name + "' overruns");
    FUZZ_CHECK(static_cast<uint64_t>(t.numel()) * ElementSize(t.dtype) == t.nbytes,
               "validated tensor '" + t.name + "' has inconsistent nbytes");
    sum += t.nbytes;
  }
  FUZZ_CHECK(sum <= buffer_bytes, "validated tensors overlap");
  if (buffer_bytes > kMaxBufferBytes) return 0;

  std::vector<uint8_t> bytes(buffer_bytes);
  for (uint64_t i = 0; i < buffer_bytes; ++i) {
    bytes[i] = static_cast<uint8_t>(data[i % size] ^ (i * 131));
  }
  auto state = ModelState::FromParts(*specs, bytes.data(), buffer_bytes);
  FUZZ_CHECK(state.ok(), "FromParts refused a validated manifest: " + state.status().ToString());
  FUZZ_CHECK(state->manifest().size() == specs->size(), "FromParts changed the manifest");

  // The round trip a state makes through the wire and back.
  auto again = ManifestFromProto(ManifestToProto(*state));
  FUZZ_CHECK(again.ok(), "re-serialized manifest does not validate: " + again.status().ToString());
  state->TotalElements();

  // Our own layout of the same tensors (what ChunkAssembler compares the sender's with).
  auto laid_out = ModelState::Create(*specs);
  if (!laid_out.ok()) return 0;  // e.g. alignment padding pushes it past 2^63
  FUZZ_CHECK(laid_out->SameLayout(*state), "Create() laid out different tensors");
  if (laid_out->size_bytes() > kMaxBufferBytes) return 0;

  // Δ = local − global on states of this layout, with arbitrary values (a site does this
  // with the coordinator's model; the coordinator checks layouts the same way).
  for (size_t t = 0; t < laid_out->num_tensors(); ++t) {
    std::memcpy(laid_out->TensorData(t), state->TensorData(t), laid_out->manifest()[t].nbytes);
  }
  ModelState other = laid_out->Clone();
  for (uint64_t i = 0; i < other.size_bytes(); ++i)
    other.data()[i] ^= static_cast<uint8_t>(0x5a + i);
  Status s = SubtractInPlace(&other, *laid_out);
  (void)s;  // float16/bfloat16 are refused by name; everything else must not crash
  return 0;
}
