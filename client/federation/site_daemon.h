// dermfed-site's engine: joins the federation, then loops on the coordinator's tasks —
// train the global model on local data with this site's own class counts and upload
// Δ = local − global; evaluate the global model on local validation data and report a
// confusion matrix — until the federation is done. Only weights and aggregate metrics leave
// the site; images, metadata and class counts never do. Reconnects with backoff; a
// restarted site (or coordinator) picks up the current round.
//
// Not thread-safe: Run() is the daemon's main loop.
#ifndef DERMFED_CLIENT_FEDERATION_SITE_DAEMON_H_
#define DERMFED_CLIENT_FEDERATION_SITE_DAEMON_H_

#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "client/federation/site_config.h"
#include "common/status.h"

namespace dermfed::client {

// Runs until the federation is DONE (OK), `stop` becomes true, or an unrecoverable error
// (bad local data, a model the coordinator refuses).
Status RunSiteDaemon(const SiteConfig& config, const std::atomic<bool>& stop);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_FEDERATION_SITE_DAEMON_H_
