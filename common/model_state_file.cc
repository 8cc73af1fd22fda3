#include "common/model_state_file.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "common/digest.h"
#include "common/model_transfer.h"
#include "dermfed/v1/model_state.pb.h"

namespace dermfed {
namespace {

constexpr char kMagic[8] = {'D', 'F', 'M', 'S', 'T', 'A', 'T', 'E'};
constexpr uint32_t kVersion = 1;
constexpr size_t kDigestBytes = Sha256::kBytes;
// A manifest is names and shapes: even DenseNet's is < 100 KB. Anything bigger is hostile.
constexpr uint64_t kMaxManifestBytes = 64ull << 20;

std::string ErrnoText() { return std::strerror(errno); }

void PutU32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}
void PutU64(std::string& s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}
uint64_t GetLe(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Header + manifest + padding: everything before the buffer.
std::string Preamble(const ModelState& state) {
  v1::Manifest manifest = ManifestToProto(state);
  std::string body = manifest.SerializeAsString();
  std::string out(kMagic, sizeof(kMagic));
  PutU32(out, kVersion);
  PutU32(out, 0);
  PutU64(out, body.size());
  out += body;
  out.resize((out.size() + ModelState::kAlignment - 1) / ModelState::kAlignment *
                 ModelState::kAlignment,
             '\0');
  return out;
}

Status WriteAll(int fd, const void* p, size_t n, const std::string& path) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return InternalError(path + ": write failed: " + ErrnoText());
    }
    c += w;
    n -= static_cast<size_t>(w);
  }
  return OkStatus();
}

}  // namespace

std::string ModelStateDigest(const ModelState& state) {
  Sha256 sha;
  const std::string pre = Preamble(state);
  sha.Update(pre.data(), pre.size());
  sha.Update(state.data(), state.size_bytes());
  auto d = sha.Final();
  return HexDigest(d.data(), d.size());
}

Status SaveModelState(const ModelState& state, const std::string& path) {
  const std::string pre = Preamble(state);
  Sha256 sha;
  sha.Update(pre.data(), pre.size());
  sha.Update(state.data(), state.size_bytes());
  const auto digest = sha.Final();

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return InternalError(tmp + ": cannot create: " + ErrnoText());
  Status s = WriteAll(fd, pre.data(), pre.size(), tmp);
  if (s.ok()) s = WriteAll(fd, state.data(), state.size_bytes(), tmp);
  if (s.ok()) s = WriteAll(fd, digest.data(), digest.size(), tmp);
  if (s.ok() && ::fsync(fd) != 0) s = InternalError(tmp + ": fsync failed: " + ErrnoText());
  if (::close(fd) != 0 && s.ok()) s = InternalError(tmp + ": close failed: " + ErrnoText());
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    s = InternalError(path + ": rename from " + tmp + " failed: " + ErrnoText());
  }
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  // Make the rename itself durable.
  std::string dir = path.substr(0, path.find_last_of('/') == std::string::npos
                                       ? 0
                                       : path.find_last_of('/'));
  if (dir.empty()) dir = path.find('/') == 0 ? "/" : ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return OkStatus();
}

StatusOr<ModelState> LoadModelState(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return NotFoundError(path + ": cannot open: " + ErrnoText());
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  constexpr uint64_t kHeader = 24;
  if (file_size < kHeader + kDigestBytes) {
    return DataLossError(path + ": " + std::to_string(file_size) +
                         " bytes is too short for a model state file");
  }
  uint8_t header[kHeader];
  in.read(reinterpret_cast<char*>(header), kHeader);
  if (std::memcmp(header, kMagic, sizeof(kMagic)) != 0) {
    return InvalidArgumentError(path + ": not a dermfed model state file (bad magic)");
  }
  const uint32_t version = static_cast<uint32_t>(GetLe(header + 8, 4));
  if (version != kVersion) {
    return InvalidArgumentError(path + ": model state file version " + std::to_string(version) +
                                " is not supported (this build reads version " +
                                std::to_string(kVersion) + ")");
  }
  const uint64_t manifest_len = GetLe(header + 16, 8);
  if (manifest_len > kMaxManifestBytes || manifest_len > file_size - kHeader - kDigestBytes) {
    return DataLossError(path + ": manifest length " + std::to_string(manifest_len) +
                         " does not fit in a " + std::to_string(file_size) + "-byte file");
  }
  std::string body(manifest_len, '\0');
  in.read(body.data(), static_cast<std::streamsize>(manifest_len));
  v1::Manifest manifest;
  if (!in || !manifest.ParseFromString(body)) {
    return DataLossError(path + ": manifest is not a valid dermfed.v1.Manifest");
  }
  const uint64_t buffer_offset = (kHeader + manifest_len + ModelState::kAlignment - 1) /
                                 ModelState::kAlignment * ModelState::kAlignment;
  const uint64_t buffer_bytes = manifest.buffer_bytes();
  if (buffer_offset > file_size || file_size - buffer_offset != buffer_bytes + kDigestBytes) {
    return DataLossError(path + ": file is " + std::to_string(file_size) +
                         " bytes but its manifest describes a " + std::to_string(buffer_bytes) +
                         "-byte buffer at offset " + std::to_string(buffer_offset) +
                         " (truncated or padded file)");
  }
  auto parsed = ManifestFromProto(manifest);
  if (!parsed.ok()) return Annotate(parsed.status(), path);
  std::vector<TensorSpec> specs = std::move(parsed).value();
  // Read the rest in one go; its size is now known to match the file.
  std::vector<uint8_t> rest(file_size - kHeader - manifest_len);
  in.read(reinterpret_cast<char*>(rest.data()), static_cast<std::streamsize>(rest.size()));
  if (!in) return DataLossError(path + ": read failed: " + ErrnoText());
  const uint8_t* padding = rest.data();
  const uint64_t padding_len = buffer_offset - kHeader - manifest_len;
  const uint8_t* buffer = padding + padding_len;
  const uint8_t* stored_digest = buffer + buffer_bytes;

  Sha256 sha;
  sha.Update(header, kHeader);
  sha.Update(body.data(), body.size());
  sha.Update(padding, padding_len + buffer_bytes);
  const auto digest = sha.Final();
  if (std::memcmp(digest.data(), stored_digest, kDigestBytes) != 0) {
    return DataLossError(path + ": checksum mismatch (file is corrupt): stored " +
                         HexDigest(stored_digest, kDigestBytes) + ", computed " +
                         HexDigest(digest.data(), digest.size()));
  }
  auto state = ModelState::FromParts(std::move(specs), buffer, buffer_bytes);
  if (!state.ok()) return Annotate(state.status(), path);
  return state;
}

}  // namespace dermfed
