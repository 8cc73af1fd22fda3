// Checks on an update's values before it is folded: every float is finite, and (when a bound
// is configured) the update's L2 norm is within it. The layout (dtype, shape, total size)
// was already checked against the manifest while the chunks were reassembled.
#ifndef DERMFED_COORDINATOR_UPDATE_CHECK_H_
#define DERMFED_COORDINATOR_UPDATE_CHECK_H_

#include <string>

#include "common/model_state.h"
#include "common/status.h"

namespace dermfed::coordinator {

// INVALID_ARGUMENT naming `what` and the first offending tensor. max_norm <= 0: no bound.
Status CheckUpdateValues(const ModelState& delta, double max_norm, const std::string& what);

}  // namespace dermfed::coordinator

#endif  // DERMFED_COORDINATOR_UPDATE_CHECK_H_
