#include "common/model/pickle_reader.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <type_traits>

#include "absl/strings/str_cat.h"

namespace dermfed::model {

struct PickleValue::Sequence {
  ~Sequence();
  Items items;
};

// Insertion-ordered like a Python 3 dict. Only the key types a state dict or torch's
// sys_info can use are hashable here; the indexes view the keys' strings, which the entries
// own and never change.
struct PickleValue::Dict {
  bool ordered = false;
  Entries entries;
  std::unordered_map<std::string_view, size_t> str_index;
  std::unordered_map<std::string_view, size_t> bytes_index;
  std::unordered_map<int64_t, size_t> int_index;  // int and bool, which Python treats alike
  size_t none_index = std::numeric_limits<size_t>::max();

  ~Dict();
};

namespace {

bool IsContainer(PickleValue::Kind kind) {
  return kind == PickleValue::Kind::kTuple || kind == PickleValue::Kind::kList ||
         kind == PickleValue::Kind::kDict;
}

}  // namespace

// Destroying [[[...]]] recursively would take one stack frame per level, and a pickle can
// nest a million levels in a megabyte. So a dying container first moves out every container
// it alone owns, and empties those one at a time, before letting them go.
void PickleValue::ReleaseNested(Items* items, Entries* entries) {
  std::vector<PickleValue> pending;
  auto take = [&pending](PickleValue& v) {
    if (IsContainer(v.kind_) && v.ptr_.use_count() == 1) pending.push_back(std::move(v));
  };
  if (items) {
    for (auto& v : *items) take(v);
  }
  if (entries) {
    for (auto& [key, value] : *entries) take(value);  // keys are never containers
  }
  while (!pending.empty()) {
    PickleValue v = std::move(pending.back());
    pending.pop_back();
    if (v.kind_ == Kind::kDict) {
      for (auto& [key, value] : static_cast<Dict*>(v.ptr_.get())->entries) take(value);
    } else {
      for (auto& item : static_cast<Sequence*>(v.ptr_.get())->items) take(item);
    }
  }  // each `v` dies here holding no container it alone owns
}

PickleValue::Sequence::~Sequence() { ReleaseNested(&items, nullptr); }
PickleValue::Dict::~Dict() { ReleaseNested(nullptr, &entries); }

namespace {

using Kind = PickleValue::Kind;

// Pickle opcodes, as named in CPython's Lib/pickle.py.
enum Opcode : uint8_t {
  kOpMark = '(',
  kOpStop = '.',
  kOpPop = '0',
  kOpPopMark = '1',
  kOpDup = '2',
  kOpFloat = 'F',
  kOpInt = 'I',
  kOpBinInt = 'J',
  kOpBinInt1 = 'K',
  kOpLong = 'L',
  kOpBinInt2 = 'M',
  kOpNone = 'N',
  kOpPersId = 'P',
  kOpBinPersId = 'Q',
  kOpReduce = 'R',
  kOpString = 'S',
  kOpBinString = 'T',
  kOpShortBinString = 'U',
  kOpUnicode = 'V',
  kOpBinUnicode = 'X',
  kOpAppend = 'a',
  kOpBuild = 'b',
  kOpGlobal = 'c',
  kOpDict = 'd',
  kOpEmptyDict = '}',
  kOpAppends = 'e',
  kOpGet = 'g',
  kOpBinGet = 'h',
  kOpInst = 'i',
  kOpLongBinGet = 'j',
  kOpList = 'l',
  kOpEmptyList = ']',
  kOpObj = 'o',
  kOpPut = 'p',
  kOpBinPut = 'q',
  kOpLongBinPut = 'r',
  kOpSetItem = 's',
  kOpTuple = 't',
  kOpEmptyTuple = ')',
  kOpSetItems = 'u',
  kOpBinFloat = 'G',
  kOpBinBytes = 'B',
  kOpShortBinBytes = 'C',
  kOpProto = 0x80,
  kOpNewObj = 0x81,
  kOpExt1 = 0x82,
  kOpExt2 = 0x83,
  kOpExt4 = 0x84,
  kOpTuple1 = 0x85,
  kOpTuple2 = 0x86,
  kOpTuple3 = 0x87,
  kOpNewTrue = 0x88,
  kOpNewFalse = 0x89,
  kOpLong1 = 0x8a,
  kOpLong4 = 0x8b,
  kOpShortBinUnicode = 0x8c,
  kOpBinUnicode8 = 0x8d,
  kOpBinBytes8 = 0x8e,
  kOpEmptySet = 0x8f,
  kOpAddItems = 0x90,
  kOpFrozenSet = 0x91,
  kOpNewObjEx = 0x92,
  kOpStackGlobal = 0x93,
  kOpMemoize = 0x94,
  kOpFrame = 0x95,
  kOpByteArray8 = 0x96,
  kOpNextBuffer = 0x97,
  kOpReadOnlyBuffer = 0x98,
};

// Name of a pickle opcode, implemented or not; nullptr for a byte that is none.
const char* OpcodeName(uint8_t op) {
  switch (op) {
    // clang-format off
    case kOpMark: return "MARK";
    case kOpStop: return "STOP";
    case kOpPop: return "POP";
    case kOpPopMark: return "POP_MARK";
    case kOpDup: return "DUP";
    case kOpFloat: return "FLOAT";
    case kOpInt: return "INT";
    case kOpBinInt: return "BININT";
    case kOpBinInt1: return "BININT1";
    case kOpLong: return "LONG";
    case kOpBinInt2: return "BININT2";
    case kOpNone: return "NONE";
    case kOpPersId: return "PERSID";
    case kOpBinPersId: return "BINPERSID";
    case kOpReduce: return "REDUCE";
    case kOpString: return "STRING";
    case kOpBinString: return "BINSTRING";
    case kOpShortBinString: return "SHORT_BINSTRING";
    case kOpUnicode: return "UNICODE";
    case kOpBinUnicode: return "BINUNICODE";
    case kOpAppend: return "APPEND";
    case kOpBuild: return "BUILD";
    case kOpGlobal: return "GLOBAL";
    case kOpDict: return "DICT";
    case kOpEmptyDict: return "EMPTY_DICT";
    case kOpAppends: return "APPENDS";
    case kOpGet: return "GET";
    case kOpBinGet: return "BINGET";
    case kOpInst: return "INST";
    case kOpLongBinGet: return "LONG_BINGET";
    case kOpList: return "LIST";
    case kOpEmptyList: return "EMPTY_LIST";
    case kOpObj: return "OBJ";
    case kOpPut: return "PUT";
    case kOpBinPut: return "BINPUT";
    case kOpLongBinPut: return "LONG_BINPUT";
    case kOpSetItem: return "SETITEM";
    case kOpTuple: return "TUPLE";
    case kOpEmptyTuple: return "EMPTY_TUPLE";
    case kOpSetItems: return "SETITEMS";
    case kOpBinFloat: return "BINFLOAT";
    case kOpBinBytes: return "BINBYTES";
    case kOpShortBinBytes: return "SHORT_BINBYTES";
    case kOpProto: return "PROTO";
    case kOpNewObj: return "NEWOBJ";
    case kOpExt1: return "EXT1";
    case kOpExt2: return "EXT2";
    case kOpExt4: return "EXT4";
    case kOpTuple1: return "TUPLE1";
    case kOpTuple2: return "TUPLE2";
    case kOpTuple3: return "TUPLE3";
    case kOpNewTrue: return "NEWTRUE";
    case kOpNewFalse: return "NEWFALSE";
    case kOpLong1: return "LONG1";
    case kOpLong4: return "LONG4";
    case kOpShortBinUnicode: return "SHORT_BINUNICODE";
    case kOpBinUnicode8: return "BINUNICODE8";
    case kOpBinBytes8: return "BINBYTES8";
    case kOpEmptySet: return "EMPTY_SET";
    case kOpAddItems: return "ADDITEMS";
    case kOpFrozenSet: return "FROZENSET";
    case kOpNewObjEx: return "NEWOBJ_EX";
    case kOpStackGlobal: return "STACK_GLOBAL";
    case kOpMemoize: return "MEMOIZE";
    case kOpFrame: return "FRAME";
    case kOpByteArray8: return "BYTEARRAY8";
    case kOpNextBuffer: return "NEXT_BUFFER";
    case kOpReadOnlyBuffer: return "READONLY_BUFFER";
    default: return nullptr;
      // clang-format on
  }
}

}  // namespace

std::string EscapeForMessage(std::string_view s) {
  constexpr size_t kMaxShown = 120;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > kMaxShown) absl::StrAppend(&out, "... (", s.size(), " bytes)");
  return out;
}

namespace {

// The storage classes torch.save names in persistent ids (TypedStorage.pickle_storage_type).
struct StorageTypeName {
  const char* name;
  c10::ScalarType dtype;
};
constexpr StorageTypeName kStorageTypes[] = {
    {"FloatStorage", c10::ScalarType::Float}, {"DoubleStorage", c10::ScalarType::Double},
    {"HalfStorage", c10::ScalarType::Half},   {"BFloat16Storage", c10::ScalarType::BFloat16},
    {"LongStorage", c10::ScalarType::Long},   {"IntStorage", c10::ScalarType::Int},
    {"ShortStorage", c10::ScalarType::Short}, {"CharStorage", c10::ScalarType::Char},
    {"ByteStorage", c10::ScalarType::Byte},   {"BoolStorage", c10::ScalarType::Bool},
};

std::string StorageTypeString(c10::ScalarType dtype) {
  for (const auto& t : kStorageTypes) {
    if (t.dtype == dtype) return t.name;
  }
  return absl::StrCat(c10::toString(dtype), "Storage");
}

// Limits on strings a persistent id or dict key may carry; torch's are a few bytes. Without
// them, a memoized huge string could be copied into every storage ref or hashed per insert.
constexpr size_t kMaxStorageKeyBytes = 256;
constexpr size_t kMaxDictKeyBytes = 1024;

bool IsText(const PickleValue& v) { return v.kind() == Kind::kString || v.kind() == Kind::kBytes; }

bool IsEmptyDictOrNone(const PickleValue& v) {
  return v.kind() == Kind::kNone || (v.kind() == Kind::kDict && v.AsEntries().empty());
}

std::string ShapeString(const std::vector<int64_t>& dims) {
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); ++i) absl::StrAppend(&out, i ? ", " : "", dims[i]);
  return out + "]";
}

}  // namespace

StatusOr<int64_t> ElementsSpanned(const TorchTensorRef& ref) {
  const int64_t view_numel = ref.storage.view_numel;
  if (ref.sizes.size() != ref.strides.size()) {
    return InvalidArgumentError(absl::StrCat(
        "size ", ShapeString(ref.sizes), " has ", ref.sizes.size(), " dimensions but stride ",
        ShapeString(ref.strides), " has ", ref.strides.size()));
  }
  if (ref.storage_offset < 0) {
    return InvalidArgumentError(absl::StrCat("negative storage offset ", ref.storage_offset));
  }
  bool empty = false;
  int64_t numel = 1;
  for (size_t i = 0; i < ref.sizes.size(); ++i) {
    if (ref.sizes[i] < 0 || ref.strides[i] < 0) {
      return InvalidArgumentError(absl::StrCat("negative size or stride: size ",
                                               ShapeString(ref.sizes), ", stride ",
                                               ShapeString(ref.strides)));
    }
    if (ref.sizes[i] == 0) empty = true;
  }
  if (empty) {
    if (ref.storage_offset > view_numel) {
      return OutOfRangeError(absl::StrCat("storage offset ", ref.storage_offset,
                                          " is past the end of a storage of ", view_numel,
                                          " elements"));
    }
    return ref.storage_offset;
  }
  int64_t last = ref.storage_offset;  // index of the last element the view reaches
  for (size_t i = 0; i < ref.sizes.size(); ++i) {
    int64_t reach = 0;
    if (__builtin_mul_overflow(ref.sizes[i], numel, &numel) ||
        __builtin_mul_overflow(ref.sizes[i] - 1, ref.strides[i], &reach) ||
        __builtin_add_overflow(last, reach, &last)) {
      return OutOfRangeError(absl::StrCat("size ", ShapeString(ref.sizes), " with stride ",
                                          ShapeString(ref.strides), " and offset ",
                                          ref.storage_offset, " overflows 64 bits"));
    }
  }
  if (last >= view_numel) {
    return OutOfRangeError(absl::StrCat(
        "size ", ShapeString(ref.sizes), ", stride ", ShapeString(ref.strides), ", offset ",
        ref.storage_offset, " reach element ", last, " of a storage of ", view_numel, " elements"));
  }
  if (numel > view_numel) {
    return InvalidArgumentError(absl::StrCat(
        "size ", ShapeString(ref.sizes), " (", numel, " elements) overlaps itself in a storage of ",
        view_numel, " elements; overlapping views are not supported"));
  }
  return last + 1;
}

std::string PickleValue::TypeName() const {
  switch (kind_) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
    case Kind::kBigInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kBytes:
      return "bytes";
    case Kind::kTuple:
      return "tuple";
    case Kind::kList:
      return "list";
    case Kind::kDict:
      return IsOrderedDict() ? "OrderedDict" : "dict";
    case Kind::kGlobal:
      return "class or function";
    case Kind::kStorage:
      return "storage";
    case Kind::kTensor:
      return "tensor";
  }
  return "unknown";
}

const std::string& PickleValue::AsString() const {
  return *static_cast<const std::string*>(ptr_.get());
}
const PickleValue::Items& PickleValue::AsItems() const {
  return static_cast<const Sequence*>(ptr_.get())->items;
}
const PickleValue::Entries& PickleValue::AsEntries() const {
  return static_cast<const Dict*>(ptr_.get())->entries;
}
bool PickleValue::IsOrderedDict() const { return static_cast<const Dict*>(ptr_.get())->ordered; }
const TorchStorageRef& PickleValue::AsStorage() const {
  return *static_cast<const TorchStorageRef*>(ptr_.get());
}
const TorchTensorRef& PickleValue::AsTensor() const {
  return *static_cast<const TorchTensorRef*>(ptr_.get());
}

PickleValue PickleValue::Bool(bool value) {
  PickleValue v;
  v.kind_ = Kind::kBool;
  v.scalar_ = value ? 1 : 0;
  return v;
}
PickleValue PickleValue::Int(int64_t value) {
  PickleValue v;
  v.kind_ = Kind::kInt;
  v.scalar_ = value;
  return v;
}
PickleValue PickleValue::Float(double value) {
  PickleValue v;
  v.kind_ = Kind::kFloat;
  v.float_ = value;
  return v;
}
PickleValue PickleValue::Text(Kind kind, std::string value) {
  PickleValue v;
  v.kind_ = kind;
  v.ptr_ = std::make_shared<std::string>(std::move(value));
  return v;
}

PickleReader::PickleReader(std::string_view data, PickleLimits limits)
    : data_(data), limits_(limits) {}

StatusOr<PickleValue> PickleReader::ReadNext() {
  stack_.clear();
  marks_.clear();
  memo_.clear();
  const size_t start = pos_;
  if (pos_ >= data_.size()) {
    return DataLossError(absl::StrCat("expected a pickle at byte ", pos_, ", found end of data"));
  }
  while (true) {
    const size_t op_pos = pos_;
    if (pos_ >= data_.size()) {
      return DataLossError(absl::StrCat("pickle starting at byte ", start, " ends at byte ", pos_,
                                        " without a STOP opcode"));
    }
    const auto op = static_cast<uint8_t>(data_[pos_++]);
    bool stop = false;
    PickleValue result;
    Status status = Step(op, &stop, &result);
    if (!status.ok()) {
      char code[8];
      std::snprintf(code, sizeof(code), "0x%02x", op);
      const char* name = OpcodeName(op);
      return Status(status.code(),
                    absl::StrCat("pickle opcode ", code, name ? absl::StrCat(" (", name, ")") : "",
                                 " at byte ", op_pos, ": ", status.message()));
    }
    if (stop) {
      stack_.clear();
      memo_.clear();
      return result;
    }
  }
}

Status PickleReader::Read(size_t n, std::string_view* out) {
  const size_t left = data_.size() - pos_;
  if (n > left) {
    return DataLossError(absl::StrCat("needs ", n, " more bytes but the data ends after ", left));
  }
  *out = data_.substr(pos_, n);
  pos_ += n;
  return OkStatus();
}

template <typename T>
Status PickleReader::ReadLittleEndian(T* out) {
  std::string_view bytes;
  DF_RETURN_IF_ERROR(Read(sizeof(T), &bytes));
  uint64_t value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    value |= uint64_t{static_cast<uint8_t>(bytes[i])} << (8 * i);
  }
  using Unsigned = std::make_unsigned_t<T>;
  const auto narrowed = static_cast<Unsigned>(value);
  std::memcpy(out, &narrowed, sizeof(T));
  return OkStatus();
}

Status PickleReader::ReadLine(std::string* out) {
  const size_t limit = std::min(data_.size() - pos_, limits_.max_global_name + 1);
  const size_t nl = data_.substr(pos_, limit).find('\n');
  if (nl == std::string_view::npos) {
    return InvalidArgumentError(absl::StrCat("no newline within ", limits_.max_global_name,
                                             " bytes (or before the end of data)"));
  }
  out->assign(data_.substr(pos_, nl));
  pos_ += nl + 1;
  return OkStatus();
}

Status PickleReader::ReadText(PickleValue::Kind kind, uint64_t length) {
  const size_t left = data_.size() - pos_;
  if (length > left) {
    return DataLossError(
        absl::StrCat("declares a length of ", length, " bytes but only ", left, " bytes are left"));
  }
  std::string_view bytes;
  DF_RETURN_IF_ERROR(Read(static_cast<size_t>(length), &bytes));
  return Push(PickleValue::Text(kind, std::string(bytes)));
}

Status PickleReader::ReadLong(uint64_t length) {
  const size_t left = data_.size() - pos_;
  if (length > left) {
    return DataLossError(
        absl::StrCat("declares a length of ", length, " bytes but only ", left, " bytes are left"));
  }
  std::string_view bytes;
  DF_RETURN_IF_ERROR(Read(static_cast<size_t>(length), &bytes));
  if (length > 8) return Push(PickleValue::Text(Kind::kBigInt, std::string(bytes)));
  // Little-endian two's complement; an empty encoding is 0.
  uint64_t value = 0;
  for (size_t i = 0; i < length; ++i) {
    value |= uint64_t{static_cast<uint8_t>(bytes[i])} << (8 * i);
  }
  if (length > 0 && length < 8 && (static_cast<uint8_t>(bytes[length - 1]) & 0x80)) {
    value |= ~uint64_t{0} << (8 * length);
  }
  return Push(PickleValue::Int(static_cast<int64_t>(value)));
}

Status PickleReader::Push(PickleValue value) {
  if (stack_.size() >= limits_.max_stack) {
    return absl::ResourceExhaustedError(
        absl::StrCat("stack would exceed ", limits_.max_stack, " values"));
  }
  stack_.push_back(std::move(value));
  return OkStatus();
}

StatusOr<PickleValue> PickleReader::Pop() {
  const size_t floor = marks_.empty() ? 0 : marks_.back();
  if (stack_.size() <= floor) return InvalidArgumentError("stack underflow");
  PickleValue v = std::move(stack_.back());
  stack_.pop_back();
  return v;
}

StatusOr<PickleValue*> PickleReader::Top() {
  const size_t floor = marks_.empty() ? 0 : marks_.back();
  if (stack_.size() <= floor) return InvalidArgumentError("stack underflow");
  return &stack_.back();
}

StatusOr<std::vector<PickleValue>> PickleReader::PopToMark() {
  if (marks_.empty()) return InvalidArgumentError("no MARK on the stack");
  const size_t mark = marks_.back();
  marks_.pop_back();
  std::vector<PickleValue> items(std::make_move_iterator(stack_.begin() + mark),
                                 std::make_move_iterator(stack_.end()));
  stack_.resize(mark);
  return items;
}

Status PickleReader::Memoize(uint64_t index) {
  DF_ASSIGN_OR_RETURN(PickleValue * top, Top());
  auto it = memo_.find(index);
  if (it != memo_.end()) {
    it->second = *top;
    return OkStatus();
  }
  if (memo_.size() >= limits_.max_memo) {
    return absl::ResourceExhaustedError(
        absl::StrCat("memo would exceed ", limits_.max_memo, " entries"));
  }
  memo_.emplace(index, *top);
  return OkStatus();
}

Status PickleReader::CountItems(size_t n) {
  if (n > limits_.max_items - items_made_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("more than ", limits_.max_items, " container elements"));
  }
  items_made_ += n;
  return OkStatus();
}

// A second reference to a list or dict is what a reference cycle needs (see the header), and
// a state dict never has one.
Status PickleReader::CheckShareable(const PickleValue& value) {
  if (value.kind() == Kind::kList || value.kind() == Kind::kDict) {
    return InvalidArgumentError(absl::StrCat("a second reference to a ", value.TypeName(),
                                             " (shared or recursive containers are not "
                                             "supported)"));
  }
  return OkStatus();
}

PickleValue PickleReader::NewSequence(PickleValue::Kind kind, std::vector<PickleValue> items) {
  auto seq = std::make_shared<PickleValue::Sequence>();
  seq->items = std::move(items);
  PickleValue v;
  v.kind_ = kind;
  v.ptr_ = std::move(seq);
  return v;
}

PickleValue PickleReader::NewDict(bool ordered) {
  auto dict = std::make_shared<PickleValue::Dict>();
  dict->ordered = ordered;
  PickleValue v;
  v.kind_ = Kind::kDict;
  v.ptr_ = std::move(dict);
  return v;
}

Status PickleReader::SetItem(PickleValue& target, PickleValue key, PickleValue value) {
  if (target.kind() != Kind::kDict) {
    return InvalidArgumentError(
        absl::StrCat("setting an item of a ", target.TypeName(), ", expected a dict"));
  }
  auto& dict = *static_cast<PickleValue::Dict*>(target.ptr_.get());
  switch (key.kind()) {
    case Kind::kString:
    case Kind::kBytes: {
      const std::string& text = key.AsString();
      if (text.size() > kMaxDictKeyBytes) {
        return InvalidArgumentError(absl::StrCat("dict key of ", text.size(), " bytes; at most ",
                                                 kMaxDictKeyBytes, " are supported"));
      }
      auto& index = key.kind() == Kind::kString ? dict.str_index : dict.bytes_index;
      auto it = index.find(text);
      if (it != index.end()) {
        dict.entries[it->second].second = std::move(value);
        return OkStatus();
      }
      DF_RETURN_IF_ERROR(CountItems(1));
      // The view points into the key's shared string, which the entry keeps alive.
      index.emplace(std::string_view(text), dict.entries.size());
      dict.entries.emplace_back(std::move(key), std::move(value));
      return OkStatus();
    }
    case Kind::kInt:
    case Kind::kBool: {
      auto it = dict.int_index.find(key.AsInt());
      if (it != dict.int_index.end()) {
        dict.entries[it->second].second = std::move(value);
        return OkStatus();
      }
      DF_RETURN_IF_ERROR(CountItems(1));
      dict.int_index.emplace(key.AsInt(), dict.entries.size());
      dict.entries.emplace_back(std::move(key), std::move(value));
      return OkStatus();
    }
    case Kind::kNone:
      if (dict.none_index != std::numeric_limits<size_t>::max()) {
        dict.entries[dict.none_index].second = std::move(value);
        return OkStatus();
      }
      DF_RETURN_IF_ERROR(CountItems(1));
      dict.none_index = dict.entries.size();
      dict.entries.emplace_back(std::move(key), std::move(value));
      return OkStatus();
    default:
      return InvalidArgumentError(
          absl::StrCat("dict key of type ", key.TypeName(), " is not supported"));
  }
}

Status PickleReader::ResolveGlobal(const std::string& module, const std::string& name) {
  PickleValue v;
  v.kind_ = Kind::kGlobal;
  using Global = PickleValue::Global;
  if (module == "collections" && name == "OrderedDict") {
    v.scalar_ = static_cast<int64_t>(Global::kOrderedDict);
    return Push(std::move(v));
  }
  if (module == "torch._utils") {
    if (name == "_rebuild_tensor_v2") {
      v.scalar_ = static_cast<int64_t>(Global::kRebuildTensorV2);
      return Push(std::move(v));
    }
    if (name == "_rebuild_parameter") {
      v.scalar_ = static_cast<int64_t>(Global::kRebuildParameter);
      return Push(std::move(v));
    }
    if (name == "_rebuild_parameter_with_state") {
      v.scalar_ = static_cast<int64_t>(Global::kRebuildParameterWithState);
      return Push(std::move(v));
    }
  }
  // PyTorch before 1.12 named a CUDA tensor's storage torch.cuda.<T>Storage; torch.load maps
  // any *Storage name to its dtype, and so do we (the data is read to the CPU either way).
  if (module == "torch" || module == "torch.cuda") {
    for (const auto& t : kStorageTypes) {
      if (name == t.name) {
        v.scalar_ = static_cast<int64_t>(Global::kStorageType);
        v.dtype_ = t.dtype;
        return Push(std::move(v));
      }
    }
  }
  return InvalidArgumentError(absl::StrCat(
      "refusing global '", EscapeForMessage(module), ".", EscapeForMessage(name),
      "' (a state dict needs only collections.OrderedDict, torch._utils._rebuild_tensor_v2, "
      "torch._utils._rebuild_parameter and torch.<T>Storage)"));
}

StatusOr<PickleValue> PickleReader::PersistentLoad(const PickleValue& pid) {
  if (pid.kind() != Kind::kTuple || pid.AsItems().empty() || !IsText(pid.AsItems()[0])) {
    return InvalidArgumentError(absl::StrCat("persistent id is a ", pid.TypeName(),
                                             ", expected a tuple starting with a str"));
  }
  const auto& items = pid.AsItems();
  const std::string& type = items[0].AsString();
  if (type == "module") {
    return InvalidArgumentError(
        "persistent id of a pickled nn.Module class: this is a whole model saved with "
        "torch.save(model), expected a state dict (torch.save(model.state_dict()))");
  }
  if (type != "storage") {
    return InvalidArgumentError(
        absl::StrCat("persistent id of type '", EscapeForMessage(type), "', expected 'storage'"));
  }
  if (items.size() != 5 && items.size() != 6) {
    return InvalidArgumentError(absl::StrCat("storage persistent id has ", items.size(),
                                             " elements, expected 5 (zip) or 6 (legacy)"));
  }
  const PickleValue& type_value = items[1];
  if (type_value.kind() != Kind::kGlobal ||
      type_value.AsGlobal() != PickleValue::Global::kStorageType) {
    return InvalidArgumentError(absl::StrCat("storage type in persistent id is a ",
                                             type_value.TypeName(), ", expected torch.<T>Storage"));
  }
  if (!IsText(items[2]) || !IsText(items[3]) || items[4].kind() != Kind::kInt) {
    return InvalidArgumentError(absl::StrCat(
        "storage persistent id has (", items[2].TypeName(), ", ", items[3].TypeName(), ", ",
        items[4].TypeName(), ") for (key, location, numel), expected (str, str, int)"));
  }
  TorchStorageDecl decl;
  decl.key = items[2].AsString();
  decl.location = items[3].AsString();
  decl.dtype = type_value.StorageDtype();
  decl.numel = items[4].AsInt();
  if (decl.key.empty() || decl.key.size() > kMaxStorageKeyBytes ||
      decl.location.size() > kMaxStorageKeyBytes) {
    return InvalidArgumentError(absl::StrCat("storage key '", EscapeForMessage(decl.key),
                                             "' or location '", EscapeForMessage(decl.location),
                                             "' is empty or longer than ", kMaxStorageKeyBytes,
                                             " bytes"));
  }
  int64_t nbytes = 0;
  if (decl.numel < 0 ||
      __builtin_mul_overflow(decl.numel, static_cast<int64_t>(c10::elementSize(decl.dtype)),
                             &nbytes)) {
    return InvalidArgumentError(absl::StrCat("storage '", EscapeForMessage(decl.key), "' declares ",
                                             decl.numel, " elements"));
  }
  auto known = storage_index_.find(decl.key);
  if (known != storage_index_.end()) {
    const TorchStorageDecl& first = storages_[known->second];
    if (first.dtype != decl.dtype || first.numel != decl.numel) {
      return InvalidArgumentError(absl::StrCat(
          "storage '", EscapeForMessage(decl.key), "' is declared as ",
          StorageTypeString(decl.dtype), " of ", decl.numel, " elements, but earlier as ",
          StorageTypeString(first.dtype), " of ", first.numel));
    }
  } else {
    storage_index_.emplace(decl.key, storages_.size());
    storages_.push_back(decl);
  }

  auto ref = std::make_shared<TorchStorageRef>();
  ref->root = std::move(decl);
  ref->view_offset = 0;
  ref->view_numel = ref->root.numel;
  if (items.size() == 6 && items[5].kind() != Kind::kNone) {
    // view_metadata = (view_key, offset, size), in elements of the root storage.
    const PickleValue& view = items[5];
    int64_t end = 0;
    if (view.kind() != Kind::kTuple || view.AsItems().size() != 3 ||
        view.AsItems()[1].kind() != Kind::kInt || view.AsItems()[2].kind() != Kind::kInt ||
        view.AsItems()[1].AsInt() < 0 || view.AsItems()[2].AsInt() < 0 ||
        __builtin_add_overflow(view.AsItems()[1].AsInt(), view.AsItems()[2].AsInt(), &end) ||
        end > ref->root.numel) {
      return InvalidArgumentError(
          absl::StrCat("storage '", EscapeForMessage(ref->root.key), "' of ", ref->root.numel,
                       " elements has view metadata that is not (key, offset, size) within it"));
    }
    ref->view_offset = view.AsItems()[1].AsInt();
    ref->view_numel = view.AsItems()[2].AsInt();
  }
  // A ref holds two short strings; count it so a pickle cannot make millions of them.
  DF_RETURN_IF_ERROR(CountItems(8));
  PickleValue v;
  v.kind_ = Kind::kStorage;
  v.ptr_ = std::move(ref);
  return v;
}

// Python 3 pickles an OrderedDict as OrderedDict() followed by SETITEMS; Python 2 (old
// legacy-format checkpoints) as OrderedDict([[key, value], ...]).
StatusOr<PickleValue> PickleReader::NewOrderedDict(const PickleValue::Items& args) {
  PickleValue dict = NewDict(/*ordered=*/true);
  if (args.empty()) return dict;
  const bool pairs_arg =
      args.size() == 1 && (args[0].kind() == Kind::kList || args[0].kind() == Kind::kTuple);
  if (!pairs_arg) {
    return InvalidArgumentError(absl::StrCat("collections.OrderedDict called with ", args.size(),
                                             " arguments, expected none or a list of pairs"));
  }
  for (const PickleValue& pair : args[0].AsItems()) {
    if ((pair.kind() != Kind::kList && pair.kind() != Kind::kTuple) || pair.AsItems().size() != 2) {
      return InvalidArgumentError(absl::StrCat("collections.OrderedDict called with a ",
                                               pair.TypeName(), " among its pairs"));
    }
    DF_RETURN_IF_ERROR(SetItem(dict, pair.AsItems()[0], pair.AsItems()[1]));
  }
  return dict;
}

StatusOr<PickleValue> PickleReader::RebuildTensor(const PickleValue::Items& args) {
  if (args.size() != 6 && args.size() != 7) {
    return InvalidArgumentError(absl::StrCat("_rebuild_tensor_v2 called with ", args.size(),
                                             " arguments, expected 6 or 7"));
  }
  if (args[0].kind() != Kind::kStorage || args[1].kind() != Kind::kInt ||
      args[2].kind() != Kind::kTuple || args[3].kind() != Kind::kTuple ||
      args[4].kind() != Kind::kBool) {
    return InvalidArgumentError(absl::StrCat(
        "_rebuild_tensor_v2 called with (", args[0].TypeName(), ", ", args[1].TypeName(), ", ",
        args[2].TypeName(), ", ", args[3].TypeName(), ", ", args[4].TypeName(),
        ", ...), expected (storage, int, tuple, tuple, bool, ...)"));
  }
  // Backward hooks are never serialized (torch writes an empty OrderedDict); metadata holds
  // Python attributes of the tensor, which a state dict does not need.
  if (!IsEmptyDictOrNone(args[5])) {
    return InvalidArgumentError("_rebuild_tensor_v2 called with backward hooks");
  }
  if (args.size() == 7 && args[6].kind() != Kind::kNone && args[6].kind() != Kind::kDict) {
    return InvalidArgumentError(
        absl::StrCat("_rebuild_tensor_v2 metadata is a ", args[6].TypeName(), ", expected a dict"));
  }
  const auto& size = args[2].AsItems();
  const auto& stride = args[3].AsItems();
  if (size.size() > limits_.max_rank || stride.size() > limits_.max_rank) {
    return InvalidArgumentError(absl::StrCat("tensor of ", size.size(), " dimensions; at most ",
                                             limits_.max_rank, " are supported"));
  }
  auto ref = std::make_shared<TorchTensorRef>();
  ref->storage = args[0].AsStorage();
  ref->storage_offset = args[1].AsInt();
  for (const PickleValue& d : size) {
    if (d.kind() != Kind::kInt) {
      return InvalidArgumentError(absl::StrCat("tensor size holds a ", d.TypeName()));
    }
    ref->sizes.push_back(d.AsInt());
  }
  for (const PickleValue& d : stride) {
    if (d.kind() != Kind::kInt) {
      return InvalidArgumentError(absl::StrCat("tensor stride holds a ", d.TypeName()));
    }
    ref->strides.push_back(d.AsInt());
  }
  DF_RETURN_IF_ERROR(CountItems(8 + size.size() + stride.size()));
  StatusOr<int64_t> spanned = ElementsSpanned(*ref);
  if (!spanned.ok()) {
    return Annotate(spanned.status(), absl::StrCat("tensor in storage '",
                                                   EscapeForMessage(ref->storage.root.key), "'"));
  }
  PickleValue v;
  v.kind_ = Kind::kTensor;
  v.ptr_ = std::move(ref);
  return v;
}

Status PickleReader::Reduce(const PickleValue& callable, const PickleValue& args) {
  if (callable.kind() != Kind::kGlobal) {
    return InvalidArgumentError(absl::StrCat("calling a ", callable.TypeName()));
  }
  if (args.kind() != Kind::kTuple) {
    return InvalidArgumentError(
        absl::StrCat("call arguments are a ", args.TypeName(), ", expected a tuple"));
  }
  const auto& items = args.AsItems();
  switch (callable.AsGlobal()) {
    case PickleValue::Global::kOrderedDict: {
      DF_ASSIGN_OR_RETURN(PickleValue dict, NewOrderedDict(items));
      return Push(std::move(dict));
    }
    case PickleValue::Global::kRebuildTensorV2: {
      DF_ASSIGN_OR_RETURN(PickleValue tensor, RebuildTensor(items));
      return Push(std::move(tensor));
    }
    case PickleValue::Global::kRebuildParameter:
    case PickleValue::Global::kRebuildParameterWithState: {
      // (data, requires_grad, backward_hooks[, state]): a Parameter is its data for us; the
      // state holds Python attributes, which a state dict does not need.
      const bool with_state =
          callable.AsGlobal() == PickleValue::Global::kRebuildParameterWithState;
      const size_t expected = with_state ? 4 : 3;
      if (items.size() != expected || items[0].kind() != Kind::kTensor ||
          items[1].kind() != Kind::kBool || !IsEmptyDictOrNone(items[2])) {
        return InvalidArgumentError(absl::StrCat(
            with_state ? "_rebuild_parameter_with_state" : "_rebuild_parameter", " called with ",
            items.size(), " arguments, expected (tensor, bool, empty hooks",
            with_state ? ", state)" : ")"));
      }
      return Push(items[0]);
    }
    case PickleValue::Global::kStorageType:
      return InvalidArgumentError(absl::StrCat(
          "calling torch.", StorageTypeString(callable.StorageDtype()), " is not supported"));
  }
  return InternalError("unknown global");
}

Status PickleReader::Step(uint8_t op, bool* stop, PickleValue* result) {
  switch (op) {
    case kOpProto: {
      uint8_t version = 0;
      DF_RETURN_IF_ERROR(ReadLittleEndian(&version));
      if (version < 2 || version > 5) {
        return InvalidArgumentError(
            absl::StrCat("pickle protocol ", version, " is not supported (2 to 5 are)"));
      }
      return OkStatus();
    }
    case kOpFrame: {
      // Frames only tell a streaming reader how much to buffer; we have it all.
      uint64_t length = 0;
      DF_RETURN_IF_ERROR(ReadLittleEndian(&length));
      if (length > data_.size() - pos_) {
        return DataLossError(absl::StrCat("frame of ", length, " bytes but only ",
                                          data_.size() - pos_, " bytes are left"));
      }
      return OkStatus();
    }
    case kOpEmptyDict:
      return Push(NewDict(/*ordered=*/false));
    case kOpEmptyList:
      return Push(NewSequence(Kind::kList, {}));
    case kOpEmptyTuple:
      return Push(NewSequence(Kind::kTuple, {}));
    case kOpMark:
      if (marks_.size() >= limits_.max_marks) {
        return absl::ResourceExhaustedError(
            absl::StrCat("more than ", limits_.max_marks, " nested MARKs"));
      }
      marks_.push_back(stack_.size());
      return OkStatus();
    case kOpBinPut: {
      uint8_t index = 0;
      DF_RETURN_IF_ERROR(ReadLittleEndian(&index));
      return Memoize(index);
    }
    case kOpLongBinPut: {
      uint32_t index = 0;
      DF_RETURN_IF_ERROR(ReadLittleEndian(&index));
      return Memoize(index);
    }
    case kOpMemoize:
      return Memoize(memo_.size());
    case kOpBinGet:
    case kOpLongBinGet: {
      uint32_t index = 0;
      if (op == kOpBinGet) {
        uint8_t short_index = 0;
        DF_RETURN_IF_ERROR(ReadLittleEndian(&short_index));
        index = short_index;
      } else {
        DF_RETURN_IF_ERROR(ReadLittleEndian(&index));
      }
      auto it = memo_.find(index);
      if (it == memo_.end()) {
        return InvalidArgumentError(absl::StrCat("memo entry ", index, " was never stored"));
      }
      DF_RETURN_IF_ERROR(CheckShareable(it->second));
      return Push(it->second);
    }
    case kOpGlobal: {
      std::string module, name;
      DF_RETURN_IF_ERROR(ReadLine(&module));
      DF_RETURN_IF_ERROR(ReadLine(&name));
      return ResolveGlobal(module, name);
    }
    case kOpStackGlobal: {
      DF_ASSIGN_OR_RETURN(PickleValue name, Pop());
      DF_ASSIGN_OR_RETURN(PickleValue module, Pop());
      if (module.kind() != Kind::kString || name.kind() != Kind::kString) {
        return InvalidArgumentError(absl::StrCat("module and name are a ", module.TypeName(),
                                                 " and a ", name.TypeName(), ", expected str"));
      }
      return ResolveGlobal(module.AsString(), name.AsString());
    }
    case kOpShortBinUnicode:
    case kOpShortBinString:
    case kOpShortBinBytes: {
      uint8_t length = 0;
      DF_RETURN_IF_ERROR(ReadLittleEndian(&length));
      return ReadText(op == kOpShortBinBytes ? Kind::kBytes : Kind::kString, length);
    }
    case kOpBinUnicode:
    case kOpBinBytes: {
      uint32_t length = 0;
      DF_RETURN_IF_ERROR(ReadLittleEndian(&length));
      return ReadText(op == kOpBinBytes ? Kind::kBytes : Kind::kString, length);
    }
    case kOpBinString: {
      int32_t length = 0;
      DF_RETURN_IF_ERROR(ReadLittleEndian(&length));
      if (length < 0) return InvalidArgumentError(absl::StrCat("negative length ", length));
      return ReadText(Kind::kString, static_cast<uint64_t>(length));
    }
    case kOpBinUnicode8:
    case kOpBinBytes8: {
      uint64_t length = 0;
      DF_RETURN_IF_ERROR(ReadLittleEndian(&length));
      return ReadText(op == kOpBinBytes8 ? Kind::kBytes : Kind::kString, length);
    }
    case kOpBinInt: {
      int32_t value = 0;
      DF_RETURN_IF_ERROR(ReadLittleEndian(&value));
      return Push(PickleValue::Int(value));
    }
    case kOpBinInt1: {
      uint8_t value = 0;
      DF_RETURN_IF_ERROR(ReadLittleEndian(&value));
      return Push(PickleValue::Int(value));
    }
    case kOpBinInt2: {
      uint16_t value = 0;
      DF_RETURN_IF_ERROR(ReadLittleEndian(&value));
      return Push(PickleValue::Int(value));
    }
    case kOpLong1: {
      uint8_t length = 0;
      DF_RETURN_IF_ERROR(ReadLittleEndian(&length));
      return ReadLong(length);
    }
    case kOpLong4: {
      int32_t length = 0;
      DF_RETURN_IF_ERROR(ReadLittleEndian(&length));
      if (length < 0) return InvalidArgumentError(absl::StrCat("negative length ", length));
      return ReadLong(static_cast<uint64_t>(length));
    }
    case kOpBinFloat: {
      // The one big-endian field in a pickle.
      std::string_view bytes;
      DF_RETURN_IF_ERROR(Read(8, &bytes));
      uint64_t bits = 0;
      for (char c : bytes) bits = (bits << 8) | static_cast<uint8_t>(c);
      double value = 0;
      std::memcpy(&value, &bits, sizeof(value));
      return Push(PickleValue::Float(value));
    }
    case kOpNone:
      return Push(PickleValue());
    case kOpNewTrue:
    case kOpNewFalse:
      return Push(PickleValue::Bool(op == kOpNewTrue));
    case kOpTuple:
    case kOpList: {
      DF_ASSIGN_OR_RETURN(std::vector<PickleValue> items, PopToMark());
      DF_RETURN_IF_ERROR(CountItems(items.size()));
      return Push(NewSequence(op == kOpTuple ? Kind::kTuple : Kind::kList, std::move(items)));
    }
    case kOpTuple1:
    case kOpTuple2:
    case kOpTuple3: {
      const size_t n = op - kOpTuple1 + 1;
      std::vector<PickleValue> items(n);
      for (size_t i = n; i-- > 0;) {
        DF_ASSIGN_OR_RETURN(items[i], Pop());
      }
      DF_RETURN_IF_ERROR(CountItems(n));
      return Push(NewSequence(Kind::kTuple, std::move(items)));
    }
    case kOpDict: {
      DF_ASSIGN_OR_RETURN(std::vector<PickleValue> items, PopToMark());
      if (items.size() % 2 != 0) {
        return InvalidArgumentError(absl::StrCat("odd number of items (", items.size(), ")"));
      }
      PickleValue dict = NewDict(/*ordered=*/false);
      for (size_t i = 0; i < items.size(); i += 2) {
        DF_RETURN_IF_ERROR(SetItem(dict, std::move(items[i]), std::move(items[i + 1])));
      }
      return Push(std::move(dict));
    }
    case kOpAppend:
    case kOpAppends: {
      std::vector<PickleValue> items;
      if (op == kOpAppend) {
        DF_ASSIGN_OR_RETURN(PickleValue item, Pop());
        items.push_back(std::move(item));
      } else {
        DF_ASSIGN_OR_RETURN(items, PopToMark());
      }
      DF_ASSIGN_OR_RETURN(PickleValue * target, Top());
      if (target->kind() != Kind::kList) {
        return InvalidArgumentError(
            absl::StrCat("appending to a ", target->TypeName(), ", expected a list"));
      }
      DF_RETURN_IF_ERROR(CountItems(items.size()));
      auto& list = static_cast<PickleValue::Sequence*>(target->ptr_.get())->items;
      for (auto& item : items) list.push_back(std::move(item));
      return OkStatus();
    }
    case kOpSetItem: {
      DF_ASSIGN_OR_RETURN(PickleValue value, Pop());
      DF_ASSIGN_OR_RETURN(PickleValue key, Pop());
      DF_ASSIGN_OR_RETURN(PickleValue * target, Top());
      return SetItem(*target, std::move(key), std::move(value));
    }
    case kOpSetItems: {
      DF_ASSIGN_OR_RETURN(std::vector<PickleValue> items, PopToMark());
      if (items.size() % 2 != 0) {
        return InvalidArgumentError(absl::StrCat("odd number of items (", items.size(), ")"));
      }
      DF_ASSIGN_OR_RETURN(PickleValue * target, Top());
      for (size_t i = 0; i < items.size(); i += 2) {
        DF_RETURN_IF_ERROR(SetItem(*target, std::move(items[i]), std::move(items[i + 1])));
      }
      return OkStatus();
    }
    case kOpReduce: {
      DF_ASSIGN_OR_RETURN(PickleValue args, Pop());
      DF_ASSIGN_OR_RETURN(PickleValue callable, Pop());
      return Reduce(callable, args);
    }
    case kOpBuild: {
      // Only an OrderedDict's attributes are accepted, and ignored: state_dict() sets
      // `_metadata` (per-module versions) on the OrderedDict it returns.
      DF_ASSIGN_OR_RETURN(PickleValue state, Pop());
      DF_ASSIGN_OR_RETURN(PickleValue * target, Top());
      if (target->kind() != Kind::kDict || !target->IsOrderedDict()) {
        return InvalidArgumentError(
            absl::StrCat("setting the state of a ", target->TypeName(),
                         "; only an OrderedDict's attributes are supported"));
      }
      bool ok = state.kind() == Kind::kNone || state.kind() == Kind::kDict;
      if (state.kind() == Kind::kTuple && state.AsItems().size() == 2) {
        ok = true;  // (dict state, slots state)
        for (const auto& part : state.AsItems()) {
          ok = ok && (part.kind() == Kind::kNone || part.kind() == Kind::kDict);
        }
      }
      if (!ok) {
        return InvalidArgumentError(
            absl::StrCat("OrderedDict state is a ", state.TypeName(), ", expected a dict"));
      }
      return OkStatus();
    }
    case kOpBinPersId: {
      DF_ASSIGN_OR_RETURN(PickleValue pid, Pop());
      DF_ASSIGN_OR_RETURN(PickleValue storage, PersistentLoad(pid));
      return Push(std::move(storage));
    }
    case kOpPop:
      if (stack_.size() > (marks_.empty() ? 0 : marks_.back())) {
        stack_.pop_back();
        return OkStatus();
      }
      return PopToMark().status();  // as Python does: POP on an empty frame drops the MARK
    case kOpPopMark:
      return PopToMark().status();
    case kOpDup: {
      DF_ASSIGN_OR_RETURN(PickleValue * top, Top());
      DF_RETURN_IF_ERROR(CheckShareable(*top));
      PickleValue copy = *top;
      return Push(std::move(copy));
    }
    case kOpStop:
      if (stack_.size() != 1 || !marks_.empty()) {
        return InvalidArgumentError(absl::StrCat("STOP with ", stack_.size(), " values and ",
                                                 marks_.size(),
                                                 " MARKs on the stack, expected one value"));
      }
      *result = std::move(stack_.back());
      stack_.pop_back();
      *stop = true;
      return OkStatus();
    default:
      return InvalidArgumentError(OpcodeName(op) != nullptr
                                      ? "opcode not supported by this restricted unpickler"
                                      : "not a pickle opcode");
  }
}

}  // namespace dermfed::model
