#include "client/cli/coordinator_flags.h"

#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <memory>

#include "client/federation/federation_spec.h"
#include "common/digest.h"

namespace dermfed::client {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace

CLI::Option* AddCoordinatorFlags(CLI::App* cmd, CoordinatorFlags& f, bool required) {
  f.coordinator = Env("DERMFED_COORDINATOR");
  f.tls.ca = Env("DERMFED_CA");
  f.tls.cert = Env("DERMFED_CERT");
  f.tls.key = Env("DERMFED_KEY");
  auto* opt = cmd->add_option("--coordinator", f.coordinator,
                              "coordinator address HOST:PORT (default: $DERMFED_COORDINATOR)");
  if (required && f.coordinator.empty()) opt->required();
  cmd->add_option("--ca", f.tls.ca, "consortium CA certificate (default: $DERMFED_CA)");
  cmd->add_option("--cert", f.tls.cert,
                  "your researcher or admin certificate (default: $DERMFED_CERT)");
  cmd->add_option("--key", f.tls.key, "its private key (default: $DERMFED_KEY)");
  cmd->add_flag("--insecure", f.insecure,
                "plaintext, no certificates (only for a coordinator run with server.insecure)");
  return opt;
}

StatusOr<MonitorClient> ConnectToCoordinator(const CoordinatorFlags& f) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(8 << 20);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!f.insecure) {
    if (f.tls.ca.empty() || f.tls.cert.empty() || f.tls.key.empty()) {
      return InvalidArgumentError(
          "give --ca, --cert and --key (or $DERMFED_CA, $DERMFED_CERT, $DERMFED_KEY), or "
          "--insecure for a coordinator without TLS");
    }
    DF_ASSIGN_OR_RETURN(credentials, tls::ChannelCredentials(f.tls));
  }
  return MonitorClient(grpc::CreateCustomChannel(f.coordinator, credentials, args));
}

CLI::Option* AddDownloadFlags(CLI::App* cmd, DownloadFlags& f) {
  auto* version = cmd->add_option("--version", f.version, "model version (-1 = the latest)")
                      ->capture_default_str();
  cmd->add_option("--max-gb", f.max_gb, "refuse models larger than this")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  return version;
}

StatusOr<DownloadedModel> DownloadRun(MonitorClient& client, const DownloadFlags& flags,
                                      const std::string& dir) {
  DF_ASSIGN_OR_RETURN(v1::FederationStatus st, client.GetStatus());
  v1::ModelHeader header;
  DF_ASSIGN_OR_RETURN(
      ModelState state,
      client.Download(flags.version, static_cast<uint64_t>(flags.max_gb * (1ull << 30)), &header));
  DF_RETURN_IF_ERROR(SaveRunFromState(dir, st.spec(), state));
  DownloadedModel out;
  out.model_version = header.model_version();
  out.sha256_hex =
      HexDigest(reinterpret_cast<const uint8_t*>(header.sha256().data()), header.sha256().size());
  out.bytes = state.size_bytes();
  return out;
}

}  // namespace dermfed::client
