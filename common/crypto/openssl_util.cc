#include "common/crypto/openssl_util.h"

#include <openssl/err.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace dermfed::crypto::internal {

Status OpenSslError(absl::string_view what, absl::StatusCode code) {
  std::string reasons;
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    absl::StrAppend(&reasons, reasons.empty() ? "" : "; ", buf);
  }
  if (reasons.empty()) reasons = "no OpenSSL error reported";
  return Status(code, absl::StrCat(what, " failed: ", reasons));
}

}  // namespace dermfed::crypto::internal
