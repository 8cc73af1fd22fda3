// Mutual TLS for every gRPC endpoint, and who the peer is.
//
// Certificates come from the consortium PKI (certs/): each carries its role and name as the
// URI SAN spiffe://dermfed/<role>/<name>, roles coordinator, site, researcher, admin. The
// server requires and verifies a client certificate chained to the consortium CA; a
// certificate verifier then refuses revoked ones, reading the CA's CRL file again whenever
// it changes (so `certs/revoke.sh` takes effect without a restart). Key and certificate
// files are watched too, so a rotated certificate is picked up.
//
// Thread-safe.
#ifndef DERMFED_COMMON_TLS_TLS_H_
#define DERMFED_COMMON_TLS_TLS_H_

#include <grpcpp/grpcpp.h>
#include <openssl/types.h>
#include <sys/types.h>
#include <time.h>

#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"

namespace dermfed::tls {

struct TlsFiles {
  std::string ca;    // the consortium CA certificate (PEM)
  std::string cert;  // this process's certificate (PEM)
  std::string key;   // its private key (PEM)
  std::string crl;   // the CA's CRL (PEM); servers only; empty = no revocation check
};

// Checks that the files exist and parse (naming the file and the config key `what` on
// failure), and that cert matches key and chains to ca.
Status CheckFiles(const TlsFiles& files, const std::string& what);

StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(const TlsFiles& files);
StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(const TlsFiles& files);

// A peer's identity from its certificate's URI SAN spiffe://dermfed/<role>/<name>.
struct Peer {
  std::string role;
  std::string name;
};
// UNAUTHENTICATED when the connection has no verified certificate (plaintext or none).
StatusOr<Peer> PeerOf(const grpc::ServerContext& ctx);
// Parses "spiffe://dermfed/<role>/<name>".
StatusOr<Peer> ParseSpiffeId(const std::string& uri);
// The identity in a verified certificate's URI SAN (for servers outside gRPC, the dashboard).
StatusOr<Peer> PeerOfCertificate(X509* cert);

// The CA's revocation list (tls.crl), re-read whenever the file's mtime or size changes, so
// certs/revoke.sh takes effect without a restart. Fails closed: a missing file, or one not
// signed by the CA, refuses everyone. Used by the gRPC verifier and the HTTPS dashboard.
class RevocationList {
 public:
  // `ca_path`: the CA certificate whose key must have signed the list.
  static StatusOr<std::unique_ptr<RevocationList>> Open(const std::string& crl_path,
                                                        const std::string& ca_path);
  ~RevocationList();
  // OK when `cert` is not revoked; UNAUTHENTICATED when it is, UNAVAILABLE when the list
  // cannot be read.
  Status Check(X509* cert);

 private:
  RevocationList(std::string crl_path, EVP_PKEY* ca_key);
  Status Reload();  // with mu_ held

  const std::string crl_path_;
  EVP_PKEY* const ca_key_;
  std::mutex mu_;
  X509_CRL* crl_ = nullptr;
  timespec mtime_{};
  off_t size_ = 0;
};

}  // namespace dermfed::tls

#endif  // DERMFED_COMMON_TLS_TLS_H_
