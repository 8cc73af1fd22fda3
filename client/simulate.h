// `dermfed simulate`: a whole federation on one machine — a real dermfed-coordinator and one
// real dermfed-site process per site folder, talking gRPC on loopback — leaving in RUN the
// final global model (a RUN folder that `dermfed eval` and `predict` read), the per-round
// metrics history (RUN/history.json), the coordinator's state and every process's log.
//
// Not thread-safe.
#ifndef DERMFED_CLIENT_SIMULATE_H_
#define DERMFED_CLIENT_SIMULATE_H_

#include <map>
#include <string>

#include "common/status.h"

namespace dermfed::client {

struct SimulateOptions {
  std::string sites_dir;  // holds site-1 ... site-N (as `dermfed partition` writes)
  std::string format;
  std::string backbone = "tiny";
  int image_size = 64;
  int rounds = 3;
  int local_epochs = 1;
  std::string out;
  std::string strategy = "fedavg";
  uint64_t seed = 1;
  int threads = 0;  // total LibTorch threads to share among the sites (0 = all cores)
  // Extra coordinator settings, key -> value (e.g. training.learning_rate -> 0.002).
  std::map<std::string, std::string> coordinator_settings;
  // Extra settings for every site.
  std::map<std::string, std::string> site_settings;
  double timeout_s = 3600;
  // Mutual TLS with a throwaway consortium PKI (certs/make-test-pki.sh layout): `pki` names
  // one; empty = make one in OUT/pki. `insecure` turns TLS off (loudly).
  std::string pki;
  bool insecure = false;
  // Secure aggregation (on unless the strategy needs individual updates or there is one site).
  bool secure_aggregation = true;
  // HOST:PORT for the coordinator's dashboard ("" = none). A fresh token is written to
  // OUT/dashboard.token and the login address printed.
  std::string dashboard;
};

Status RunSimulation(const SimulateOptions& options);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_SIMULATE_H_
