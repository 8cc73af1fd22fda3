// An audit log file (common/audit/audit_log.h: JSON lines, hash-chained) through
// AuditLog::Verify, which Open runs on an existing log at coordinator start-up. The harness
// re-chains the input first: in each line it sets a 64-character "prev" value to the hash of
// the line before and a trailing "hash" value to the line's own SHA-256, so the fuzzer
// reaches the JSON and field checks behind the hashes (it cannot forge SHA-256 itself).
// A log that verifies is then continued with Open + Record of an entry whose strings are
// the input's bytes (site names and details come from the network), and must still verify.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "common/audit/audit_log.h"
#include "common/digest.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

constexpr size_t kHex = 64;
const std::string kPrev = "\"prev\":\"";
const std::string kHashPrefix = ",\"hash\":\"";

std::string Sha256Hex(const std::string& s) {
  dermfed::Sha256 sha;
  sha.Update(s.data(), s.size());
  const auto d = sha.Final();
  return dermfed::HexDigest(d.data(), d.size());
}

// Rewrites the chain fields of every complete line; bytes after the last '\n' stay as they are.
std::string Rechain(const std::string& in) {
  std::string out;
  std::string prev_hash(kHex, '0');
  size_t start = 0;
  while (start < in.size()) {
    const size_t nl = in.find('\n', start);
    if (nl == std::string::npos) {
      out += in.substr(start);
      break;
    }
    std::string line = in.substr(start, nl - start);
    start = nl + 1;
    const size_t p = line.find(kPrev);
    if (p != std::string::npos && p + kPrev.size() + kHex <= line.size()) {
      line.replace(p + kPrev.size(), kHex, prev_hash);
    }
    const size_t trailer = kHashPrefix.size() + kHex + 2;
    if (line.size() >= trailer &&
        line.compare(line.size() - trailer, kHashPrefix.size(), kHashPrefix) == 0 &&
        line.compare(line.size() - 2, 2, "\"}") == 0) {
      const std::string body = line.substr(0, line.size() - trailer) + "}";
      line.replace(line.size() - kHex - 2, kHex, Sha256Hex(body));
    }
    prev_hash = Sha256Hex(line);
    out += line + "\n";
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dermfed;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::string path = fuzz::WriteScratchFile("audit.log", Rechain(input));
  Status verified = audit::AuditLog::Verify(path);
  fuzz::Trace("verify", verified);
  if (!verified.ok()) {
    FUZZ_CHECK(verified.message().find(path) != std::string::npos,
               "error does not name the log: " + verified.ToString());
    return 0;
  }
  auto log = audit::AuditLog::Open(path);
  FUZZ_CHECK(log.ok(), "a log that verifies does not open: " + log.status().ToString());
  audit::Entry entry;
  const std::string tail = input.substr(input.size() > 300 ? input.size() - 300 : 0);
  entry.actor = "spiffe://dermfed/site/" + tail;
  entry.role = "site";
  entry.action = "upload";
  entry.site = tail;
  entry.round = static_cast<int64_t>(size) - 100;
  entry.model_version = tail.substr(0, 8);
  entry.outcome = size % 2 ? audit::Outcome::kOk : audit::Outcome::kRefused;
  entry.detail = input;
  Status recorded = (*log)->Record(entry);
  FUZZ_CHECK(recorded.ok(), "Record failed: " + recorded.ToString());
  log->reset();
  Status again = audit::AuditLog::Verify(path);
  FUZZ_CHECK(again.ok(), "a log continued by Record does not verify: " + again.ToString());
  return 0;
}
