// One secure-aggregation round (common/secagg: Server and Client) with three honest sites
// and one hostile participant, site-x, whose messages, and forged coordinator messages to the
// honest sites, come from the input. The secagg messages are parsed from the input's bytes
// (secagg_messages_fuzzer covers the parsers alone); this target covers what the round does
// with a well-formed but hostile message. The server must never return a wrong sum: when
// Finish succeeds without site-x among the survivors, the result is exactly the honest
// survivors' sum.
//
// Input: a flags byte, then records {op, sender, length (u16 LE), bytes}:
//   op 0 advertisement, 1 share bundle, 2 masked input chunk (u32 offset, then words),
//   3 unmask response: sent to the server in that phase by `sender` (odd: site-x, even: a
//   site outside the round); op 4, 5, 6: an AdvertisementList, MaskingRequest or
//   UnmaskRequest forged to honest site (sender % 3) in that phase.
// Flags: bit 0 site-c drops before masking, bit 1 site-c drops before unmasking, bit 2
//   site-b sends its masked input in two chunks.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "common/secagg/client.h"
#include "common/secagg/messages.h"
#include "common/secagg/protocol.h"
#include "common/secagg/server.h"
#include "tests/fuzz/fuzz_util.h"

namespace dermfed::secagg {
namespace {

constexpr size_t kWords = 8;
const std::array<std::string, 3> kHonest = {"site-a", "site-b", "site-c"};

struct Record {
  uint8_t op;
  uint8_t sender;
  std::string bytes;
};

std::vector<Record> Records(const uint8_t* data, size_t size) {
  std::vector<Record> out;
  size_t i = 0;
  while (i + 4 <= size && out.size() < 64) {
    Record r{static_cast<uint8_t>(data[i] % 7), data[i + 1], {}};
    const size_t len = data[i + 2] | (static_cast<size_t>(data[i + 3]) << 8);
    i += 4;
    const size_t n = std::min(len, size - i);
    r.bytes.assign(reinterpret_cast<const char*>(data + i), n);
    i += n;
    out.push_back(std::move(r));
  }
  return out;
}

std::string Sender(uint8_t sender) { return sender & 1 ? "site-x" : "outsider"; }

std::vector<uint32_t> Input(size_t site) {
  std::vector<uint32_t> x(kWords);
  for (size_t i = 0; i < kWords; ++i) x[i] = static_cast<uint32_t>(0x01000193u * (site + 1) + i);
  return x;
}

class Round {
 public:
  Round(const uint8_t* data, size_t size)
      : records_(Records(data + 1, size - 1)), flags_(data[0]) {}

  void Run() {
    const std::string context = RoundContext("fuzz", 1, "v1");
    auto server = Server::Create(context, {"site-a", "site-b", "site-c", "site-x"}, 2, kWords);
    FUZZ_CHECK(server.ok(), server.status().ToString());
    std::vector<Client> clients;
    for (const std::string& site : kHonest) {
      auto c = Client::Create(site, context, 2);
      FUZZ_CHECK(c.ok(), c.status().ToString());
      clients.push_back(std::move(c).value());
    }

    // Round 0.
    for (Client& c : clients)
      Expect(server->AddAdvertisement(c.site(), c.advertisement()), "advertisement");
    FromHostile(0, [&](const Record& r) {
      auto m = Advertisement::Parse(r.bytes);
      if (m.ok()) server->AddAdvertisement(Sender(r.sender), *m).IgnoreError();
    });
    auto u1 = server->CloseAdvertisements();
    FUZZ_CHECK(u1.ok(), "three honest advertisements and threshold 2: " + u1.status().ToString());

    // Round 1.
    Forged(4, clients, [&](Client& c, const Record& r) {
      auto m = AdvertisementList::Parse(r.bytes);
      if (m.ok()) c.ShareKeys(*m).status().IgnoreError();
    });
    for (Client& c : clients) {
      auto bundle = c.ShareKeys(*u1);
      if (!bundle.ok()) {
        // Only a hostile advertisement (a duplicate key, say) may make U1 unusable.
        Trace("ShareKeys", bundle.status());
        return;
      }
      Expect(server->AddShares(c.site(), *std::move(bundle)), "shares");
    }
    FromHostile(1, [&](const Record& r) {
      auto m = ShareBundle::Parse(r.bytes);
      if (m.ok()) server->AddShares(Sender(r.sender), *std::move(m)).IgnoreError();
    });
    auto u2 = server->CloseShares();
    FUZZ_CHECK(u2.ok(), u2.status().ToString());

    // Round 2.
    Forged(5, clients, [&](Client& c, const Record& r) {
      auto m = MaskingRequest::Parse(r.bytes);
      std::vector<uint32_t> scratch(kWords);
      if (m.ok()) c.MaskInPlace(absl::MakeSpan(scratch), *m).IgnoreError();
    });
    std::vector<uint32_t> honest_sum(kWords, 0);
    std::vector<std::string> honest_survivors;
    for (size_t i = 0; i < clients.size(); ++i) {
      if (i == 2 && (flags_ & 1)) continue;  // site-c drops out
      auto request = server->MaskingRequestFor(clients[i].site());
      FUZZ_CHECK(request.ok(), request.status().ToString());
      std::vector<uint32_t> y = Input(i);
      Status masked = clients[i].MaskInPlace(absl::MakeSpan(y), *request);
      if (!masked.ok()) {
        // A forged request may already have moved the client on; it then stays out.
        Trace("MaskInPlace", masked);
        continue;
      }
      const std::vector<uint32_t> x = Input(i);
      for (size_t w = 0; w < kWords; ++w) honest_sum[w] += x[w];
      honest_survivors.push_back(clients[i].site());
      if (i == 1 && (flags_ & 4)) {
        Expect(
            server->AddMaskedInputChunk(clients[i].site(), 0, absl::MakeConstSpan(y).subspan(0, 3)),
            "chunk");
        Expect(server->AddMaskedInputChunk(clients[i].site(), 3, absl::MakeConstSpan(y).subspan(3)),
               "chunk");
      } else {
        Expect(server->AddMaskedInput(clients[i].site(), y), "masked input");
      }
    }
    FromHostile(2, [&](const Record& r) {
      if (r.bytes.size() < 4) return;
      const size_t offset =
          static_cast<uint8_t>(r.bytes[0]) | (static_cast<uint8_t>(r.bytes[1]) << 8);
      std::vector<uint32_t> words((r.bytes.size() - 4) / 4);
      if (!words.empty()) std::memcpy(words.data(), r.bytes.data() + 4, words.size() * 4);
      server->AddMaskedInputChunk(Sender(r.sender), offset, words).IgnoreError();
    });
    auto unmask = server->MakeUnmaskRequest();
    if (!unmask.ok()) {
      Trace("MakeUnmaskRequest", unmask.status());  // e.g. site-x left its input half sent
      return;
    }

    // Round 3.
    Forged(6, clients, [&](Client& c, const Record& r) {
      auto m = UnmaskRequest::Parse(r.bytes);
      if (m.ok()) c.Unmask(*m).status().IgnoreError();
    });
    for (size_t i = 0; i < clients.size(); ++i) {
      if (i == 2 && (flags_ & 3)) continue;  // site-c is gone
      auto response = clients[i].Unmask(*unmask);
      if (!response.ok()) {
        Trace("Unmask", response.status());
        continue;
      }
      Expect(server->AddUnmaskResponse(clients[i].site(), *response), "unmask response");
    }
    FromHostile(3, [&](const Record& r) {
      auto m = UnmaskResponse::Parse(r.bytes);
      if (m.ok()) server->AddUnmaskResponse(Sender(r.sender), *m).IgnoreError();
    });
    auto sum = server->Finish();
    Trace("Finish", sum.status());
    if (!sum.ok()) return;
    const auto& u3 = server->u3();
    if (std::find(u3.begin(), u3.end(), "site-x") != u3.end()) return;  // its input is in the sum
    FUZZ_CHECK(u3 == honest_survivors, "U3 is not the honest sites that masked");
    FUZZ_CHECK(*sum == honest_sum, "the server returned a wrong sum");
  }

 private:
  // Honest messages must be accepted whatever site-x did before them.
  void Expect(const Status& s, const char* what) {
    FUZZ_CHECK(s.ok(), std::string("honest ") + what + " refused: " + s.ToString());
  }
  template <typename F>
  void FromHostile(int op, F f) {
    for (const Record& r : records_) {
      if (r.op == op) f(r);
    }
  }
  template <typename F>
  void Forged(int op, std::vector<Client>& clients, F f) {
    for (const Record& r : records_) {
      if (r.op == op) f(clients[r.sender % clients.size()], r);
    }
  }
  static void Trace(const char* what, const Status& s) { fuzz::Trace(what, s); }

  std::vector<Record> records_;
  uint8_t flags_;
};

}  // namespace
}  // namespace dermfed::secagg

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  dermfed::secagg::Round(data, size).Run();
  return 0;
}
