// A restricted unpickler for the pickles inside torch.save files. It implements the opcodes
// Python's pickler emits for a state dict (protocols 2 to 5) and refuses every other opcode
// by number; of the globals it knows only those a state dict needs, and refuses any other by
// name. Nothing in a pickle is executed: the few known globals are interpreted here (an
// OrderedDict becomes a dict, _rebuild_tensor_v2 a TorchTensorRef that says where the
// tensor's bytes are), so a hostile file can at worst make the read fail. Every length read
// from the stream is checked against the bytes left, and stack, memo and container growth
// against PickleLimits, before anything is allocated.
//
// Tensor data is not read here: torch.save stores it outside the pickle (zip records or,
// in the legacy format, after the pickles), so the reader returns references to it and the
// caller (checkpoint.cc) copies the bytes.
//
// Not thread-safe: one PickleReader per thread. PickleValues are thread-compatible.
#ifndef DERMFED_COMMON_MODEL_PICKLE_READER_H_
#define DERMFED_COMMON_MODEL_PICKLE_READER_H_

#include <c10/core/ScalarType.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"

namespace dermfed::model {

// A storage as a persistent id declares it: ('storage', torch.<T>Storage, key, location,
// numel[, view_metadata]). Its bytes live outside the pickle: in the zip record
// data/<key>, or in the legacy format after the pickles, in storage-key-list order.
struct TorchStorageDecl {
  std::string key;
  c10::ScalarType dtype = c10::ScalarType::Float;
  int64_t numel = 0;     // elements of dtype
  std::string location;  // where it lived when saved ("cpu", "cuda:0"); we read to the CPU
};

// What a persistent id resolves to: a root storage, or (the legacy format's view_metadata,
// from PyTorch versions that had storage views; 1.13 always writes None) the elements
// [view_offset, view_offset + view_numel) of one.
struct TorchStorageRef {
  TorchStorageDecl root;
  int64_t view_offset = 0;
  int64_t view_numel = 0;  // root.numel when not a view
};

// A tensor as torch._utils._rebuild_tensor_v2 describes it: a strided view of a storage.
// The reader only creates refs that fit their storage (see ElementsSpanned).
struct TorchTensorRef {
  TorchStorageRef storage;
  int64_t storage_offset = 0;  // in elements, from the start of the storage view
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;  // in elements
};

// Elements of its storage view that `ref` reaches, from the view's start: storage_offset +
// 1 + sum((size - 1) * stride), or storage_offset for an empty tensor. Fails on negative
// sizes, strides or offset, mismatched ranks, overflow, or a tensor with more elements than
// its storage view holds (overlapping views, which would let a small file expand into a
// huge tensor).
StatusOr<int64_t> ElementsSpanned(const TorchTensorRef& ref);

// `s` with non-printable bytes escaped (\xNN) and cut short: pickled names and keys are
// untrusted, and end up in error messages.
std::string EscapeForMessage(std::string_view s);

// One value of an unpickled object graph: a Python scalar, str, bytes, tuple, list or dict,
// or one of the torch things above. Copies are cheap and share the data.
class PickleValue {
 public:
  enum class Kind {
    kNone,
    kBool,
    kInt,     // fits int64
    kBigInt,  // LONG1/LONG4 wider than 64 bits; AsString() is its little-endian bytes
    kFloat,
    kString,  // str (and Python 2 BINSTRING)
    kBytes,
    kTuple,
    kList,
    kDict,    // dict or collections.OrderedDict; insertion-ordered either way
    kGlobal,  // one of the allowed globals, see Global
    kStorage,
    kTensor,
  };
  // The globals a state dict needs; no other can be represented.
  enum class Global {
    kOrderedDict,                // collections.OrderedDict
    kRebuildTensorV2,            // torch._utils._rebuild_tensor_v2
    kRebuildParameter,           // torch._utils._rebuild_parameter
    kRebuildParameterWithState,  // torch._utils._rebuild_parameter_with_state
    kStorageType,                // torch.<T>Storage; StorageDtype() says which
  };
  using Items = std::vector<PickleValue>;
  using Entries = std::vector<std::pair<PickleValue, PickleValue>>;

  PickleValue() = default;  // None
  static PickleValue Bool(bool value);
  static PickleValue Int(int64_t value);
  static PickleValue Float(double value);

  Kind kind() const { return kind_; }
  // Python's name for the value's type ("int", "str", "list", "OrderedDict", "tensor"...),
  // for error messages.
  std::string TypeName() const;

  // Each REQUIRES the kind it names.
  bool AsBool() const { return scalar_ != 0; }
  int64_t AsInt() const { return scalar_; }
  double AsFloat() const { return float_; }
  const std::string& AsString() const;  // kString, kBytes, kBigInt
  const Items& AsItems() const;         // kTuple, kList
  const Entries& AsEntries() const;     // kDict
  bool IsOrderedDict() const;           // kDict
  Global AsGlobal() const { return static_cast<Global>(scalar_); }
  c10::ScalarType StorageDtype() const { return dtype_; }
  const TorchStorageRef& AsStorage() const;
  const TorchTensorRef& AsTensor() const;

 private:
  friend class PickleReader;
  struct Sequence;
  struct Dict;
  static PickleValue Text(Kind kind, std::string value);  // kString, kBytes, kBigInt
  static void ReleaseNested(Items* items, Entries* entries);

  Kind kind_ = Kind::kNone;
  int64_t scalar_ = 0;                              // kBool, kInt, kGlobal
  double float_ = 0;                                // kFloat
  c10::ScalarType dtype_ = c10::ScalarType::Float;  // kGlobal kStorageType
  // kString/kBytes/kBigInt: std::string; kTuple/kList: Sequence; kDict: Dict; kStorage:
  // TorchStorageRef; kTensor: TorchTensorRef. Shared, because the memo lets a pickle refer to
  // one object many times. Only the reader mutates, and only lists and dicts, as in Python.
  std::shared_ptr<void> ptr_;
};

// Bounds on what one pickle may make the reader hold. The defaults are far above what a
// state dict of even a large model needs (ResNet-152: 932 tensors, 8,003 memo entries).
struct PickleLimits {
  size_t max_stack = size_t{1} << 20;  // values on the stack, all mark levels together
  size_t max_marks = size_t{1} << 12;  // open MARKs (nesting depth)
  size_t max_memo = size_t{1} << 20;
  // Tuple, list and dict elements made, per reader; storage and tensor refs count by size.
  size_t max_items = size_t{1} << 22;
  size_t max_rank = 64;          // dimensions of a tensor
  size_t max_global_name = 256;  // bytes of a GLOBAL module or name
};

// Reads pickles one after another from `data` (the legacy format is several in a row).
// Values it returns own their data and may outlive the reader. `data` must outlive it.
class PickleReader {
 public:
  explicit PickleReader(std::string_view data, PickleLimits limits = {});
  PickleReader(const PickleReader&) = delete;
  PickleReader& operator=(const PickleReader&) = delete;

  // Reads the pickle that starts at position(), up to and including its STOP; on success
  // position() is just past the STOP. Errors name the opcode and its byte offset in `data`,
  // e.g. "pickle opcode 0x63 (GLOBAL) at byte 42: refusing global 'os.system'".
  StatusOr<PickleValue> ReadNext();

  size_t position() const { return pos_; }

  // Every storage a persistent id declared so far, in order of first appearance. A key
  // declared twice must agree on dtype and numel.
  const std::vector<TorchStorageDecl>& storages() const { return storages_; }

 private:
  Status Step(uint8_t op, bool* stop, PickleValue* result);
  Status Read(size_t n, std::string_view* out);
  template <typename T>
  Status ReadLittleEndian(T* out);
  Status ReadLine(std::string* out);
  Status ReadText(PickleValue::Kind kind, uint64_t length);
  Status ReadLong(uint64_t length);
  Status Push(PickleValue value);
  StatusOr<PickleValue> Pop();
  StatusOr<PickleValue*> Top();
  StatusOr<std::vector<PickleValue>> PopToMark();
  Status Memoize(uint64_t index);
  Status CountItems(size_t n);
  Status ResolveGlobal(const std::string& module, const std::string& name);
  Status Reduce(const PickleValue& callable, const PickleValue& args);
  StatusOr<PickleValue> PersistentLoad(const PickleValue& pid);
  StatusOr<PickleValue> RebuildTensor(const PickleValue::Items& args);
  StatusOr<PickleValue> NewOrderedDict(const PickleValue::Items& args);
  Status CheckShareable(const PickleValue& value);
  Status SetItem(PickleValue& target, PickleValue key, PickleValue value);
  PickleValue NewSequence(PickleValue::Kind kind, std::vector<PickleValue> items);
  PickleValue NewDict(bool ordered);

  std::string_view data_;
  PickleLimits limits_;
  size_t pos_ = 0;
  size_t items_made_ = 0;
  std::vector<PickleValue> stack_;
  std::vector<size_t> marks_;  // stack sizes at each open MARK
  std::unordered_map<uint64_t, PickleValue> memo_;
  std::vector<TorchStorageDecl> storages_;
  std::unordered_map<std::string, size_t> storage_index_;
};

}  // namespace dermfed::model

#endif  // DERMFED_COMMON_MODEL_PICKLE_READER_H_
