// ModelState layout, validation of untrusted manifests, and the checksummed file format.
#include "common/model_state.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/model_state_file.h"
#include "tests/common/tensor_spec.h"

namespace dermfed {
namespace {

namespace fs = std::filesystem;

using ::dermfed::test_util::Spec;

ModelState Sample() {
  auto s = ModelState::Create({Spec("conv.weight", DType::kFloat32, {4, 3, 3, 3}),
                               Spec("bn.num_batches_tracked", DType::kInt64, {}),
                               Spec("fc.bias", DType::kFloat16, {5})});
  EXPECT_TRUE(s.ok()) << s.status();
  for (uint64_t i = 0; i < s->size_bytes(); ++i) s->data()[i] = static_cast<uint8_t>(i * 31 + 7);
  return std::move(s).value();
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dermfed_ms_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST(ModelStateTest, TensorsAreAlignedAndSized) {
  ModelState s = Sample();
  ASSERT_EQ(s.num_tensors(), 3u);
  for (const auto& t : s.manifest()) {
    EXPECT_EQ(t.offset % ModelState::kAlignment, 0u) << t.name;
  }
  EXPECT_EQ(s.manifest()[0].nbytes, 4u * 3 * 3 * 3 * 4);
  EXPECT_EQ(s.manifest()[1].nbytes, 8u);  // a scalar has one element
  EXPECT_EQ(s.manifest()[2].nbytes, 10u);
  EXPECT_EQ(s.TotalElements(), 108u + 1 + 5);
  EXPECT_EQ(s.Find("fc.bias"), 2);
  EXPECT_EQ(s.Find("nope"), -1);
}

TEST(ModelStateTest, CloneIsADeepCopy) {
  ModelState a = Sample();
  ModelState b = a.Clone();
  ASSERT_TRUE(a.SameLayout(b));
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size_bytes()), 0);
  b.data()[0] ^= 1;
  EXPECT_NE(a.data()[0], b.data()[0]);
}

TEST(ModelStateTest, LayoutMismatchNamesTheTensor) {
  ModelState a = Sample();
  auto b = ModelState::Create({Spec("conv.weight", DType::kFloat32, {4, 3, 3, 3}),
                               Spec("bn.num_batches_tracked", DType::kInt64, {}),
                               Spec("fc.bias", DType::kFloat16, {6})});
  ASSERT_TRUE(b.ok());
  Status s = a.CheckSameLayout(*b);
  EXPECT_NE(s.message().find("'fc.bias' is float16 [6], expected float16 [5]"), std::string::npos)
      << s;
}

// Found by tests/fuzz/manifest_fuzzer (UBSan: signed overflow): integers from the wire can
// hold anything, so local − global wraps as two's complement instead.
TEST(SubtractInPlaceTest, IntegerTensorsWrapInsteadOfOverflowing) {
  auto a = ModelState::Create({Spec("steps", DType::kInt64, {2}), Spec("mask", DType::kInt32, {1})});
  ASSERT_TRUE(a.ok());
  ModelState b = a->Clone();
  int64_t* x = reinterpret_cast<int64_t*>(a->TensorData(0));
  const int64_t* y = reinterpret_cast<const int64_t*>(b.TensorData(0));
  x[0] = INT64_MIN;
  reinterpret_cast<int64_t*>(b.TensorData(0))[0] = 1;
  x[1] = 7;
  reinterpret_cast<int64_t*>(b.TensorData(0))[1] = 5;
  reinterpret_cast<int32_t*>(a->TensorData(1))[0] = INT32_MAX;
  reinterpret_cast<int32_t*>(b.TensorData(1))[0] = -1;
  ASSERT_TRUE(SubtractInPlace(&*a, b).ok());
  EXPECT_EQ(x[0], INT64_MAX);
  EXPECT_EQ(x[1], 2);
  EXPECT_EQ(y[1], 5);
  EXPECT_EQ(reinterpret_cast<const int32_t*>(a->TensorData(1))[0], INT32_MIN);
}

TEST(ValidateManifestTest, RefusesDuplicateNames) {
  auto t = Spec("w", DType::kFloat32, {2});
  t.nbytes = 8;
  auto u = t;
  u.offset = 64;
  Status s = ValidateManifest({t, u}, 128);
  EXPECT_NE(s.message().find("'w' appears twice"), std::string::npos) << s;
}

TEST(ValidateManifestTest, RefusesTensorOutsideTheBuffer) {
  auto t = Spec("w", DType::kFloat32, {4});
  t.nbytes = 16;
  t.offset = 64;
  Status s = ValidateManifest({t}, 70);
  EXPECT_NE(s.message().find("outside the 70-byte buffer"), std::string::npos) << s;
}

TEST(ValidateManifestTest, RefusesOverlap) {
  auto t = Spec("a", DType::kFloat32, {4});
  t.nbytes = 16;
  auto u = Spec("b", DType::kFloat32, {4});
  u.nbytes = 16;
  u.offset = 8;
  Status s = ValidateManifest({t, u}, 64);
  EXPECT_NE(s.message().find("'b': offset 8 overlaps"), std::string::npos) << s;
}

TEST(ValidateManifestTest, RefusesWrongByteCountAndOverflowingShapes) {
  auto t = Spec("a", DType::kFloat32, {4});
  t.nbytes = 15;
  EXPECT_FALSE(ValidateManifest({t}, 64).ok());
  auto huge = Spec("h", DType::kFloat64, {1ll << 40, 1ll << 40});
  Status s = ValidateManifest({huge}, 64);
  EXPECT_NE(s.message().find("too large"), std::string::npos) << s;
  auto neg = Spec("n", DType::kFloat32, {-1});
  EXPECT_NE(ValidateManifest({neg}, 64).message().find("negative"), std::string::npos);
}

TEST_F(TempDir, FileRoundTripIsBitExact) {
  ModelState a = Sample();
  const std::string path = (dir_ / "m.dfs").string();
  ASSERT_TRUE(SaveModelState(a, path).ok());
  auto b = LoadModelState(path);
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_TRUE(a.SameLayout(*b));
  EXPECT_EQ(std::memcmp(a.data(), b->data(), a.size_bytes()), 0);
  EXPECT_EQ(ModelStateDigest(a), ModelStateDigest(*b));
  // Atomic write: no temp file is left behind.
  int files = 0;
  for (auto& e : fs::directory_iterator(dir_)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST_F(TempDir, FlippedByteIsAChecksumError) {
  const std::string path = (dir_ / "m.dfs").string();
  ASSERT_TRUE(SaveModelState(Sample(), path).ok());
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(path) - 40));
    f.put('\x5a');
  }
  auto b = LoadModelState(path);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("checksum mismatch"), std::string::npos) << b.status();
  EXPECT_NE(b.status().message().find(path), std::string::npos);
}

TEST_F(TempDir, TruncatedFileIsRefused) {
  const std::string path = (dir_ / "m.dfs").string();
  ASSERT_TRUE(SaveModelState(Sample(), path).ok());
  fs::resize_file(path, fs::file_size(path) - 1);
  auto b = LoadModelState(path);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("truncated"), std::string::npos) << b.status();
}

TEST_F(TempDir, ForeignFileIsRefused) {
  const std::string path = (dir_ / "x.pth").string();
  std::ofstream(path) << "PK\x03\x04 this is a zip, not a model state file................";
  auto b = LoadModelState(path);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("bad magic"), std::string::npos) << b.status();
}

TEST_F(TempDir, MissingFileIsNotFound) {
  auto b = LoadModelState((dir_ / "absent.dfs").string());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace dermfed
