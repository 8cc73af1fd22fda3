// Specifies ReadTorchCheckpoint and the restricted unpickler under it. Two kinds of input:
// pickles and legacy-format files built byte by byte here (no Python needed), and real
// torch.save files that make_checkpoint_fixtures.py writes at test time (skipped when
// /usr/bin/python3 cannot import torch).
#include "common/model/checkpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/model/pickle_reader.h"
#include "tests/common/model/pickle_builder.h"

#ifndef DERMFED_CHECKPOINT_FIXTURE_SCRIPT
#error "DERMFED_CHECKPOINT_FIXTURE_SCRIPT must name make_checkpoint_fixtures.py"
#endif

namespace dermfed::model {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using namespace std::string_literals;

// ---------------------------------------------------------------------------------------
using ::dermfed::test_util::PickleBuilder;

// One tensor entry of a hand-built state dict.
struct TensorSpec {
  std::string key;
  int64_t storage_numel = 0;
  int64_t offset = 0;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
  std::string storage_type = "FloatStorage";
  std::string storage_key = "0";
};

// The object pickle torch.save writes for an OrderedDict of tensors. `legacy` adds the
// sixth persistent-id element (view_metadata, None) that the legacy format has.
std::string StateDictPickle(const std::vector<TensorSpec>& specs, bool legacy) {
  PickleBuilder p;
  p.Proto().NewOrderedDict().Mark();
  for (const TensorSpec& t : specs) {
    p.Str(t.key).Global("torch._utils", "_rebuild_tensor_v2").Mark();
    p.Mark()
        .Str("storage")
        .Global("torch", t.storage_type)
        .Str(t.storage_key)
        .Str("cpu")
        .Int(t.storage_numel);
    if (legacy) p.None();
    p.Tuple().Op('Q');
    p.Int(t.offset).IntTuple(t.sizes).IntTuple(t.strides).Bool(false).NewOrderedDict();
    p.Tuple().Op('R');
  }
  return p.Op('u').Stop().bytes();
}

std::string SmallPickle(std::string_view body) {
  return PickleBuilder().Proto().Raw(body).Stop().bytes();
}

// The legacy torch.save layout: magic, protocol, sys_info, the object, the storage keys,
// then each storage as an int64 element count and its bytes.
struct LegacyStorage {
  std::string key;
  int64_t declared_count;
  std::string data;
};

std::string LegacyFile(const std::string& object_pickle, const std::vector<LegacyStorage>& storages,
                       bool little_endian = true) {
  std::string out;
  out += PickleBuilder()
             .Proto()
             .Op(0x8a)
             .LittleEndian(10, 1)
             .Raw(std::string_view("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10))
             .Stop()
             .bytes();
  out += PickleBuilder().Proto().Op('M').LittleEndian(1001, 2).Stop().bytes();
  out += PickleBuilder()
             .Proto()
             .Op('}')
             .Mark()
             .Str("protocol_version")
             .Int(1001)
             .Str("little_endian")
             .Bool(little_endian)
             .Op('u')
             .Stop()
             .bytes();
  out += object_pickle;
  PickleBuilder keys;
  keys.Proto().Op(']').Mark();
  for (const auto& s : storages) keys.Str(s.key);
  out += keys.Op('e').Stop().bytes();
  for (const auto& s : storages) {
    out += PickleBuilder().LittleEndian(static_cast<uint64_t>(s.declared_count), 8).bytes();
    out += s.data;
  }
  return out;
}

std::string FloatBytes(const std::vector<float>& values) {
  std::string out(values.size() * sizeof(float), '\0');
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

// A fresh directory under the system temp dir, removed with the object.
class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "dermfed_checkpoint_test_XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) std::abort();
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::string WriteFile(const TempDir& dir, const std::string& name, const std::string& bytes) {
  const std::string path = dir.File(name);
  std::ofstream(path, std::ios::binary).write(bytes.data(), bytes.size());
  return path;
}

StatusOr<PickleValue> ReadOne(const std::string& bytes, PickleLimits limits = {}) {
  PickleReader reader(bytes, limits);
  return reader.ReadNext();
}

// ---------------------------------------------------------------------------------------
// The restricted unpickler.

TEST(PickleReaderTest, ReadsScalarsStringsAndContainers) {
  const std::string bytes = PickleBuilder()
                                .Proto()
                                .Mark()
                                .Op('K')
                                .LittleEndian(255, 1)  // BININT1
                                .Op('M')
                                .LittleEndian(65535, 2)  // BININT2
                                .Int(-5)                 // BININT
                                .Op(0x8a)
                                .LittleEndian(1, 1)
                                .LittleEndian(0xfe, 1)  // LONG1 -2
                                .Op('G')
                                .Raw(std::string_view("\x3f\xf8\0\0\0\0\0\0", 8))  // 1.5
                                .Op(0x8c)
                                .LittleEndian(2, 1)
                                .Raw("hi")  // SHORT_BINUNICODE
                                .Op('C')
                                .LittleEndian(1, 1)
                                .Raw("\x01")  // SHORT_BINBYTES
                                .None()
                                .Bool(true)
                                .Op(']')  // EMPTY_LIST
                                .Tuple()
                                .Stop()
                                .bytes();
  StatusOr<PickleValue> value = ReadOne(bytes);
  ASSERT_TRUE(value.ok()) << value.status();
  ASSERT_EQ(value->kind(), PickleValue::Kind::kTuple);
  const auto& items = value->AsItems();
  ASSERT_EQ(items.size(), 10u);
  EXPECT_EQ(items[0].AsInt(), 255);
  EXPECT_EQ(items[1].AsInt(), 65535);
  EXPECT_EQ(items[2].AsInt(), -5);
  EXPECT_EQ(items[3].AsInt(), -2);
  EXPECT_EQ(items[4].AsFloat(), 1.5);
  EXPECT_EQ(items[5].AsString(), "hi");
  EXPECT_EQ(items[6].kind(), PickleValue::Kind::kBytes);
  EXPECT_EQ(items[7].kind(), PickleValue::Kind::kNone);
  EXPECT_TRUE(items[8].AsBool());
  EXPECT_EQ(items[9].kind(), PickleValue::Kind::kList);
}

TEST(PickleReaderTest, DuplicateDictKeyKeepsFirstPositionAndLastValue) {
  const std::string bytes = SmallPickle(PickleBuilder()
                                            .Op('}')
                                            .Mark()
                                            .Str("a")
                                            .Int(1)
                                            .Str("b")
                                            .Int(2)
                                            .Str("a")
                                            .Int(3)
                                            .Op('u')
                                            .bytes());
  StatusOr<PickleValue> value = ReadOne(bytes);
  ASSERT_TRUE(value.ok()) << value.status();
  const auto& entries = value->AsEntries();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].first.AsString(), "a");
  EXPECT_EQ(entries[0].second.AsInt(), 3);
}

TEST(PickleReaderTest, ReadsPython2OrderedDictOfPairs) {
  // OrderedDict([['b', 1], ['a', 2]]), as Python 2 pickled it, with SHORT_BINSTRING keys.
  const std::string bytes = SmallPickle(PickleBuilder()
                                            .Global("collections", "OrderedDict")
                                            .Mark()
                                            .Op(']')
                                            .Mark()
                                            .Mark()
                                            .Raw("U\x01"
                                                 "b")
                                            .Int(1)
                                            .Op('l')
                                            .Mark()
                                            .Raw("U\x01"
                                                 "a")
                                            .Int(2)
                                            .Op('l')
                                            .Op('e')
                                            .Tuple()
                                            .Op('R')
                                            .None()
                                            .Op('b')
                                            .bytes());
  StatusOr<PickleValue> value = ReadOne(bytes);
  ASSERT_TRUE(value.ok()) << value.status();
  ASSERT_TRUE(value->IsOrderedDict());
  ASSERT_EQ(value->AsEntries().size(), 2u);
  EXPECT_EQ(value->AsEntries()[0].first.AsString(), "b");
  EXPECT_EQ(value->AsEntries()[1].second.AsInt(), 2);
}

TEST(PickleReaderTest, RefusesUnknownOpcodeByNumberAndOffset) {
  StatusOr<PickleValue> value = ReadOne(SmallPickle("\xff"));
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(value.status().message(), HasSubstr("pickle opcode 0xff at byte 2"));
}

TEST(PickleReaderTest, RefusesUnsupportedOpcodeByName) {
  StatusOr<PickleValue> value = ReadOne(SmallPickle("\x81"));  // NEWOBJ
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(value.status().message(), HasSubstr("0x81 (NEWOBJ) at byte 2"));
}

TEST(PickleReaderTest, RefusesTextProtocolOpcodes) {
  StatusOr<PickleValue> value = ReadOne(SmallPickle("I42\n"));  // INT, protocol 0
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(value.status().message(), HasSubstr("(INT)"));
}

TEST(PickleReaderTest, RefusesDisallowedGlobalByName) {
  StatusOr<PickleValue> value =
      ReadOne(SmallPickle(PickleBuilder().Global("os", "system").bytes()));
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(value.status().message(), HasSubstr("refusing global 'os.system'"));
  EXPECT_THAT(value.status().message(), HasSubstr("0x63 (GLOBAL) at byte 2"));
}

TEST(PickleReaderTest, RefusesDisallowedStackGlobalByName) {
  StatusOr<PickleValue> value =
      ReadOne(SmallPickle(PickleBuilder().Str("builtins").Str("eval").Op(0x93).bytes()));
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(value.status().message(), HasSubstr("refusing global 'builtins.eval'"));
}

TEST(PickleReaderTest, RefusesStorageTypeFromAnotherModule) {
  StatusOr<PickleValue> value =
      ReadOne(SmallPickle(PickleBuilder().Global("evil", "FloatStorage").bytes()));
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(value.status().message(), HasSubstr("refusing global 'evil.FloatStorage'"));
}

TEST(PickleReaderTest, RefusesTruncatedStream) {
  const std::string bytes = PickleBuilder().Proto().Op('X').LittleEndian(5, 4).Raw("ab").bytes();
  StatusOr<PickleValue> value = ReadOne(bytes);
  ASSERT_FALSE(value.ok());
  EXPECT_EQ(value.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(value.status().message(), HasSubstr("(BINUNICODE) at byte 2"));
}

TEST(PickleReaderTest, RefusesPickleWithoutStop) {
  StatusOr<PickleValue> value = ReadOne(PickleBuilder().Proto().None().bytes());
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(value.status().message(), HasSubstr("without a STOP"));
}

TEST(PickleReaderTest, RefusesHugeDeclaredLengthBeforeAllocating) {
  const std::string bytes =
      PickleBuilder().Proto().Op(0x8d).LittleEndian(uint64_t{1} << 62, 8).Raw("abc").bytes();
  StatusOr<PickleValue> value = ReadOne(bytes);
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(value.status().message(), HasSubstr("declares a length of 4611686018427387904"));
}

TEST(PickleReaderTest, RefusesUnsupportedProtocol) {
  StatusOr<PickleValue> value = ReadOne(PickleBuilder().Proto(6).None().Stop().bytes());
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(value.status().message(), HasSubstr("pickle protocol 6 is not supported"));
}

TEST(PickleReaderTest, RefusesUndefinedMemoEntry) {
  StatusOr<PickleValue> value = ReadOne(SmallPickle("h\x07"));
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(value.status().message(), HasSubstr("memo entry 7 was never stored"));
}

TEST(PickleReaderTest, RefusesStackUnderflow) {
  StatusOr<PickleValue> value = ReadOne(SmallPickle("NR"));
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(value.status().message(), HasSubstr("stack underflow"));
}

TEST(PickleReaderTest, RefusesCallingANonGlobal) {
  StatusOr<PickleValue> value = ReadOne(SmallPickle("N)R"));
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(value.status().message(), HasSubstr("calling a None"));
}

TEST(PickleReaderTest, BoundsMarkNesting) {
  PickleLimits limits;
  limits.max_marks = 16;
  StatusOr<PickleValue> value = ReadOne(SmallPickle(std::string(17, '(')), limits);
  ASSERT_FALSE(value.ok());
  EXPECT_EQ(value.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(PickleReaderTest, BoundsMemo) {
  PickleLimits limits;
  limits.max_memo = 2;
  StatusOr<PickleValue> value = ReadOne(SmallPickle("Nq\x00q\x01q\x02"s), limits);
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(value.status().message(), HasSubstr("memo would exceed 2 entries"));
}

TEST(PickleReaderTest, BoundsStack) {
  PickleLimits limits;
  limits.max_stack = 8;
  StatusOr<PickleValue> value = ReadOne(SmallPickle(std::string(9, 'N')), limits);
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(value.status().message(), HasSubstr("stack would exceed 8 values"));
}

TEST(PickleReaderTest, BoundsContainerElements) {
  PickleLimits limits;
  limits.max_items = 100;
  StatusOr<PickleValue> value =
      ReadOne(SmallPickle("](" + std::string(101, 'N') + "e"), limits);  // APPENDS
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(value.status().message(), HasSubstr("more than 100 container elements"));
}

TEST(PickleReaderTest, RefusesSecondReferenceToAList) {
  // l = []; l.append(l): the memo fetch that would close the cycle is refused.
  StatusOr<PickleValue> value =
      ReadOne(SmallPickle("]q\x00h\x00"
                          "a"s));
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(value.status().message(), HasSubstr("(BINGET) at byte 5: a second reference"));
}

TEST(PickleReaderTest, SharedTensorsAndTuplesAreFine) {
  // (t, t) for a memoized tuple t: immutable values may be shared.
  StatusOr<PickleValue> value = ReadOne(SmallPickle("K\x01\x85q\x00h\x00\x86"s));
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(value->AsItems().size(), 2u);
}

TEST(PickleReaderTest, DeeplyNestedListsAreReleasedWithoutRecursion) {
  // [[[[...]]]], 200,000 deep: destroying it recursively would overflow the stack.
  constexpr int kDepth = 200000;
  std::string body(kDepth, ']');
  body += std::string(kDepth - 1, 'a');
  StatusOr<PickleValue> value = ReadOne(SmallPickle(body));
  ASSERT_TRUE(value.ok()) << value.status();
}

TEST(PickleReaderTest, RebuildsTensorRefWithinItsStorage) {
  const std::string bytes = StateDictPickle({{"w", 12, 2, {2, 3}, {1, 2}}}, /*legacy=*/false);
  PickleReader reader(bytes);
  StatusOr<PickleValue> value = reader.ReadNext();
  ASSERT_TRUE(value.ok()) << value.status();
  const TorchTensorRef& ref = value->AsEntries()[0].second.AsTensor();
  EXPECT_EQ(ref.storage.root.key, "0");
  EXPECT_EQ(ref.storage.root.dtype, c10::ScalarType::Float);
  EXPECT_EQ(ref.storage_offset, 2);
  EXPECT_EQ(ref.sizes, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ref.strides, (std::vector<int64_t>{1, 2}));
  ASSERT_EQ(reader.storages().size(), 1u);
  EXPECT_EQ(reader.storages()[0].numel, 12);
}

TEST(PickleReaderTest, RefusesStorageDeclaredTwiceDifferently) {
  StatusOr<PickleValue> value =
      ReadOne(StateDictPickle({{"a", 4, 0, {4}, {1}}, {"b", 4, 0, {4}, {1}, "LongStorage"}},
                              /*legacy=*/false));
  ASSERT_FALSE(value.ok());
  EXPECT_THAT(value.status().message(), HasSubstr("declared as LongStorage of 4 elements"));
}

TEST(ElementsSpannedTest, CountsTheFarthestElement) {
  TorchTensorRef ref;
  ref.storage.view_numel = 100;
  ref.storage_offset = 3;
  ref.sizes = {2, 3};
  ref.strides = {10, 1};
  EXPECT_EQ(*ElementsSpanned(ref), 3 + 10 + 2 + 1);
  ref.sizes = {0, 3};
  EXPECT_EQ(*ElementsSpanned(ref), 3);
  ref.sizes = {};
  ref.strides = {};
  EXPECT_EQ(*ElementsSpanned(ref), 4);
}

TEST(ElementsSpannedTest, RefusesOverflowAndOverlap) {
  TorchTensorRef ref;
  ref.storage.view_numel = 100;
  ref.sizes = {2, 2};
  ref.strides = {int64_t{1} << 62, int64_t{1} << 62};
  EXPECT_FALSE(ElementsSpanned(ref).ok());
  ref.sizes = {1000};
  ref.strides = {0};
  EXPECT_THAT(ElementsSpanned(ref).status().message(), HasSubstr("overlapping"));
}

// ---------------------------------------------------------------------------------------
// ReadTorchCheckpoint on hand-built legacy files.

TEST(CheckpointTest, ReadsHandBuiltLegacyFile) {
  TempDir dir;
  const std::string path =
      WriteFile(dir, "hand.pt",
                LegacyFile(StateDictPickle({{"b", 6, 4, {2}, {1}}, {"a", 6, 0, {2, 2}, {1, 2}}},
                                           /*legacy=*/true),
                           {{"0", 6, FloatBytes({0, 1, 2, 3, 4, 5})}}));
  StatusOr<NamedTensors> tensors = ReadTorchCheckpoint(path);
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  ASSERT_EQ(tensors->size(), 2u);
  EXPECT_EQ((*tensors)[0].first, "b");
  EXPECT_TRUE(torch::equal((*tensors)[0].second, torch::tensor({4.f, 5.f})));
  EXPECT_EQ((*tensors)[1].first, "a");
  // Strides (1, 2) over 0..3: the transpose of [[0, 1], [2, 3]].
  EXPECT_TRUE(torch::equal((*tensors)[1].second, torch::tensor({{0.f, 2.f}, {1.f, 3.f}})));
  EXPECT_TRUE((*tensors)[1].second.is_contiguous());
}

// The error a one-tensor legacy file with `spec` and `storage` gets.
std::string LegacyError(const TensorSpec& spec, const LegacyStorage& storage,
                        std::string* path_out = nullptr) {
  TempDir dir;
  const std::string path =
      WriteFile(dir, "bad.pt", LegacyFile(StateDictPickle({spec}, /*legacy=*/true), {storage}));
  if (path_out) *path_out = path;
  StatusOr<NamedTensors> tensors = ReadTorchCheckpoint(path);
  return tensors.ok() ? "OK" : std::string(tensors.status().message());
}

TEST(CheckpointTest, RefusesNegativeSize) {
  std::string path;
  const std::string error =
      LegacyError({"w", 4, 0, {-1}, {1}}, {"0", 4, FloatBytes({0, 1, 2, 3})}, &path);
  EXPECT_THAT(error, HasSubstr(path + ": legacy format: pickle opcode 0x52 (REDUCE)"));
  EXPECT_THAT(error, HasSubstr("negative size"));
}

TEST(CheckpointTest, RefusesViewPastTheEndOfItsStorage) {
  const std::string error = LegacyError({"w", 4, 2, {3}, {1}}, {"0", 4, FloatBytes({0, 1, 2, 3})});
  EXPECT_THAT(error, HasSubstr("reach element 4 of a storage of 4 elements"));
}

TEST(CheckpointTest, RefusesStrideThatOverflows) {
  const std::string error =
      LegacyError({"w", 4, 0, {3}, {int64_t{1} << 62}}, {"0", 4, FloatBytes({0, 1, 2, 3})});
  EXPECT_THAT(error, HasSubstr("overflows 64 bits"));
}

TEST(CheckpointTest, RefusesStorageCountThatDisagreesWithItsPersistentId) {
  const std::string error = LegacyError({"w", 4, 0, {4}, {1}}, {"0", 3, FloatBytes({0, 1, 2})});
  EXPECT_THAT(error, HasSubstr("storage '0' has 3 elements in the file"));
}

TEST(CheckpointTest, RefusesStorageCutShort) {
  const std::string error = LegacyError({"w", 4, 0, {4}, {1}}, {"0", 4, FloatBytes({0, 1, 2})});
  EXPECT_THAT(error, HasSubstr("storage '0' needs 16 bytes"));
}

TEST(CheckpointTest, RefusesStorageMissingFromKeyList) {
  const std::string error =
      LegacyError({"w", 1, 0, {1}, {1}, "FloatStorage", "7"}, {"0", 1, FloatBytes({0})});
  EXPECT_THAT(error, HasSubstr("storage key list names '0', which no persistent id declares"));
}

TEST(CheckpointTest, RefusesBigEndianLegacyFile) {
  TempDir dir;
  const std::string path =
      WriteFile(dir, "be.pt",
                LegacyFile(StateDictPickle({{"w", 1, 0, {1}, {1}}},
                                           /*legacy=*/true),
                           {{"0", 1, FloatBytes({1})}}, /*little_endian=*/false));
  StatusOr<NamedTensors> tensors = ReadTorchCheckpoint(path);
  ASSERT_FALSE(tensors.ok());
  EXPECT_THAT(tensors.status().message(), HasSubstr("big-endian"));
}

TEST(CheckpointTest, RefusesDisallowedGlobalNamingTheFile) {
  TempDir dir;
  const std::string object = SmallPickle(
      PickleBuilder().Global("os", "system").Mark().Str("touch x").Tuple().Op('R').bytes());
  const std::string path = WriteFile(dir, "evil.pt", LegacyFile(object, {}));
  StatusOr<NamedTensors> tensors = ReadTorchCheckpoint(path);
  ASSERT_FALSE(tensors.ok());
  EXPECT_THAT(tensors.status().message(), HasSubstr(path + ": legacy format: pickle opcode 0x63"));
  EXPECT_THAT(tensors.status().message(), HasSubstr("refusing global 'os.system'"));
}

TEST(CheckpointTest, RefusesWholePickledModule) {
  TempDir dir;
  const std::string object = SmallPickle(
      PickleBuilder().Mark().Str("module").None().None().None().Tuple().Op('Q').bytes());
  const std::string path = WriteFile(dir, "model.pt", LegacyFile(object, {}));
  StatusOr<NamedTensors> tensors = ReadTorchCheckpoint(path);
  ASSERT_FALSE(tensors.ok());
  EXPECT_THAT(tensors.status().message(), HasSubstr("expected a state dict"));
}

TEST(CheckpointTest, RefusesFileThatIsNotACheckpoint) {
  TempDir dir;
  StatusOr<NamedTensors> tensors = ReadTorchCheckpoint(WriteFile(dir, "x.pt", "hello"));
  ASSERT_FALSE(tensors.ok());
  EXPECT_THAT(tensors.status().message(), HasSubstr("not a torch.save file"));
  tensors = ReadTorchCheckpoint(WriteFile(dir, "empty.pt", ""));
  ASSERT_FALSE(tensors.ok());
  EXPECT_THAT(tensors.status().message(), HasSubstr("empty file"));
  tensors = ReadTorchCheckpoint(WriteFile(dir, "pickle.pt", SmallPickle("N")));
  ASSERT_FALSE(tensors.ok());
  EXPECT_THAT(tensors.status().message(), HasSubstr("not torch's magic number"));
}

TEST(CheckpointTest, MissingFileIsNotFound) {
  StatusOr<NamedTensors> tensors = ReadTorchCheckpoint("/nonexistent/vgg13.pth");
  ASSERT_FALSE(tensors.ok());
  EXPECT_EQ(tensors.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(tensors.status().message(), HasSubstr("/nonexistent/vgg13.pth: cannot open"));
}

// ---------------------------------------------------------------------------------------
// Real torch.save files from make_checkpoint_fixtures.py.

class TorchSavedCheckpointTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::string command = std::string("/usr/bin/python3 '") +
                                DERMFED_CHECKPOINT_FIXTURE_SCRIPT + "' '" + dir_->File("") + "'";
    const int rc = std::system(command.c_str());
    if (rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0) {
      status_ = "ok";
    } else if (rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 77) {
      status_ = "/usr/bin/python3 cannot import torch; torch.save fixtures not generated";
    } else {
      status_ = "fixture generator failed: " + command;
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (status_.rfind("/usr/bin/python3 cannot import torch", 0) == 0) GTEST_SKIP() << status_;
    ASSERT_EQ(status_, "ok");
  }

  static std::string Path(const std::string& name) { return dir_->File(name); }

  // The entries expected.txt/.bin describe, in order.
  static NamedTensors Expected() {
    static const std::map<std::string, torch::Dtype> kDtypes = {
        {"float32", torch::kFloat32},   {"float64", torch::kFloat64}, {"float16", torch::kFloat16},
        {"bfloat16", torch::kBFloat16}, {"int64", torch::kInt64},     {"int32", torch::kInt32},
        {"int16", torch::kInt16},       {"int8", torch::kInt8},       {"uint8", torch::kUInt8},
        {"bool", torch::kBool}};
    std::ifstream bin(Path("expected.bin"), std::ios::binary);
    const std::string blob((std::istreambuf_iterator<char>(bin)), {});
    std::ifstream txt(Path("expected.txt"));
    NamedTensors out;
    std::string line;
    while (std::getline(txt, line)) {
      std::istringstream in(line);
      std::string key, dtype;
      int ndim = 0;
      in >> key >> dtype >> ndim;
      std::vector<int64_t> sizes(ndim);
      for (auto& s : sizes) in >> s;
      size_t offset = 0, nbytes = 0;
      in >> offset >> nbytes;
      torch::Tensor t = torch::empty(sizes, torch::TensorOptions().dtype(kDtypes.at(dtype)));
      EXPECT_EQ(static_cast<size_t>(t.nbytes()), nbytes) << key;
      if (nbytes > 0) std::memcpy(t.data_ptr(), blob.data() + offset, nbytes);
      out.emplace_back(key, t);
    }
    return out;
  }

  static void ExpectMatchesExpected(const std::string& file) {
    StatusOr<NamedTensors> tensors = ReadTorchCheckpoint(Path(file));
    ASSERT_TRUE(tensors.ok()) << tensors.status();
    const NamedTensors expected = Expected();
    ASSERT_EQ(tensors->size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      const auto& [key, want] = expected[i];
      const auto& [got_key, got] = (*tensors)[i];
      EXPECT_EQ(got_key, key) << "entry " << i << " of " << file;
      EXPECT_EQ(got.scalar_type(), want.scalar_type()) << key;
      EXPECT_EQ(got.sizes(), want.sizes()) << key;
      EXPECT_TRUE(got.is_contiguous()) << key;
      EXPECT_TRUE(got.scalar_type() == want.scalar_type() && torch::equal(got, want))
          << key << " of " << file << ": got " << got << " want " << want;
    }
  }

  static void ExpectRefused(const std::string& file, const std::string& message) {
    StatusOr<NamedTensors> tensors = ReadTorchCheckpoint(Path(file));
    ASSERT_FALSE(tensors.ok()) << file << " was read";
    EXPECT_THAT(tensors.status().message(), HasSubstr(Path(file) + ": "));
    EXPECT_THAT(tensors.status().message(), HasSubstr(message));
  }

  static TempDir* dir_;
  static std::string status_;
};

TempDir* TorchSavedCheckpointTest::dir_ = nullptr;
std::string TorchSavedCheckpointTest::status_;

TEST_F(TorchSavedCheckpointTest, ReadsZipStateDictInOrderWithExactValues) {
  ExpectMatchesExpected("state_zip.pt");
}

TEST_F(TorchSavedCheckpointTest, ReadsLegacyStateDictInOrderWithExactValues) {
  ExpectMatchesExpected("state_legacy.pt");
}

TEST_F(TorchSavedCheckpointTest, ReadsPickleProtocols4And5) {
  ExpectMatchesExpected("state_zip_proto4.pt");
  ExpectMatchesExpected("state_legacy_proto5.pt");
}

TEST_F(TorchSavedCheckpointTest, ReadsPlainDict) { ExpectMatchesExpected("plain_dict.pt"); }

TEST_F(TorchSavedCheckpointTest, ViewsOfOneStorageBecomeIndependentTensors) {
  StatusOr<NamedTensors> tensors = ReadTorchCheckpoint(Path("state_zip.pt"));
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  std::map<std::string, torch::Tensor> by_name(tensors->begin(), tensors->end());
  torch::Tensor head = by_name.at("extra.view_head");
  torch::Tensor tail = by_name.at("extra.view_tail");
  EXPECT_NE(head.storage().data(), tail.storage().data());
  EXPECT_EQ(static_cast<int64_t>(head.storage().nbytes()), head.nbytes());
  EXPECT_EQ(head.storage_offset(), 0);
}

TEST_F(TorchSavedCheckpointTest, RefusesMaliciousZipWithoutRunningIt) {
  ExpectRefused("malicious_zip.pt", "refusing global 'posix.system'");
  EXPECT_FALSE(fs::exists(Path("PWNED_MARKER"))) << "the pickled os.system call ran";
}

TEST_F(TorchSavedCheckpointTest, RefusesMaliciousLegacyFileWithoutRunningIt) {
  ExpectRefused("malicious_legacy.pt", "refusing global 'posix.system'");
  EXPECT_FALSE(fs::exists(Path("PWNED_MARKER"))) << "the pickled os.system call ran";
}

TEST_F(TorchSavedCheckpointTest, RefusesListAtTopLevel) {
  ExpectRefused("top_list.pt", "top-level object is a list, expected a state dict");
}

TEST_F(TorchSavedCheckpointTest, RefusesTrainingCheckpointNamingTheEntry) {
  ExpectRefused("training_checkpoint.pt", "entry 'epoch' is an int, expected a tensor");
}

TEST_F(TorchSavedCheckpointTest, RefusesTruncatedZip) {
  ExpectRefused("truncated_zip.pt", "not a readable torch.save zip archive");
}

TEST_F(TorchSavedCheckpointTest, RefusesTruncatedLegacyFile) {
  ExpectRefused("truncated_legacy.pt", "legacy format: ");
}

TEST_F(TorchSavedCheckpointTest, RefusesTarFormat) {
  ExpectRefused("tar_format.pt", "tar archive");
}

}  // namespace
}  // namespace dermfed::model
