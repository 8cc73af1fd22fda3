// A secure-aggregation round in one process: one Server, one Client per site, and every
// message serialized and parsed on its way, as it would cross gRPC. Each step takes the
// sites that go silent at that step (they drop out), so a test states its dropout pattern
// directly; the members stay public so a test can intercept or forge a message in between.
#ifndef DERMFED_TESTS_COMMON_SECAGG_SIMULATED_ROUND_H_
#define DERMFED_TESTS_COMMON_SECAGG_SIMULATED_ROUND_H_

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/secagg/client.h"
#include "common/secagg/messages.h"
#include "common/secagg/protocol.h"
#include "common/secagg/server.h"
#include "common/status.h"

namespace dermfed::secagg::testing {

inline const std::string& TestContext() {
  static const std::string* const kContext =
      new std::string(RoundContext("test-federation", 7, "model-v3"));
  return *kContext;
}

// Parses what `message.Serialize()` wrote, as the receiving end of an RPC would.
template <typename Message>
StatusOr<Message> OverTheWire(const Message& message) {
  return Message::Parse(message.Serialize());
}

// Site names "site-0".."site-{n-1}".
inline std::vector<std::string> SiteNames(int n) {
  std::vector<std::string> sites;
  for (int i = 0; i < n; ++i) sites.push_back(absl::StrCat("site-", i));
  return sites;
}

// Uniformly random words, a different stream per seed.
inline std::vector<uint32_t> RandomWords(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint32_t> v(n);
  for (uint32_t& w : v) w = rng();
  return v;
}

class SimulatedRound {
 public:
  using Sites = std::set<std::string>;

  // `contexts` overrides the context of individual clients (to simulate a confused site).
  SimulatedRound(int n, int threshold, size_t length,
                 const std::map<std::string, std::string>& contexts = {})
      : sites(SiteNames(n)), threshold(threshold), length(length) {
    auto created = Server::Create(TestContext(), sites, threshold, length);
    status = created.status();
    if (created.ok()) server.emplace(*std::move(created));
    for (size_t i = 0; i < sites.size() && status.ok(); ++i) {
      const std::string& site = sites[i];
      auto it = contexts.find(site);
      auto client =
          Client::Create(site, it == contexts.end() ? TestContext() : it->second, threshold);
      status = client.status();
      if (client.ok()) clients.emplace(site, *std::move(client));
      inputs[site] = RandomWords(length, 1000 + static_cast<uint32_t>(i));
    }
  }

  // Round 0: every site but `silent` advertises; the server closes U1.
  Status Advertise(const Sites& silent = {}) {
    DF_RETURN_IF_ERROR(status);
    for (const std::string& site : sites) {
      if (silent.count(site) > 0) continue;
      DF_ASSIGN_OR_RETURN(Advertisement ad, OverTheWire(clients.at(site).advertisement()));
      DF_RETURN_IF_ERROR(server->AddAdvertisement(site, ad));
    }
    DF_ASSIGN_OR_RETURN(AdvertisementList list, server->CloseAdvertisements());
    DF_ASSIGN_OR_RETURN(u1, OverTheWire(list));
    return OkStatus();
  }

  // Round 1: every site of U1 but `silent` shares its keys; the server closes U2.
  Status ShareKeys(const Sites& silent = {}) {
    for (const Advertisement& ad : u1.advertisements) {
      if (silent.count(ad.site) > 0) continue;
      auto bundle = clients.at(ad.site).ShareKeys(u1);
      if (!bundle.ok()) return Annotate(bundle.status(), ad.site);
      DF_ASSIGN_OR_RETURN(ShareBundle received, OverTheWire(*bundle));
      DF_RETURN_IF_ERROR(server->AddShares(ad.site, std::move(received)));
    }
    return server->CloseShares().status();
  }

  // Round 2: every site of U2 masks its input; all but `silent` send it (alternately whole
  // and in three chunks, as a streaming RPC would); the server closes U3. The masked vectors
  // are kept in `masked`.
  Status MaskAndSend(const Sites& silent = {}) {
    bool chunked = false;
    for (const std::string& site : server->u2()) {
      DF_ASSIGN_OR_RETURN(MaskingRequest request, server->MaskingRequestFor(site));
      DF_ASSIGN_OR_RETURN(request, OverTheWire(request));
      std::vector<uint32_t>& y = masked[site];
      y = inputs.at(site);
      DF_RETURN_IF_ERROR(Annotate(clients.at(site).MaskInPlace(absl::MakeSpan(y), request), site));
      if (silent.count(site) > 0) continue;
      chunked = !chunked;
      if (!chunked) {
        DF_RETURN_IF_ERROR(server->AddMaskedInput(site, y));
        continue;
      }
      const size_t third = y.size() / 3;
      const absl::Span<const uint32_t> all(y);
      DF_RETURN_IF_ERROR(server->AddMaskedInputChunk(site, 0, all.subspan(0, third)));
      DF_RETURN_IF_ERROR(server->AddMaskedInputChunk(site, third, all.subspan(third, third)));
      DF_RETURN_IF_ERROR(server->AddMaskedInputChunk(site, 2 * third, all.subspan(2 * third)));
    }
    DF_ASSIGN_OR_RETURN(UnmaskRequest request, server->MakeUnmaskRequest());
    DF_ASSIGN_OR_RETURN(unmask_request, OverTheWire(request));
    return OkStatus();
  }

  // Round 3: every site of U3 but `silent` answers the unmask request.
  Status Unmask(const Sites& silent = {}) {
    for (const std::string& site : unmask_request.survivors) {
      if (silent.count(site) > 0) continue;
      auto response = clients.at(site).Unmask(unmask_request);
      if (!response.ok()) return Annotate(response.status(), site);
      DF_ASSIGN_OR_RETURN(UnmaskResponse received, OverTheWire(*response));
      DF_RETURN_IF_ERROR(server->AddUnmaskResponse(site, received));
    }
    return OkStatus();
  }

  StatusOr<std::vector<uint32_t>> Finish() { return server->Finish(); }

  // All four rounds and Finish, with the given dropouts at each step.
  StatusOr<std::vector<uint32_t>> Run(const Sites& no_advertisement = {},
                                      const Sites& no_shares = {},
                                      const Sites& no_masked_input = {},
                                      const Sites& no_unmask_response = {}) {
    DF_RETURN_IF_ERROR(Advertise(no_advertisement));
    DF_RETURN_IF_ERROR(ShareKeys(no_shares));
    DF_RETURN_IF_ERROR(MaskAndSend(no_masked_input));
    DF_RETURN_IF_ERROR(Unmask(no_unmask_response));
    return Finish();
  }

  // The plain sum mod 2^32 of the inputs of `which`.
  std::vector<uint32_t> PlainSum(const std::vector<std::string>& which) const {
    std::vector<uint32_t> sum(length, 0);
    for (const std::string& site : which) {
      const std::vector<uint32_t>& x = inputs.at(site);
      for (size_t i = 0; i < length; ++i) sum[i] += x[i];
    }
    return sum;
  }

  // The sites that are not in `excluded`.
  std::vector<std::string> AllBut(const Sites& excluded) const {
    std::vector<std::string> rest;
    for (const std::string& site : sites) {
      if (excluded.count(site) == 0) rest.push_back(site);
    }
    return rest;
  }

  std::vector<std::string> sites;
  int threshold;
  size_t length;
  Status status;  // of the construction
  std::optional<Server> server;
  std::map<std::string, Client> clients;
  std::map<std::string, std::vector<uint32_t>> inputs;
  std::map<std::string, std::vector<uint32_t>> masked;
  AdvertisementList u1;
  UnmaskRequest unmask_request;
};

}  // namespace dermfed::secagg::testing

#endif  // DERMFED_TESTS_COMMON_SECAGG_SIMULATED_ROUND_H_
