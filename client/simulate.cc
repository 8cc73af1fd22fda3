#include "client/simulate.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

extern char** environ;

namespace dermfed::client {
namespace {

namespace fs = std::filesystem;

fs::path SelfDir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::current_path() : exe.parent_path();
}

// Starts `argv` with stdout to `out_fd` (-1 = inherit) and stderr to `log`.
StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, const std::string& log, bool inherit_stdout) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!inherit_stdout) posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return InternalError("cannot start " + argv[0] + ": " + std::strerror(rc));
  }
  return pid;
}

std::string Tail(const std::string& path, size_t lines) {
  std::ifstream in(path);
  std::vector<std::string> all;
  for (std::string line; std::getline(in, line);) all.push_back(line);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
    out += "    " + all[i] + "\n";
  }
  return out;
}

}  // namespace

namespace {

// A throwaway PKI for this simulation, by the same script operators use (certs/).
Status MakeTestPki(const fs::path& dir, size_t sites, const std::string& log_dir) {
  const fs::path script = fs::path(DERMFED_CERTS_DIR) / "make-test-pki.sh";
  if (!fs::exists(script)) {
    return NotFoundError(script.string() + " not found: pass --pki DIR (a test PKI) or --insecure");
  }
  const std::string log = log_dir + "/pki.log";
  DF_ASSIGN_OR_RETURN(pid_t pid, Spawn({"/bin/bash", script.string(), dir.string(), "--sites",
                                        std::to_string(sites)},
                                       log, /*inherit_stdout=*/false));
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return InternalError("making the test PKI failed:\n" + Tail(log, 10));
  }
  return OkStatus();
}

}  // namespace

namespace {
// A random bearer token for the simulation's dashboard, written owner-readable only.
StatusOr<std::string> WriteDashboardToken(const std::string& path) {
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  unsigned char bytes[32];
  if (!urandom.read(reinterpret_cast<char*>(bytes), sizeof(bytes))) {
    return InternalError("cannot read /dev/urandom for the dashboard token");
  }
  static const char kHex[] = "0123456789abcdef";
  std::string token;
  for (unsigned char b : bytes) {
    token += kHex[b >> 4];
    token += kHex[b & 15];
  }
  {
    std::ofstream out(path, std::ios::trunc);
    out << token << "\n";
    if (!out) return InternalError(path + ": cannot write");
  }
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  return token;
}
}  // namespace

Status RunSimulation(const SimulateOptions& o) {
  std::vector<fs::path> sites;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(o.sites_dir, ec)) {
    if (e.is_directory() && e.path().filename().string().rfind("site-", 0) == 0) {
      sites.push_back(e.path());
    }
  }
  if (ec) return NotFoundError(o.sites_dir + ": " + ec.message());
  if (sites.empty()) {
    return InvalidArgumentError(o.sites_dir + " has no site-* folders (make them with dermfed partition)");
  }
  std::sort(sites.begin(), sites.end());
  const fs::path bin = SelfDir();
  const fs::path coordinator_bin = bin / "dermfed-coordinator";
  const fs::path site_bin = bin / "dermfed-site";
  for (const auto& b : {coordinator_bin, site_bin}) {
    if (!fs::exists(b)) return NotFoundError(b.string() + " not found next to dermfed");
  }
  const fs::path out = fs::absolute(o.out);
  if (fs::exists(out / "state")) {
    return FailedPreconditionError(out.string() + " already holds a simulation; choose a new --out");
  }
  fs::create_directories(out / "logs", ec);
  if (ec) return InternalError(out.string() + ": " + ec.message());

  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int total_threads = o.threads > 0 ? o.threads : cores;
  const int per_site = std::max(1, total_threads / static_cast<int>(sites.size()));
  const fs::path port_file = out / "coordinator.port";
  std::map<std::string, std::string> settings = {
      {"federation.name", "simulation"},
      {"federation.rounds", std::to_string(o.rounds)},
      {"federation.min_sites", std::to_string(sites.size())},
      {"federation.expected_sites", std::to_string(sites.size())},
      {"federation.local_epochs", std::to_string(o.local_epochs)},
      {"federation.seed", std::to_string(o.seed)},
      {"federation.join_timeout_s", "600"},
      {"model.backbone", o.backbone},
      {"model.format", o.format},
      {"model.image_size", std::to_string(o.image_size)},
      {"strategy.name", o.strategy},
      {"server.listen", "127.0.0.1:0"},
      {"server.port_file", port_file.string()},
      {"server.state_dir", (out / "state").string()},
      {"server.export_dir", out.string()},
      {"server.threads", "1"},
  };
  std::map<std::string, std::string> site_tls;  // "{site}" stands for the site's name
  if (o.insecure) {
    settings["server.insecure"] = "true";
    site_tls = {{"site.insecure", "true"}};
  } else {
    fs::path pki = o.pki.empty() ? out / "pki" : fs::absolute(o.pki);
    if (o.pki.empty()) DF_RETURN_IF_ERROR(MakeTestPki(pki, sites.size(), (out / "logs").string()));
    settings["tls.ca"] = (pki / "ca" / "ca.crt").string();
    settings["tls.cert"] = (pki / "coordinator" / "coordinator.crt").string();
    settings["tls.key"] = (pki / "coordinator" / "coordinator.key").string();
    settings["tls.crl"] = (pki / "crl" / "crl.pem").string();
    site_tls = {{"site.ca", (pki / "ca" / "ca.crt").string()},
                {"site.cert", (pki / "site" / "{site}.crt").string()},
                {"site.key", (pki / "site" / "{site}.key").string()}};
    std::printf("simulate: mutual TLS with the consortium PKI in %s\n", pki.c_str());
  }
  const bool robust = o.strategy == "fedmedian" || o.strategy == "trimmed_mean" || o.strategy == "krum";
  if (o.secure_aggregation && sites.size() >= 2 && !robust) {
    settings["security.secure_aggregation"] = "true";
    std::printf("simulate: secure aggregation on: the coordinator sees only the sum of the "
                "masked updates\n");
  }
  const fs::path dashboard_port_file = out / "dashboard.port";
  std::string dashboard_token;
  if (!o.dashboard.empty()) {
    DF_ASSIGN_OR_RETURN(dashboard_token, WriteDashboardToken((out / "dashboard.token").string()));
    settings["http.listen"] = o.dashboard;
    settings["http.port_file"] = dashboard_port_file.string();
    settings["http.token_file"] = (out / "dashboard.token").string();
  }
  for (const auto& [k, v] : o.coordinator_settings) settings[k] = v;
  std::vector<std::string> cargs = {coordinator_bin.string()};
  for (const auto& [k, v] : settings) cargs.push_back("--" + k + "=" + v);
  const std::string coordinator_log = (out / "logs" / "coordinator.log").string();
  std::printf("simulate: coordinator and %zu sites on loopback; logs in %s\n", sites.size(),
              (out / "logs").c_str());
  std::fflush(stdout);
  DF_ASSIGN_OR_RETURN(pid_t coordinator, Spawn(cargs, coordinator_log, /*inherit_stdout=*/true));

  // Wait for the coordinator to listen.
  std::string port;
  const auto start = std::chrono::steady_clock::now();
  while (port.empty()) {
    std::ifstream in(port_file);
    if (in) std::getline(in, port);
    int status = 0;
    if (waitpid(coordinator, &status, WNOHANG) == coordinator) {
      return InternalError("the coordinator exited before listening:\n" + Tail(coordinator_log, 15));
    }
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(60)) {
      kill(coordinator, SIGKILL);
      waitpid(coordinator, nullptr, 0);
      return DeadlineExceededError("the coordinator did not start listening within 60 s");
    }
    if (port.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  if (!o.dashboard.empty()) {
    std::string dashboard_port;
    std::ifstream(dashboard_port_file) >> dashboard_port;
    const std::string host = o.dashboard.substr(0, o.dashboard.rfind(':'));
    std::printf("simulate: dashboard at %s://%s:%s/login?token=%s\n", o.insecure ? "http" : "https",
                host.c_str(), dashboard_port.c_str(), dashboard_token.c_str());
    std::fflush(stdout);
  }

  std::vector<pid_t> site_pids;
  std::vector<std::string> site_logs;
  for (const auto& dir : sites) {
    const std::string name = dir.filename().string();
    std::map<std::string, std::string> site_settings = {
        {"site.name", name},
        {"site.coordinator", "127.0.0.1:" + port},
        {"site.data", fs::absolute(dir).string()},
        {"site.threads", std::to_string(per_site)},
        {"site.workers", "1"},
        {"site.seed", std::to_string(o.seed)}};
    for (const auto& [k, v] : site_tls) {
      std::string value = v;
      const auto at = value.find("{site}");
      if (at != std::string::npos) value.replace(at, 6, name);
      site_settings[k] = value;
    }
    for (const auto& [k, v] : o.site_settings) site_settings[k] = v;  // the caller's win
    std::vector<std::string> sargs = {site_bin.string()};
    for (const auto& [k, v] : site_settings) sargs.push_back("--" + k + "=" + v);
    site_logs.push_back((out / "logs" / (name + ".log")).string());
    auto pid = Spawn(sargs, site_logs.back(), /*inherit_stdout=*/false);
    if (!pid.ok()) {
      kill(coordinator, SIGTERM);
      for (pid_t p : site_pids) kill(p, SIGTERM);
      return pid.status();
    }
    site_pids.push_back(*pid);
  }

  // Wait for the coordinator; the sites end when it says the federation is done.
  // If every site has failed, the coordinator would wait for them until its join timeout:
  // stop it at once and say why.
  int status = 0;
  bool timed_out = false, sites_failed = false;
  std::vector<int> site_status(site_pids.size(), -1);
  std::vector<bool> site_ended(site_pids.size(), false);
  while (waitpid(coordinator, &status, WNOHANG) != coordinator) {
    size_t failed = 0;
    for (size_t i = 0; i < site_pids.size(); ++i) {
      if (!site_ended[i] && waitpid(site_pids[i], &site_status[i], WNOHANG) == site_pids[i]) {
        site_ended[i] = true;
      }
      if (site_ended[i] && (!WIFEXITED(site_status[i]) || WEXITSTATUS(site_status[i]) != 0)) {
        ++failed;
      }
    }
    const bool too_long =
        std::chrono::steady_clock::now() - start > std::chrono::duration<double>(o.timeout_s);
    if (too_long || failed == site_pids.size()) {
      timed_out = too_long;
      sites_failed = !too_long;
      kill(coordinator, SIGKILL);
      waitpid(coordinator, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  const auto grace = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (size_t i = 0; i < site_pids.size(); ++i) {
    while (!site_ended[i] && waitpid(site_pids[i], &site_status[i], WNOHANG) != site_pids[i]) {
      if (std::chrono::steady_clock::now() > grace) {
        kill(site_pids[i], SIGKILL);
        waitpid(site_pids[i], &site_status[i], 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  if (timed_out) {
    return DeadlineExceededError("the simulation did not finish within " +
                                 std::to_string(o.timeout_s) + " s; coordinator log:\n" +
                                 Tail(coordinator_log, 20));
  }
  if (sites_failed || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string msg = sites_failed ? std::string("every site failed; ")
                                   : "the coordinator failed; its log ends with:\n" +
                                         Tail(coordinator_log, 20);
    for (size_t i = 0; i < site_logs.size(); ++i) {
      if (!WIFEXITED(site_status[i]) || WEXITSTATUS(site_status[i]) != 0) {
        msg += site_logs[i] + " ends with:\n" + Tail(site_logs[i], 10);
      }
    }
    return InternalError(msg);
  }
  for (size_t i = 0; i < site_logs.size(); ++i) {
    if (!WIFEXITED(site_status[i]) || WEXITSTATUS(site_status[i]) != 0) {
      std::fprintf(stderr, "simulate: %s did not end cleanly; its log ends with:\n%s",
                   sites[i].filename().c_str(), Tail(site_logs[i], 10).c_str());
    }
  }
  std::printf("simulate: done; global model in %s (dermfed eval --model %s), history in %s\n",
              out.c_str(), out.c_str(), (out / "history.json").c_str());
  return OkStatus();
}

}  // namespace dermfed::client
