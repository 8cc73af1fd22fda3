// Bytes through the restricted unpickler (common/model/pickle_reader.h) that reads the
// pickles inside torch.save files (an operator's model.init_checkpoint, a downloaded
// ImageNet checkpoint): pickles one after another, as the legacy format has them, with tight
// PickleLimits when the first byte is odd so the limit paths are reached by small inputs.
// Every value read is walked, and every tensor reference must fit its storage.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/model/pickle_reader.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using dermfed::model::PickleValue;

void Walk(const PickleValue& v, int depth) {
  v.TypeName();
  if (depth > 64) return;  // shared substructures can make the graph deep; the reader bounds it
  switch (v.kind()) {
    case PickleValue::Kind::kString:
    case PickleValue::Kind::kBytes:
    case PickleValue::Kind::kBigInt:
      dermfed::model::EscapeForMessage(v.AsString());
      break;
    case PickleValue::Kind::kTuple:
    case PickleValue::Kind::kList:
      for (const PickleValue& item : v.AsItems()) Walk(item, depth + 1);
      break;
    case PickleValue::Kind::kDict:
      v.IsOrderedDict();
      for (const auto& [key, value] : v.AsEntries()) {
        Walk(key, depth + 1);
        Walk(value, depth + 1);
      }
      break;
    case PickleValue::Kind::kTensor: {
      const auto& ref = v.AsTensor();
      auto spanned = dermfed::model::ElementsSpanned(ref);
      FUZZ_CHECK(spanned.ok(), "the reader made a tensor ref that does not fit its storage: " +
                                   spanned.status().ToString());
      FUZZ_CHECK(*spanned <= ref.storage.view_numel, "tensor ref reaches past its storage view");
      break;
    }
    case PickleValue::Kind::kStorage:
      v.AsStorage();
      break;
    default:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dermfed::model;
  PickleLimits limits;
  if (size > 0 && (data[0] & 1)) {
    limits.max_stack = 64;
    limits.max_marks = 8;
    limits.max_memo = 32;
    limits.max_items = 256;
    limits.max_rank = 4;
    limits.max_global_name = 32;
  }
  PickleReader reader(std::string_view(reinterpret_cast<const char*>(data), size), limits);
  for (int i = 0; i < 8 && reader.position() < size; ++i) {
    const size_t before = reader.position();
    auto value = reader.ReadNext();
    dermfed::fuzz::Trace("pickle " + std::to_string(i), value.status());
    if (!value.ok()) break;
    FUZZ_CHECK(reader.position() > before && reader.position() <= size, "position did not advance");
    Walk(*value, 0);
  }
  for (const TorchStorageDecl& s : reader.storages()) FUZZ_CHECK(s.numel >= 0, "negative numel");
  return 0;
}
