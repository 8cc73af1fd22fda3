// Converts LibTorch exceptions into Status at a module boundary:
//   DF_ASSIGN_OR_RETURN(auto y, TorchCall("vgg13 forward", [&] { return net->forward(x); }));
// Thread-safe.
#ifndef DERMFED_COMMON_MODEL_TORCH_CALL_H_
#define DERMFED_COMMON_MODEL_TORCH_CALL_H_

#include <c10/util/Exception.h>

#include <exception>
#include <string>
#include <type_traits>

#include "common/status.h"

namespace dermfed::model {

// First line of a c10::Error message (the rest is a C++ backtrace nobody wants to read).
inline std::string BriefTorchMessage(const std::exception& e) {
  const auto* c10 = dynamic_cast<const c10::Error*>(&e);
  std::string msg = c10 ? c10->what_without_backtrace() : e.what();
  auto nl = msg.find('\n');
  return nl == std::string::npos ? msg : msg.substr(0, nl);
}

// Runs fn; a thrown exception becomes an InternalError/InvalidArgument naming `what`.
template <typename Fn>
auto TorchCall(const std::string& what, Fn&& fn)
    -> std::conditional_t<std::is_void_v<std::invoke_result_t<Fn>>, Status,
                          StatusOr<std::invoke_result_t<Fn>>> {
  try {
    if constexpr (std::is_void_v<std::invoke_result_t<Fn>>) {
      fn();
      return OkStatus();
    } else {
      return fn();
    }
  } catch (const std::exception& e) {
    return InvalidArgumentError(what + ": " + BriefTorchMessage(e));
  }
}

}  // namespace dermfed::model

#endif  // DERMFED_COMMON_MODEL_TORCH_CALL_H_
