// The coordinator's HTTPS face for people and tools: the live dashboard (/), its JSON API
// (/api/v1/status, rounds, sites, events, models) and Prometheus metrics (/metrics).
//
// Access: a client certificate of the consortium with the researcher or admin role (checked
// against the revocation list on every request), or, when http.token_file is set, that
// bearer token (header "Authorization: Bearer T", or the cookie that GET /login?token=T sets,
// for a browser without a certificate or a reverse proxy). Site certificates are refused.
// Static files carry no data and are served to anyone who completes the TLS handshake.
// With server.insecure the server speaks plain HTTP and lets everyone read (tests, demos).
//
// Thread-safe: requests run on the server's thread pool; the engine and store are
// thread-safe.
#ifndef DERMFED_COORDINATOR_HTTP_SERVER_H_
#define DERMFED_COORDINATOR_HTTP_SERVER_H_

#include <memory>
#include <string>
#include <thread>

#include "common/status.h"
#include "common/tls/tls.h"
#include "coordinator/coordinator_config.h"
#include "coordinator/round_engine.h"
#include "coordinator/store.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace dermfed::coordinator {

class HttpServer {
 public:
  // Binds config.http_listen and starts serving; writes the port to config.http_port_file.
  static StatusOr<std::unique_ptr<HttpServer>> Start(const CoordinatorConfig& config,
                                                     RoundEngine* engine, Store* store);
  ~HttpServer();  // stops serving
  int port() const { return port_; }

 private:
  HttpServer(const CoordinatorConfig& config, RoundEngine* engine, Store* store);
  Status Listen();
  void Routes();
  // Who is asking ("researcher:name", "admin:name", "token", "operator"), or why not.
  StatusOr<std::string> Authorize(const httplib::Request& req);
  // Runs `handler` for an authorized caller; answers 401/403 as JSON otherwise.
  template <typename Handler>
  void Guarded(const httplib::Request& req, httplib::Response& res, Handler handler);

  const CoordinatorConfig config_;
  RoundEngine* const engine_;
  Store* const store_;
  std::string token_;  // empty = certificates only
  std::unique_ptr<tls::RevocationList> crl_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace dermfed::coordinator

#endif  // DERMFED_COORDINATOR_HTTP_SERVER_H_
