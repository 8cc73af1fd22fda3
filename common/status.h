// Status and StatusOr for the whole tree, with the two macros every fallible call chain
// uses. Everything fallible returns one of these; LibTorch exceptions are converted at
// module boundaries (see TorchCall below) so none escapes a thread or a handler.
//
// Thread-safe: these are values.
#ifndef DERMFED_COMMON_STATUS_H_
#define DERMFED_COMMON_STATUS_H_

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dermfed {

using Status = absl::Status;
template <typename T>
using StatusOr = absl::StatusOr<T>;

using absl::FailedPreconditionError;
using absl::InternalError;
using absl::InvalidArgumentError;
using absl::NotFoundError;
using absl::OkStatus;
using absl::OutOfRangeError;
using absl::UnimplementedError;
using absl::AlreadyExistsError;
using absl::CancelledError;
using absl::DataLossError;
using absl::DeadlineExceededError;
using absl::PermissionDeniedError;
using absl::UnavailableError;
using absl::UnauthenticatedError;

// Returns `status` with `context + ": "` prepended to its message; OK stays OK.
inline Status Annotate(const Status& status, const std::string& context) {
  if (status.ok()) return status;
  return Status(status.code(), context + ": " + std::string(status.message()));
}

}  // namespace dermfed

#define DF_STATUS_CONCAT_INNER_(a, b) a##b
#define DF_STATUS_CONCAT_(a, b) DF_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (a Status) is not OK.
#define DF_RETURN_IF_ERROR(expr)                    \
  do {                                              \
    ::dermfed::Status df_status_ = (expr);          \
    if (!df_status_.ok()) return df_status_;        \
  } while (0)

// `lhs = value of expr` where expr is a StatusOr; returns its status if not OK.
#define DF_ASSIGN_OR_RETURN(lhs, expr) \
  DF_ASSIGN_OR_RETURN_IMPL_(DF_STATUS_CONCAT_(df_statusor_, __LINE__), lhs, expr)
#define DF_ASSIGN_OR_RETURN_IMPL_(var, lhs, expr) \
  auto var = (expr);                              \
  if (!var.ok()) return std::move(var).status();  \
  lhs = std::move(var).value()

#endif  // DERMFED_COMMON_STATUS_H_
