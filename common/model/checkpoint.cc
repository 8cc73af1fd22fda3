#include "common/model/checkpoint.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/model/pickle_reader.h"
#include "common/model/torch_call.h"

// Storage bytes are copied as they are in the file, which torch always writes little-endian.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint.cc reads little-endian tensor data and assumes a little-endian host"
#endif

namespace dermfed::model {
namespace {

using Kind = PickleValue::Kind;
using TensorRefs = std::vector<std::pair<std::string, TorchTensorRef>>;
// Returns the bytes of a root storage: at least numel * element size of them.
using StorageLoader = std::function<StatusOr<c10::Storage>(const TorchStorageDecl&)>;

// torch.serialization.MAGIC_NUMBER (0x1950a86a20f9469cfc6c) as LONG1 stores it:
// little-endian two's complement.
constexpr std::string_view kLegacyMagic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);
constexpr int64_t kLegacyProtocolVersion = 1001;

// The whole file, mapped read-only: the legacy format's storages follow its pickles at
// offsets known only after parsing them, and a checkpoint can be half a gigabyte, so it is
// mapped rather than read into memory. (Checkpoints are not rewritten in place while read.)
class MappedFile {
 public:
  static StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      const std::string reason = std::generic_category().message(err);
      if (err == ENOENT) return NotFoundError(absl::StrCat("cannot open: ", reason));
      return FailedPreconditionError(absl::StrCat("cannot open: ", reason));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return FailedPreconditionError("not a regular file");
    }
    auto file = std::unique_ptr<MappedFile>(new MappedFile());
    file->size_ = static_cast<size_t>(st.st_size);
    if (file->size_ > 0) {
      void* data = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (data == MAP_FAILED) {
        const std::string reason = std::generic_category().message(errno);
        ::close(fd);
        return FailedPreconditionError(absl::StrCat("cannot map: ", reason));
      }
      file->data_ = static_cast<const char*>(data);
    }
    ::close(fd);
    return file;
  }

  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
  }

  std::string_view bytes() const { return {data_, size_}; }

 private:
  MappedFile() = default;
  const char* data_ = nullptr;
  size_t size_ = 0;
};

// Lets LibTorch's zip reader read the mapping we already have.
class MappedFileAdapter : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit MappedFileAdapter(std::string_view bytes) : bytes_(bytes) {}
  size_t size() const override { return bytes_.size(); }
  size_t read(uint64_t pos, void* buf, size_t n, const char* what) const override {
    if (pos >= bytes_.size()) return 0;
    n = std::min<uint64_t>(n, bytes_.size() - pos);
    std::memcpy(buf, bytes_.data() + pos, n);
    return n;
  }

 private:
  std::string_view bytes_;
};

std::string WithArticle(const std::string& noun) {
  const bool vowel =
      !noun.empty() && std::string_view("aeiouAEIOU").find(noun[0]) != std::string_view::npos;
  return absl::StrCat(vowel ? "an " : "a ", noun);
}

// The state dict's entries, in order; the top-level object must be a dict of str to tensor.
StatusOr<TensorRefs> StateDictRefsOf(const PickleValue& top) {
  if (top.kind() != Kind::kDict) {
    return InvalidArgumentError(absl::StrCat("top-level object is ", WithArticle(top.TypeName()),
                                             ", expected a state dict (str to tensor)"));
  }
  TensorRefs refs;
  for (const auto& [key, value] : top.AsEntries()) {
    if (key.kind() != Kind::kString) {
      return InvalidArgumentError(
          absl::StrCat("state dict has a key of type ", key.TypeName(), ", expected str"));
    }
    if (value.kind() != Kind::kTensor) {
      return InvalidArgumentError(absl::StrCat(
          "entry '", EscapeForMessage(key.AsString()), "' is ", WithArticle(value.TypeName()),
          ", expected a tensor (a training checkpoint may keep the state dict under a key; "
          "re-save just that)"));
    }
    refs.emplace_back(key.AsString(), value.AsTensor());
  }
  return refs;
}

// A tensor that owns contiguous memory, copied out of `storage` (the bytes of ref's root
// storage).
StatusOr<at::Tensor> MaterializeTensor(const std::string& name, const TorchTensorRef& ref,
                                       const c10::Storage& storage) {
  const c10::ScalarType dtype = ref.storage.root.dtype;
  const auto element_size = static_cast<int64_t>(c10::elementSize(dtype));
  const std::string shown = absl::StrCat("tensor '", EscapeForMessage(name), "'");
  StatusOr<int64_t> spanned = ElementsSpanned(ref);
  if (!spanned.ok()) return Annotate(spanned.status(), shown);
  // The reader checked the view against the storage's declared size; check it again against
  // the bytes actually loaded, which is what the copy below relies on.
  int64_t needed_bytes = 0;
  if (__builtin_add_overflow(ref.storage.view_offset, *spanned, &needed_bytes) ||
      __builtin_mul_overflow(needed_bytes, element_size, &needed_bytes) ||
      static_cast<uint64_t>(needed_bytes) > storage.nbytes()) {
    return DataLossError(absl::StrCat(shown, " reaches past the ", storage.nbytes(),
                                      " bytes of storage '", EscapeForMessage(ref.storage.root.key),
                                      "'"));
  }
  return TorchCall(shown, [&] {
    // Bool bytes other than 0 and 1 are undefined behaviour in LibTorch: read them as
    // bytes and compare.
    const c10::ScalarType view_dtype = dtype == c10::ScalarType::Bool ? at::kByte : dtype;
    at::Tensor view =
        at::empty({0}, at::TensorOptions().dtype(view_dtype))
            .set_(storage, ref.storage.view_offset + ref.storage_offset, ref.sizes, ref.strides);
    at::Tensor owned = view.clone(at::MemoryFormat::Contiguous);
    return dtype == c10::ScalarType::Bool ? owned.ne(0) : owned;
  });
}

// Copies every tensor out of its storage, one storage at a time so that only one is held
// beyond the results, and keeps the state dict's order.
StatusOr<NamedTensors> Materialize(const TensorRefs& refs, const StorageLoader& load) {
  std::map<std::string, std::vector<size_t>> by_storage;
  for (size_t i = 0; i < refs.size(); ++i) {
    by_storage[refs[i].second.storage.root.key].push_back(i);
  }
  NamedTensors out(refs.size());
  for (const auto& [key, indices] : by_storage) {
    DF_ASSIGN_OR_RETURN(c10::Storage storage, load(refs[indices[0]].second.storage.root));
    for (size_t i : indices) {
      DF_ASSIGN_OR_RETURN(at::Tensor tensor,
                          MaterializeTensor(refs[i].first, refs[i].second, storage));
      out[i] = {refs[i].first, std::move(tensor)};
    }
  }
  return out;
}

int64_t StorageBytes(const TorchStorageDecl& decl) {
  // PickleReader refuses a numel whose byte count overflows.
  return decl.numel * static_cast<int64_t>(c10::elementSize(decl.dtype));
}

// Record names are built from storage keys; torch's are decimal numbers.
bool IsPlainRecordKey(const std::string& key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  });
}

StatusOr<NamedTensors> ReadZip(std::string_view bytes) {
  using caffe2::serialize::PyTorchStreamReader;
  DF_ASSIGN_OR_RETURN(
      std::shared_ptr<PyTorchStreamReader> zip,
      TorchCall("not a readable torch.save zip archive", [&] {
        return std::make_shared<PyTorchStreamReader>(std::make_shared<MappedFileAdapter>(bytes));
      }));
  // hasRecord and getRecord throw c10::Error on a corrupt archive.
  auto has_record = [&](const std::string& name) {
    return TorchCall(absl::StrCat("zip record '", name, "'"), [&] { return zip->hasRecord(name); });
  };
  auto get_record = [&](const std::string& name) {
    return TorchCall(absl::StrCat("zip record '", name, "'"), [&] { return zip->getRecord(name); });
  };

  DF_ASSIGN_OR_RETURN(bool is_torchscript, has_record("constants.pkl"));
  if (is_torchscript) {
    return InvalidArgumentError(
        "a TorchScript archive (torch.jit.save), expected a torch.save state dict");
  }
  DF_ASSIGN_OR_RETURN(bool has_byteorder, has_record("byteorder"));
  if (has_byteorder) {
    DF_ASSIGN_OR_RETURN(auto record, get_record("byteorder"));
    const std::string order(static_cast<const char*>(std::get<0>(record).get()),
                            std::get<1>(record));
    if (order != "little") {
      return UnimplementedError(absl::StrCat("byteorder record says '",
                                             EscapeForMessage(order.substr(0, 16)),
                                             "'; only little-endian files are supported"));
    }
  }
  DF_ASSIGN_OR_RETURN(bool has_pickle, has_record("data.pkl"));
  if (!has_pickle) {
    return InvalidArgumentError("zip archive has no data.pkl record; not a torch.save file");
  }
  DF_ASSIGN_OR_RETURN(auto pickle_record, get_record("data.pkl"));
  TensorRefs refs;
  {
    PickleReader reader(std::string_view(static_cast<const char*>(std::get<0>(pickle_record).get()),
                                         std::get<1>(pickle_record)));
    StatusOr<PickleValue> top = reader.ReadNext();
    if (!top.ok()) return Annotate(top.status(), "data.pkl");
    DF_ASSIGN_OR_RETURN(refs, StateDictRefsOf(*top));
  }

  return Materialize(refs, [&](const TorchStorageDecl& decl) -> StatusOr<c10::Storage> {
    if (!IsPlainRecordKey(decl.key)) {
      return InvalidArgumentError(absl::StrCat("storage key '", EscapeForMessage(decl.key),
                                               "' is not a plain record name"));
    }
    const std::string name = absl::StrCat("data/", decl.key);
    DF_ASSIGN_OR_RETURN(bool present, has_record(name));
    if (!present) return DataLossError(absl::StrCat("storage record '", name, "' is missing"));
    DF_ASSIGN_OR_RETURN(auto record, get_record(name));
    // Not a structured binding: C++17 lambdas cannot capture those (clang refuses).
    auto& data = std::get<0>(record);
    const size_t size = std::get<1>(record);
    const int64_t expected = StorageBytes(decl);
    if (size < static_cast<uint64_t>(expected)) {
      return DataLossError(absl::StrCat(
          "storage record '", name, "' has ", size, " bytes, but its persistent id declares ",
          decl.numel, " elements of ", c10::toString(decl.dtype), " (", expected, " bytes)"));
    }
    return TorchCall(absl::StrCat("storage record '", name, "'"), [&] {
      return c10::Storage(c10::Storage::use_byte_size_t(), size, std::move(data),
                          /*allocator=*/nullptr, /*resizable=*/false);
    });
  });
}

StatusOr<NamedTensors> ReadLegacy(std::string_view bytes) {
  PickleReader reader(bytes);
  DF_ASSIGN_OR_RETURN(PickleValue magic, reader.ReadNext());
  if (magic.kind() != Kind::kBigInt || magic.AsString() != kLegacyMagic) {
    return InvalidArgumentError(absl::StrCat("not a torch.save file: its first pickle is ",
                                             WithArticle(magic.TypeName()),
                                             ", not torch's magic number"));
  }
  DF_ASSIGN_OR_RETURN(PickleValue protocol, reader.ReadNext());
  if (protocol.kind() != Kind::kInt || protocol.AsInt() != kLegacyProtocolVersion) {
    return InvalidArgumentError(absl::StrCat(
        "legacy protocol version is ",
        protocol.kind() == Kind::kInt ? std::to_string(protocol.AsInt()) : protocol.TypeName(),
        ", expected ", kLegacyProtocolVersion));
  }
  DF_ASSIGN_OR_RETURN(PickleValue sys_info, reader.ReadNext());
  if (sys_info.kind() != Kind::kDict) {
    return InvalidArgumentError(
        absl::StrCat("sys_info is ", WithArticle(sys_info.TypeName()), ", expected a dict"));
  }
  for (const auto& [key, value] : sys_info.AsEntries()) {
    if (key.kind() == Kind::kString && key.AsString() == "little_endian" &&
        value.kind() == Kind::kBool && !value.AsBool()) {
      return UnimplementedError(
          "saved on a big-endian machine (sys_info little_endian is False); only "
          "little-endian files are supported");
    }
  }
  DF_ASSIGN_OR_RETURN(PickleValue top, reader.ReadNext());
  DF_ASSIGN_OR_RETURN(TensorRefs refs, StateDictRefsOf(top));
  DF_ASSIGN_OR_RETURN(PickleValue key_list, reader.ReadNext());
  if (key_list.kind() != Kind::kList) {
    return InvalidArgumentError(absl::StrCat(
        "storage key list is ", WithArticle(key_list.TypeName()), ", expected a list"));
  }

  // The storages follow in key-list order, each as an int64 element count and the raw
  // bytes. Locate them all first, checking each against its persistent id.
  std::unordered_map<std::string, const TorchStorageDecl*> declared;
  for (const TorchStorageDecl& decl : reader.storages()) declared.emplace(decl.key, &decl);
  std::unordered_map<std::string, std::string_view> located;
  size_t pos = reader.position();
  for (const PickleValue& key_value : key_list.AsItems()) {
    if (key_value.kind() != Kind::kString) {
      return InvalidArgumentError(absl::StrCat(
          "storage key list holds ", WithArticle(key_value.TypeName()), ", expected str"));
    }
    const std::string& key = key_value.AsString();
    const std::string shown = EscapeForMessage(key);
    auto it = declared.find(key);
    if (it == declared.end()) {
      return InvalidArgumentError(
          absl::StrCat("storage key list names '", shown, "', which no persistent id declares"));
    }
    if (located.count(key) != 0) {
      return InvalidArgumentError(absl::StrCat("storage key list names '", shown, "' twice"));
    }
    const TorchStorageDecl& decl = *it->second;
    if (bytes.size() - pos < 8) {
      return DataLossError(absl::StrCat("file ends at byte ", bytes.size(),
                                        " before the element count of storage '", shown, "'"));
    }
    int64_t count = 0;
    std::memcpy(&count, bytes.data() + pos, sizeof(count));  // little-endian, as checked above
    pos += 8;
    if (count != decl.numel) {
      return DataLossError(absl::StrCat("storage '", shown, "' has ", count,
                                        " elements in the file but its persistent id declares ",
                                        decl.numel));
    }
    const auto nbytes = static_cast<uint64_t>(StorageBytes(decl));
    if (nbytes > bytes.size() - pos) {
      return DataLossError(absl::StrCat("storage '", shown, "' needs ", nbytes, " bytes at byte ",
                                        pos, " but the file ends after ", bytes.size() - pos));
    }
    located.emplace(key, bytes.substr(pos, nbytes));
    pos += nbytes;
  }

  return Materialize(refs, [&](const TorchStorageDecl& decl) -> StatusOr<c10::Storage> {
    auto it = located.find(decl.key);
    if (it == located.end()) {
      return DataLossError(absl::StrCat("storage '", EscapeForMessage(decl.key),
                                        "' is not in the file's storage key list"));
    }
    const std::string_view data = it->second;
    // Copied into an aligned buffer: the file offsets of storages have no alignment.
    return TorchCall(absl::StrCat("storage '", EscapeForMessage(decl.key), "'"), [&] {
      at::Tensor buffer = at::empty({static_cast<int64_t>(data.size())}, at::kByte);
      if (!data.empty()) std::memcpy(buffer.data_ptr(), data.data(), data.size());
      return buffer.storage();
    });
  });
}

StatusOr<NamedTensors> ReadCheckpoint(std::string_view bytes) {
  if (bytes.empty()) return InvalidArgumentError("empty file");
  if (bytes.substr(0, 2) == "PK") return ReadZip(bytes);
  // A tar archive's header has "ustar" at byte 257.
  if (bytes.size() > 262 && bytes.substr(257, 5) == "ustar") {
    return UnimplementedError(
        "a tar archive, the checkpoint format of the earliest PyTorch releases, which is not "
        "supported; load it with torch.load and re-save it with a current PyTorch");
  }
  // A pickle that starts with PROTO: the legacy format opens with the magic number pickle.
  if (static_cast<uint8_t>(bytes[0]) == 0x80) {
    StatusOr<NamedTensors> tensors = ReadLegacy(bytes);
    if (!tensors.ok()) return Annotate(tensors.status(), "legacy format");
    return tensors;
  }
  std::string head;
  for (size_t i = 0; i < bytes.size() && i < 4; ++i) {
    absl::StrAppend(&head, i ? " " : "",
                    absl::Hex(static_cast<uint8_t>(bytes[i]), absl::kZeroPad2));
  }
  return InvalidArgumentError(
      absl::StrCat("not a torch.save file (neither a zip archive nor a "
                   "legacy pickle stream; starts with bytes ",
                   head, ")"));
}

}  // namespace

StatusOr<NamedTensors> ReadTorchCheckpoint(const std::string& path) {
  try {
    StatusOr<std::unique_ptr<MappedFile>> file = MappedFile::Open(path);
    if (!file.ok()) return Annotate(file.status(), path);
    StatusOr<NamedTensors> tensors = ReadCheckpoint((*file)->bytes());
    if (!tensors.ok()) return Annotate(tensors.status(), path);
    return tensors;
  } catch (const std::exception& e) {
    // Allocation failures mostly; nothing else here is meant to throw.
    return InternalError(absl::StrCat(path, ": ", BriefTorchMessage(e)));
  }
}

}  // namespace dermfed::model
