#include "coordinator/http_server.h"

#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/log.h"
#include "coordinator/api_json.h"
#include "coordinator/dashboard_assets.h"
#include "coordinator/monitor_service.h"

namespace dermfed::coordinator {
namespace {

constexpr char kLog[] = "dashboard";
constexpr char kCookie[] = "dermfed_token";
constexpr int64_t kMaxEventWaitMs = 25000;
constexpr size_t kMinTokenLength = 16;

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void SendJson(httplib::Response& res, const nlohmann::json& body, int status = 200) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(body.dump(), "application/json");
}

void SendError(httplib::Response& res, int status, const std::string& message) {
  SendJson(res, {{"error", message}}, status);
}

int HttpStatusOf(const Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kInvalidArgument: return 400;
    case absl::StatusCode::kUnavailable: return 503;
    default: return 500;
  }
}

// Equal tokens, compared in time independent of where they differ.
bool SameToken(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// The value of cookie `name` in a Cookie header ("a=1; b=2"), or "".
std::string CookieValue(const std::string& header, const std::string& name) {
  std::istringstream in(header);
  std::string part;
  while (std::getline(in, part, ';')) {
    const size_t start = part.find_first_not_of(' ');
    if (start == std::string::npos) continue;
    part = part.substr(start);
    if (part.compare(0, name.size() + 1, name + "=") == 0) return part.substr(name.size() + 1);
  }
  return "";
}

StatusOr<std::string> ReadToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("http.token_file: cannot read '" + path + "'");
  std::string token;
  std::getline(in, token);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (token.size() < kMinTokenLength) {
    return InvalidArgumentError("http.token_file '" + path + "': the token must be at least " +
                                std::to_string(kMinTokenLength) +
                                " characters (e.g. openssl rand -hex 32)");
  }
  for (char c : token) {
    if (!std::isgraph(static_cast<unsigned char>(c)) || c == ';' || c == ',') {
      return InvalidArgumentError("http.token_file '" + path +
                                  "': the token may hold only printable characters other than ';' and ','");
    }
  }
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && (st.st_mode & S_IROTH)) {
    LogWarning(kLog, "http.token_file '%s' is readable by every user: chmod 600 it", path);
  }
  return token;
}

// host:port -> (host, port); port 0 = any free port.
StatusOr<std::pair<std::string, int>> SplitListen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return InvalidArgumentError("http.listen '" + listen + "' is not HOST:PORT");
  }
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = -1;
  try {
    size_t used = 0;
    port = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1) port = -1;
  } catch (...) {
    port = -1;
  }
  if (port < 0 || port > 65535) return InvalidArgumentError("http.listen '" + listen + "': bad port");
  return std::make_pair(host, port);
}

void SecurityHeaders(httplib::Response& res) {
  res.set_header("Content-Security-Policy",
                 "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Referrer-Policy", "no-referrer");
}

}  // namespace

HttpServer::HttpServer(const CoordinatorConfig& config, RoundEngine* engine, Store* store)
    : config_(config), engine_(engine), store_(store) {}

HttpServer::~HttpServer() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const CoordinatorConfig& config,
                                                        RoundEngine* engine, Store* store) {
  std::unique_ptr<HttpServer> s(new HttpServer(config, engine, store));
  if (!config.http_token_file.empty()) {
    DF_ASSIGN_OR_RETURN(s->token_, ReadToken(config.http_token_file));
  }
  DF_RETURN_IF_ERROR(s->Listen());
  return s;
}

Status HttpServer::Listen() {
  DF_ASSIGN_OR_RETURN(auto where, SplitListen(config_.http_listen));
  if (config_.insecure) {
    LogWarning(kLog, "server.insecure is on: the dashboard on %s is plain HTTP and open to "
               "anyone who can reach it", config_.http_listen);
    server_ = std::make_unique<httplib::Server>();
  } else {
    DF_RETURN_IF_ERROR(tls::CheckFiles(config_.tls, "http (tls.*)"));
    if (!config_.tls.crl.empty()) {
      DF_ASSIGN_OR_RETURN(crl_, tls::RevocationList::Open(config_.tls.crl, config_.tls.ca));
    }
    const tls::TlsFiles files = config_.tls;
    const bool require_cert = token_.empty();
    auto ssl = std::make_unique<httplib::SSLServer>([files, require_cert](SSL_CTX& ctx) {
      // TLS 1.3 only: browsers, curl and Prometheus all speak it.
      // A session id context lets browsers resume TLS sessions (without it OpenSSL aborts a
      // resumption when client certificates are verified); the CRL and role are still
      // checked on every request.
      static const unsigned char kSessionContext[] = "dermfed-http";
      return SSL_CTX_set_min_proto_version(&ctx, TLS1_3_VERSION) == 1 &&
             SSL_CTX_set_session_id_context(&ctx, kSessionContext, sizeof(kSessionContext) - 1) == 1 &&
             SSL_CTX_use_certificate_chain_file(&ctx, files.cert.c_str()) == 1 &&
             SSL_CTX_use_PrivateKey_file(&ctx, files.key.c_str(), SSL_FILETYPE_PEM) == 1 &&
             SSL_CTX_check_private_key(&ctx) == 1 &&
             SSL_CTX_load_verify_locations(&ctx, files.ca.c_str(), nullptr) == 1 &&
             (SSL_CTX_set_client_CA_list(&ctx, SSL_load_client_CA_file(files.ca.c_str())), true) &&
             (SSL_CTX_set_verify(&ctx,
                                 SSL_VERIFY_PEER |
                                     (require_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                                 nullptr),
              true);
    });
    if (!ssl->is_valid()) {
      return InvalidArgumentError("http: cannot set up TLS from tls.cert '" + files.cert +
                                  "', tls.key and tls.ca '" + files.ca + "'");
    }
    server_ = std::move(ssl);
  }
  server_->set_read_timeout(std::chrono::seconds(30));
  server_->set_write_timeout(std::chrono::seconds(30));
  server_->set_payload_max_length(64 << 10);  // GET only: no bodies worth reading
  Routes();
  port_ = where.second == 0 ? server_->bind_to_any_port(where.first)
                            : (server_->bind_to_port(where.first, where.second) ? where.second : -1);
  if (port_ <= 0) return UnavailableError("http: cannot listen on " + config_.http_listen);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  if (!config_.http_port_file.empty()) {
    const std::string tmp = config_.http_port_file + ".tmp";
    std::ofstream(tmp) << port_ << "\n";
    std::filesystem::rename(tmp, config_.http_port_file);
  }
  LogInfo(kLog, "dashboard on %s://%s:%d/ (%s)", config_.insecure ? "http" : "https", where.first,
          port_,
          config_.insecure ? "no authentication"
                           : (token_.empty() ? "researcher or admin certificates"
                                             : "researcher or admin certificates, or the token"));
  return OkStatus();
}

StatusOr<std::string> HttpServer::Authorize(const httplib::Request& req) {
  if (config_.insecure) return std::string("operator");
  X509* cert = req.ssl ? SSL_get0_peer_certificate(req.ssl) : nullptr;
  if (cert != nullptr) {
    // The handshake verified the chain; a presented certificate decides (no token fallback).
    if (SSL_get_verify_result(req.ssl) != X509_V_OK) {
      return UnauthenticatedError("the client certificate did not verify");
    }
    if (crl_) DF_RETURN_IF_ERROR(crl_->Check(cert));
    DF_ASSIGN_OR_RETURN(tls::Peer peer, tls::PeerOfCertificate(cert));
    DF_RETURN_IF_ERROR(CheckMonitorAccess(*engine_, peer, /*needs_admin=*/false));
    return peer.role + ":" + peer.name;
  }
  if (!token_.empty()) {
    std::string offered;
    const std::string auth = req.get_header_value("Authorization");
    if (auth.rfind("Bearer ", 0) == 0) offered = auth.substr(7);
    if (offered.empty()) offered = CookieValue(req.get_header_value("Cookie"), kCookie);
    if (!offered.empty()) {
      if (SameToken(offered, token_)) return std::string("token");
      LogWarning(kLog, "refused a wrong token from %s", req.remote_addr);
      return UnauthenticatedError("wrong token");
    }
  }
  return UnauthenticatedError(token_.empty()
                                  ? "needs a researcher or admin client certificate"
                                  : "needs a researcher or admin client certificate, or the token");
}

template <typename Handler>
void HttpServer::Guarded(const httplib::Request& req, httplib::Response& res, Handler handler) {
  auto who = Authorize(req);
  if (!who.ok()) {
    if (who.status().code() == absl::StatusCode::kUnauthenticated) {
      res.set_header("WWW-Authenticate", "Bearer realm=\"dermfed\"");
    }
    SendError(res, HttpStatusOf(who.status()), std::string(who.status().message()));
    return;
  }
  Status s = handler(*who);
  if (!s.ok()) SendError(res, HttpStatusOf(s), std::string(s.message()));
}

void HttpServer::Routes() {
  httplib::Server& srv = *server_;
  srv.set_post_routing_handler([](const httplib::Request&, httplib::Response& res) {
    SecurityHeaders(res);
  });
  for (const EmbeddedFile& f : DashboardAssets()) {
    const std::string type = std::string(f.content_type) + "; charset=utf-8";
    srv.Get(f.url, [f, type](const httplib::Request&, httplib::Response& res) {
      res.set_header("Cache-Control", "no-cache");
      res.set_content(reinterpret_cast<const char*>(f.data), f.size, type.c_str());
    });
  }
  srv.Get("/login", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string offered = req.get_param_value("token");
    if (token_.empty() || offered.empty() || !SameToken(offered, token_)) {
      LogWarning(kLog, "refused a login from %s", req.remote_addr);
      SendError(res, 401, token_.empty() ? "this dashboard takes certificates only"
                                         : "wrong or missing token");
      return;
    }
    res.set_header("Set-Cookie", std::string(kCookie) + "=" + token_ +
                                     "; Path=/; HttpOnly; Secure; SameSite=Strict");
    res.set_redirect("/", 303);
  });
  srv.Get("/api/v1/status", [this](const httplib::Request& req, httplib::Response& res) {
    Guarded(req, res, [&](const std::string& who) -> Status {
      DF_ASSIGN_OR_RETURN(v1::FederationStatus status, FederationStatusView(*engine_, *store_));
      SendJson(res, StatusJson(status, config_, who, NowUnixMs()));
      return OkStatus();
    });
  });
  srv.Get("/api/v1/rounds", [this](const httplib::Request& req, httplib::Response& res) {
    Guarded(req, res, [&](const std::string&) -> Status {
      DF_ASSIGN_OR_RETURN(v1::ListRoundsResponse rounds, RoundsView(*store_));
      const v1::FederationStatus snap = engine_->Snapshot();
      SendJson(res, RoundsJson(rounds, {snap.spec().class_names().begin(),
                                        snap.spec().class_names().end()}));
      return OkStatus();
    });
  });
  srv.Get("/api/v1/sites", [this](const httplib::Request& req, httplib::Response& res) {
    Guarded(req, res, [&](const std::string&) -> Status {
      SendJson(res, SitesJson(engine_->Sites()));
      return OkStatus();
    });
  });
  srv.Get("/api/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
    Guarded(req, res, [&](const std::string&) -> Status {
      DF_ASSIGN_OR_RETURN(v1::ListRoundsResponse rounds, RoundsView(*store_));
      SendJson(res, ModelsJson(rounds, [&](int64_t v) { return store_->HasCheckpoint(v); }));
      return OkStatus();
    });
  });
  srv.Get("/api/v1/events", [this](const httplib::Request& req, httplib::Response& res) {
    Guarded(req, res, [&](const std::string&) -> Status {
      int64_t after = 0, wait_ms = 0;
      try {
        if (req.has_param("after")) after = std::stoll(req.get_param_value("after"));
        if (req.has_param("wait_ms")) wait_ms = std::stoll(req.get_param_value("wait_ms"));
      } catch (...) {
        return InvalidArgumentError("after and wait_ms must be integers");
      }
      if (after < 0 || wait_ms < 0) return InvalidArgumentError("after and wait_ms must be >= 0");
      EventLog& log = engine_->events();
      auto events = log.After(after, std::chrono::milliseconds(std::min(wait_ms, kMaxEventWaitMs)));
      // After a coordinator restart the numbering starts again: hand back where it is.
      const int64_t last = events.empty() ? std::min(after, log.last_seq()) : events.back().seq();
      SendJson(res, EventsJson(events, last, log.closed()));
      return OkStatus();
    });
  });
  srv.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
    Guarded(req, res, [&](const std::string&) -> Status {
      res.set_content(engine_->metrics().Render(engine_->Snapshot(), engine_->Sites()),
                      "text/plain; version=0.0.4; charset=utf-8");
      return OkStatus();
    });
  });
}

}  // namespace dermfed::coordinator
