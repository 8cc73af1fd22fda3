// federation_transfer_bench: times model downloads from a real dermfed-coordinator the way a
// site daemon does them (FederationClient::PullModel: chunked server stream, reassembly into
// one ModelState buffer, SHA-256 check), on the same channel settings as dermfed-site.
//
// It joins the federation as a site, waits for its TRAIN task (start the coordinator with
// federation.min_sites=1), then downloads the task's model version --pulls times and prints
// one JSON object on stdout:
//   {"bytes": B, "pulls": N, "seconds": [...], "median_mb_s": X, "best_mb_s": Y}
// (MB = 10^6 bytes, as `openssl speed` counts). With --pki DIR (a certs/make-test-pki.sh
// folder) it connects over mutual TLS as DIR/site/site-1, as a deployed site does; without it,
// in plaintext (the coordinator then needs server.insecure). A benchmark, not a test; see
// tests/bench/federation_bench.sh, which starts the coordinator and compares against AES-GCM.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "client/federation/federation_client.h"
#include "common/allocator.h"
#include "common/tls/tls.h"

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: federation_transfer_bench --coordinator HOST:PORT [--pulls N] "
               "[--site NAME] [--pki DIR] [--wait-s S]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  dermfed::TuneAllocator();  // as dermfed-site does
  std::string target;
  std::string site = "site-1";
  int pulls = 5;
  int wait_s = 300;
  std::string pki;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return Usage();
    if (a == "--coordinator") {
      target = argv[++i];
    } else if (a == "--pulls") {
      pulls = std::atoi(argv[++i]);
    } else if (a == "--site") {
      site = argv[++i];
    } else if (a == "--pki") {
      pki = argv[++i];
    } else if (a == "--wait-s") {
      wait_s = std::atoi(argv[++i]);
    } else {
      return Usage();
    }
  }
  if (target.empty() || pulls < 1) return Usage();

  // The same channel as RunSiteDaemon (client/federation/site_daemon.cc).
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 8 << 20);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!pki.empty()) {
    const std::string leaf = pki + "/site/" + site;
    auto tls = dermfed::tls::ChannelCredentials({pki + "/ca/ca.crt", leaf + ".crt", leaf + ".key", ""});
    if (!tls.ok()) {
      std::fprintf(stderr, "federation_transfer_bench: %s\n",
                   std::string(tls.status().message()).c_str());
      return 1;
    }
    credentials = *tls;
  }
  auto channel = grpc::CreateCustomChannel(target, credentials, args);
  dermfed::client::FederationClient client(channel, site);

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_s);
  bool joined = false;
  int64_t version = -1;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!joined) {
      auto j = client.Join(1);
      if (!j.ok()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
      joined = true;
    }
    auto task = client.WaitForTask(0, std::chrono::seconds(10));
    if (!task.ok()) {
      std::fprintf(stderr, "federation_transfer_bench: %s\n",
                   std::string(task.status().message()).c_str());
      joined = false;
      continue;
    }
    if (task->kind() == dermfed::v1::Task::TRAIN || task->kind() == dermfed::v1::Task::EVALUATE) {
      version = task->model_version();
      break;
    }
    if (task->kind() == dermfed::v1::Task::DONE) break;
  }
  if (version < 0) {
    std::fprintf(stderr, "federation_transfer_bench: no task from %s within %d s\n",
                 target.c_str(), wait_s);
    return 1;
  }

  std::vector<double> seconds;
  uint64_t bytes = 0;
  for (int i = 0; i < pulls; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto model = client.PullModel(version, 8ull << 30);
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!model.ok()) {
      std::fprintf(stderr, "federation_transfer_bench: pull %d: %s\n", i + 1,
                   std::string(model.status().message()).c_str());
      return 1;
    }
    bytes = model->size_bytes();
    seconds.push_back(s);
    std::fprintf(stderr, "federation_transfer_bench: pull %d: %.1f MB in %.3f s = %.1f MB/s\n",
                 i + 1, bytes / 1e6, s, bytes / 1e6 / s);
  }
  std::vector<double> sorted = seconds;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted.size() % 2 ? sorted[sorted.size() / 2]
                                          : (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]) / 2;
  std::printf("{\"bytes\": %llu, \"pulls\": %d, \"seconds\": [", static_cast<unsigned long long>(bytes),
              pulls);
  for (size_t i = 0; i < seconds.size(); ++i) std::printf("%s%.6f", i ? ", " : "", seconds[i]);
  std::printf("], \"median_mb_s\": %.3f, \"best_mb_s\": %.3f}\n", bytes / 1e6 / median,
              bytes / 1e6 / sorted.front());
  return 0;
}
