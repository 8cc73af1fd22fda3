// tls_socket_bench: the ceiling for a model download over mutual TLS on this machine — a bare
// TLS 1.3 stream (OpenSSL, TLS_AES_256_GCM_SHA384, both sides authenticated with the
// consortium PKI as the coordinator and a site are) over a loopback TCP connection: one
// thread SSL_writes --bytes in 1 MiB writes, the main thread SSL_reads them into a reused
// 1 MiB buffer. No gRPC, HTTP/2, protobuf, reassembly or digest: what is left is the kernel's
// copies and AES-256-GCM at both ends, which any TLS download pays.
//
// Prints one JSON object on stdout: {"bytes": B, "seconds": S, "mb_s": X} (MB = 10^6 bytes).
// A benchmark, not a test; tests/bench/federation_bench.sh runs it next to the real download.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

int Fail(const std::string& what) {
  std::fprintf(stderr, "tls_socket_bench: %s\n", what.c_str());
  ERR_print_errors_fp(stderr);
  return 1;
}

// A context for one side: its certificate and key, the CA, peer verification required.
SSL_CTX* MakeContext(bool server, const std::string& pki, const std::string& leaf) {
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == nullptr) return nullptr;
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  if (SSL_CTX_set_ciphersuites(ctx, "TLS_AES_256_GCM_SHA384") != 1 ||
      SSL_CTX_use_certificate_chain_file(ctx, (pki + "/" + leaf + ".crt").c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, (pki + "/" + leaf + ".key").c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_load_verify_locations(ctx, (pki + "/ca/ca.crt").c_str(), nullptr) != 1) {
    SSL_CTX_free(ctx);
    return nullptr;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return ctx;
}

}  // namespace

int main(int argc, char** argv) {
  std::string pki;
  uint64_t bytes = 1ull << 30;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--pki") {
      pki = argv[i + 1];
    } else if (a == "--bytes") {
      bytes = std::strtoull(argv[i + 1], nullptr, 10);
    } else {
      pki.clear();
      break;
    }
  }
  if (pki.empty() || argc % 2 == 0 || bytes == 0) {
    std::fprintf(stderr, "usage: tls_socket_bench --pki DIR (certs/make-test-pki.sh) [--bytes N]\n");
    return 2;
  }
  SSL_CTX* server_ctx = MakeContext(true, pki, "coordinator/coordinator");
  SSL_CTX* client_ctx = MakeContext(false, pki, "site/site-1");
  if (server_ctx == nullptr || client_ctx == nullptr) return Fail("cannot load the PKI in " + pki);

  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listener, 1) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return Fail("cannot listen on 127.0.0.1");
  }

  int server_rc = 0;
  std::thread server([&] {
    const int fd = accept(listener, nullptr, nullptr);
    SSL* ssl = SSL_new(server_ctx);
    SSL_set_fd(ssl, fd);
    if (fd < 0 || SSL_accept(ssl) != 1) {
      server_rc = Fail("server handshake failed");
    } else {
      std::vector<char> buf(1 << 20, 7);
      for (uint64_t sent = 0; sent < bytes;) {
        size_t n = 0;
        const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), bytes - sent));
        if (SSL_write_ex(ssl, buf.data(), want, &n) != 1) {
          server_rc = Fail("write failed");
          break;
        }
        sent += n;
      }
      SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    if (fd >= 0) close(fd);
  });

  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    server.detach();
    return Fail("cannot connect");
  }
  SSL* ssl = SSL_new(client_ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1) {
    server.detach();
    return Fail("client handshake failed");
  }
  std::vector<char> buf(1 << 20);
  uint64_t got = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (got < bytes) {
    size_t n = 0;
    if (SSL_read_ex(ssl, buf.data(), buf.size(), &n) != 1) break;
    got += n;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  server.join();
  SSL_free(ssl);
  close(fd);
  close(listener);
  SSL_CTX_free(server_ctx);
  SSL_CTX_free(client_ctx);
  if (server_rc != 0) return server_rc;
  if (got != bytes) return Fail("the stream ended after " + std::to_string(got) + " bytes");
  std::printf("{\"bytes\": %llu, \"seconds\": %.6f, \"mb_s\": %.3f}\n",
              static_cast<unsigned long long>(bytes), seconds, bytes / 1e6 / seconds);
  return 0;
}
