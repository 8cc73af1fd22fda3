// Feeds the bytes to every secure-aggregation message parser (common/secagg/messages.h) and
// to the sealed share plaintext decoder: what a site or the coordinator receives in
// Task.secagg / SubmitSecAgg, and what a peer seals for a site. A parse may fail; a parse
// that succeeds must serialize back to exactly the same bytes (the encoding is canonical:
// fixed fields, exact lengths, no trailing bytes).
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "common/secagg/derivation.h"
#include "common/secagg/messages.h"
#include "tests/fuzz/fuzz_util.h"

namespace dermfed::secagg {
namespace {

template <typename Message>
void RoundTrip(absl::string_view bytes, const char* name) {
  StatusOr<Message> parsed = Message::Parse(bytes);
  if (parsed.ok()) dermfed::fuzz::Trace(name, parsed.status());
  if (!parsed.ok()) {
    FUZZ_CHECK(!parsed.status().message().empty(), std::string(name) + ": error without a message");
    return;
  }
  const std::string again = parsed->Serialize();
  FUZZ_CHECK(again == bytes, std::string(name) + " did not serialize back to the bytes it parsed");
}

}  // namespace
}  // namespace dermfed::secagg

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dermfed::secagg;
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  RoundTrip<Advertisement>(bytes, "Advertisement");
  RoundTrip<AdvertisementList>(bytes, "AdvertisementList");
  RoundTrip<EncryptedShare>(bytes, "EncryptedShare");
  RoundTrip<ShareBundle>(bytes, "ShareBundle");
  RoundTrip<MaskingRequest>(bytes, "MaskingRequest");
  RoundTrip<UnmaskRequest>(bytes, "UnmaskRequest");
  RoundTrip<UnmaskResponse>(bytes, "UnmaskResponse");

  auto share = internal::DecodeSharePlaintext(dermfed::crypto::ByteSpan(data, size));
  if (share.ok()) {
    const dermfed::crypto::SecretBytes again = internal::EncodeSharePlaintext(*share);
    FUZZ_CHECK(
        absl::string_view(reinterpret_cast<const char*>(again.data()), again.size()) == bytes,
        "share plaintext did not encode back to the bytes it decoded");
  }
  return 0;
}
