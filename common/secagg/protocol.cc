#include "common/secagg/protocol.h"

#include "absl/strings/str_cat.h"
#include "common/secagg/derivation.h"

namespace dermfed::secagg {

std::string RoundContext(absl::string_view federation, uint64_t round,
                         absl::string_view model_version) {
  return internal::Binding("round-context", {federation, absl::StrCat(round), model_version});
}

}  // namespace dermfed::secagg
