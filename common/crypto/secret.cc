#include "common/crypto/secret.h"

#include <openssl/crypto.h>

namespace dermfed::crypto {

void Cleanse(void* p, size_t n) {
  if (p != nullptr && n > 0) OPENSSL_cleanse(p, n);
}

}  // namespace dermfed::crypto
