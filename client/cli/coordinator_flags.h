// What every command that talks to a running coordinator shares: the --coordinator address
// and certificate flags (each defaulting to an environment variable), the connection they
// make, and downloading a global model into a RUN folder (`dermfed download`, and
// `dermfed export --coordinator`).
//
// Thread-compatible.
#ifndef DERMFED_CLIENT_CLI_COORDINATOR_FLAGS_H_
#define DERMFED_CLIENT_CLI_COORDINATOR_FLAGS_H_

#include <CLI/App.hpp>
#include <cstdint>
#include <string>

#include "client/federation/monitor_client.h"
#include "common/status.h"
#include "common/tls/tls.h"

namespace dermfed::client {

struct CoordinatorFlags {
  std::string coordinator;  // HOST:PORT
  tls::TlsFiles tls;
  bool insecure = false;
};

// Adds --coordinator (default $DERMFED_COORDINATOR), --ca, --cert, --key (defaults
// $DERMFED_CA, $DERMFED_CERT, $DERMFED_KEY) and --insecure to `cmd`. With `required`,
// --coordinator must be given when $DERMFED_COORDINATOR is unset. Returns --coordinator.
CLI::Option* AddCoordinatorFlags(CLI::App* cmd, CoordinatorFlags& flags, bool required = true);

// A MonitorService client for `flags`: mutual TLS with the given certificate files, or
// plaintext with --insecure. Fails naming the missing flags.
StatusOr<MonitorClient> ConnectToCoordinator(const CoordinatorFlags& flags);

// Which global model to download, and how large a model to accept.
struct DownloadFlags {
  int64_t version = -1;  // -1 = the latest
  double max_gb = 8.0;
};

// Adds --version and --max-gb to `cmd`. Returns --version.
CLI::Option* AddDownloadFlags(CLI::App* cmd, DownloadFlags& flags);

struct DownloadedModel {
  int64_t model_version = 0;
  std::string sha256_hex;  // of the model's tensor buffer, as `dermfed rounds` shows it
  uint64_t bytes = 0;
};

// Downloads the global model `flags` name and writes it, with the federation's model
// options, classes and schema, as RUN folder `dir`.
StatusOr<DownloadedModel> DownloadRun(MonitorClient& client, const DownloadFlags& flags,
                                      const std::string& dir);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_CLI_COORDINATOR_FLAGS_H_
