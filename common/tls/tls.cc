#include "common/tls/tls.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <sstream>

#include "common/log.h"

namespace dermfed::tls {
namespace {

constexpr char kLog[] = "tls";
constexpr char kTrustDomain[] = "spiffe://dermfed/";
constexpr unsigned kRefreshSeconds = 10;  // how often key/cert/CA files are re-read

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct CrlDeleter {
  void operator()(X509_CRL* c) const { X509_CRL_free(c); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using CrlPtr = std::unique_ptr<X509_CRL, CrlDeleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

StatusOr<std::string> ReadFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(what + ": cannot read '" + path + "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

template <typename T, typename Reader>
StatusOr<T> ParsePem(const std::string& pem, const std::string& what, Reader read) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                &BIO_free);
  T parsed(read(bio.get()));
  if (!parsed) return InvalidArgumentError(what + ": not a PEM file of the expected kind");
  return parsed;
}

StatusOr<X509Ptr> ReadCert(const std::string& path, const std::string& what) {
  DF_ASSIGN_OR_RETURN(std::string pem, ReadFile(path, what));
  return ParsePem<X509Ptr>(pem, what + " '" + path + "'",
                           [](BIO* b) { return PEM_read_bio_X509(b, nullptr, nullptr, nullptr); });
}

std::string TimeText(const ASN1_TIME* t) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (!bio || ASN1_TIME_print(bio.get(), t) != 1) return "?";
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

// A certificate outside its validity period would only fail later, in every handshake, as
// a connection error the peer retries: refuse it at start-up, naming the file and the date.
Status CheckValidity(X509* cert, const std::string& what, const std::string& path) {
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
    return InvalidArgumentError(what + " '" + path + "' expired on " +
                                TimeText(X509_get0_notAfter(cert)));
  }
  if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
    return InvalidArgumentError(what + " '" + path + "' is not valid before " +
                                TimeText(X509_get0_notBefore(cert)));
  }
  return OkStatus();
}

// Refuses revoked client certificates (the RevocationList re-reads the CRL file).
class CrlVerifier : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit CrlVerifier(std::unique_ptr<RevocationList> crl) : crl_(std::move(crl)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>, grpc::Status* sync_status) override {
    const std::string pem(request->peer_cert().data(), request->peer_cert().size());
    auto cert = ParsePem<X509Ptr>(pem, "peer certificate", [](BIO* b) {
      return PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
    });
    if (!cert.ok()) {
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "no peer certificate");
      return true;
    }
    Status s = crl_->Check(cert->get());
    *sync_status = s.ok() ? grpc::Status::OK
                          : grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                                         std::string(s.message()));
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  std::unique_ptr<RevocationList> crl_;
};

std::shared_ptr<grpc::experimental::CertificateProviderInterface> Provider(const TlsFiles& f) {
  return std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(f.key, f.cert, f.ca,
                                                                             kRefreshSeconds);
}

}  // namespace

Status CheckFiles(const TlsFiles& f, const std::string& what) {
  if (f.ca.empty() || f.cert.empty() || f.key.empty()) {
    return InvalidArgumentError(what + ": TLS needs the CA certificate, this process's "
                                       "certificate and its key (or the explicit insecure flag)");
  }
  DF_ASSIGN_OR_RETURN(X509Ptr ca, ReadCert(f.ca, what + " CA certificate"));
  DF_ASSIGN_OR_RETURN(X509Ptr cert, ReadCert(f.cert, what + " certificate"));
  DF_RETURN_IF_ERROR(CheckValidity(ca.get(), what + " CA certificate", f.ca));
  DF_RETURN_IF_ERROR(CheckValidity(cert.get(), what + " certificate", f.cert));
  DF_ASSIGN_OR_RETURN(std::string key_pem, ReadFile(f.key, what + " key"));
  DF_ASSIGN_OR_RETURN(PkeyPtr key, ParsePem<PkeyPtr>(key_pem, what + " key '" + f.key + "'", [](BIO* b) {
                        return PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr);
                      }));
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return InvalidArgumentError(what + ": the key '" + f.key + "' does not belong to the certificate '" +
                                f.cert + "'");
  }
  PkeyPtr ca_key(X509_get_pubkey(ca.get()));
  if (!ca_key || X509_verify(cert.get(), ca_key.get()) != 1) {
    return InvalidArgumentError(what + ": the certificate '" + f.cert +
                                "' is not signed by the CA '" + f.ca + "'");
  }
  return OkStatus();
}

StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(const TlsFiles& f) {
  DF_RETURN_IF_ERROR(CheckFiles(f, "server TLS"));
  // Everything that can fail comes before the options: gRPC 1.51's TlsCredentialsOptions
  // frees its C options only when they become credentials, so an early return leaked them
  // (found by LeakSanitizer on a garbage tls.crl).
  std::unique_ptr<RevocationList> crl;
  if (!f.crl.empty()) {
    DF_ASSIGN_OR_RETURN(crl, RevocationList::Open(f.crl, f.ca));
  }
  grpc::experimental::TlsServerCredentialsOptions options(Provider(f));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (crl != nullptr) {
    options.set_certificate_verifier(
        grpc::experimental::ExternalCertificateVerifier::Create<CrlVerifier>(std::move(crl)));
  } else {
    LogWarning(kLog, "no revocation list (tls.crl): revoked certificates are not refused");
  }
  auto creds = grpc::experimental::TlsServerCredentials(options);
  if (!creds) return InternalError("cannot create the server's TLS credentials");
  return creds;
}

StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(const TlsFiles& f) {
  DF_RETURN_IF_ERROR(CheckFiles(f, "client TLS"));
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(Provider(f));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  auto creds = grpc::experimental::TlsCredentials(options);
  if (!creds) return InternalError("cannot create TLS channel credentials");
  return creds;
}

StatusOr<Peer> ParseSpiffeId(const std::string& uri) {
  const std::string prefix = kTrustDomain;
  if (uri.compare(0, prefix.size(), prefix) != 0) {
    return PermissionDeniedError("certificate identity '" + uri + "' is not in the dermfed trust domain");
  }
  const std::string rest = uri.substr(prefix.size());
  const auto slash = rest.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= rest.size() ||
      rest.find('/', slash + 1) != std::string::npos) {
    return PermissionDeniedError("certificate identity '" + uri + "' is not spiffe://dermfed/<role>/<name>");
  }
  return Peer{rest.substr(0, slash), rest.substr(slash + 1)};
}

StatusOr<Peer> PeerOf(const grpc::ServerContext& ctx) {
  auto auth = ctx.auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) {
    return UnauthenticatedError("the caller presented no verified certificate");
  }
  for (const char* property : {GRPC_PEER_SPIFFE_ID_PROPERTY_NAME, GRPC_PEER_URI_PROPERTY_NAME}) {
    for (const auto& v : auth->FindPropertyValues(property)) {
      std::string uri(v.data(), v.size());
      if (uri.rfind(kTrustDomain, 0) == 0) return ParseSpiffeId(uri);
    }
  }
  return PermissionDeniedError("the caller's certificate has no spiffe://dermfed/<role>/<name> URI");
}

StatusOr<Peer> PeerOfCertificate(X509* cert) {
  if (cert == nullptr) return UnauthenticatedError("the caller presented no certificate");
  using Names = std::unique_ptr<GENERAL_NAMES, void (*)(GENERAL_NAMES*)>;
  Names names(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)),
              GENERAL_NAMES_free);
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names.get(), i);
    if (n->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = n->d.uniformResourceIdentifier;
    std::string value(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                      static_cast<size_t>(ASN1_STRING_length(uri)));
    if (value.rfind(kTrustDomain, 0) == 0) return ParseSpiffeId(value);
  }
  return PermissionDeniedError("the caller's certificate has no spiffe://dermfed/<role>/<name> URI");
}

StatusOr<std::unique_ptr<RevocationList>> RevocationList::Open(const std::string& crl_path,
                                                               const std::string& ca_path) {
  DF_ASSIGN_OR_RETURN(X509Ptr ca, ReadCert(ca_path, "tls.ca"));
  EVP_PKEY* key = X509_get_pubkey(ca.get());
  if (key == nullptr) return InvalidArgumentError("tls.ca '" + ca_path + "': no public key");
  std::unique_ptr<RevocationList> list(new RevocationList(crl_path, key));
  std::lock_guard<std::mutex> lock(list->mu_);
  DF_RETURN_IF_ERROR(list->Reload());
  return list;
}

RevocationList::RevocationList(std::string crl_path, EVP_PKEY* ca_key)
    : crl_path_(std::move(crl_path)), ca_key_(ca_key) {}

RevocationList::~RevocationList() {
  X509_CRL_free(crl_);
  EVP_PKEY_free(ca_key_);
}

Status RevocationList::Check(X509* cert) {
  std::lock_guard<std::mutex> lock(mu_);
  Status loaded = Reload();
  if (!loaded.ok()) {
    // Fail closed: without a valid CRL nobody is let in.
    LogError(kLog, "refusing a connection: %s", loaded.message());
    return UnavailableError("revocation list unavailable");
  }
  X509_REVOKED* revoked = nullptr;
  if (X509_CRL_get0_by_serial(crl_, &revoked, X509_get_serialNumber(cert)) == 1) {
    char subject[256];
    X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
    LogWarning(kLog, "refused a revoked certificate: %s", subject);
    return UnauthenticatedError(std::string("certificate revoked: ") + subject);
  }
  return OkStatus();
}

Status RevocationList::Reload() {
  struct stat st {};
  if (stat(crl_path_.c_str(), &st) != 0) {
    return NotFoundError("tls.crl: cannot read '" + crl_path_ + "'");
  }
  if (crl_ && st.st_mtim.tv_sec == mtime_.tv_sec && st.st_mtim.tv_nsec == mtime_.tv_nsec &&
      st.st_size == size_) {
    return OkStatus();
  }
  DF_ASSIGN_OR_RETURN(std::string pem, ReadFile(crl_path_, "tls.crl"));
  DF_ASSIGN_OR_RETURN(CrlPtr crl, ParsePem<CrlPtr>(pem, "tls.crl '" + crl_path_ + "'", [](BIO* b) {
                        return PEM_read_bio_X509_CRL(b, nullptr, nullptr, nullptr);
                      }));
  if (X509_CRL_verify(crl.get(), ca_key_) != 1) {
    return PermissionDeniedError("tls.crl '" + crl_path_ + "' is not signed by the consortium CA");
  }
  const bool first = crl_ == nullptr;
  X509_CRL_free(crl_);
  crl_ = crl.release();
  mtime_ = st.st_mtim;
  size_ = st.st_size;
  LogInfo(kLog, "%s revocation list %s (%d revoked)", first ? "loaded" : "reloaded", crl_path_,
          std::max(0, sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl_))));  // NULL when none
  return OkStatus();
}

}  // namespace dermfed::tls
