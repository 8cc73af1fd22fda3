// Update codecs: round-trip error bounds, exact sizes, error feedback, and hostile
// encodings refused with the tensor named.
#include "common/update_codec.h"
#include "tests/common/tensor_spec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

namespace dermfed {
namespace {

using ::dermfed::test_util::Spec;

// A model-like delta: two float32 tensors with values over several orders of magnitude,
// a BatchNorm counter (int64) and an empty tensor.
ModelState SampleDelta(uint32_t seed = 7) {
  auto s = ModelState::Create({Spec("conv.weight", DType::kFloat32, {8, 3, 3, 3}),
                               Spec("bn.num_batches_tracked", DType::kInt64, {}),
                               Spec("empty", DType::kFloat32, {0}),
                               Spec("fc.bias", DType::kFloat32, {10})});
  EXPECT_TRUE(s.ok()) << s.status();
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0, 1);
  for (size_t i = 0; i < s->num_tensors(); ++i) {
    const TensorSpec& t = s->manifest()[i];
    if (t.dtype == DType::kInt64) {
      const int64_t v = 123456789012345;
      std::memcpy(s->TensorData(i), &v, sizeof v);
      continue;
    }
    float* x = reinterpret_cast<float*>(s->TensorData(i));
    for (int64_t j = 0; j < t.numel(); ++j) x[j] = normal(rng) * std::pow(10.0f, (j % 5) - 4.0f);
  }
  return std::move(s).value();
}

const float* F(const ModelState& s, const std::string& name) {
  return reinterpret_cast<const float*>(s.TensorData(s.Find(name)));
}

CodecOptions Options(UpdateCodec codec, double fraction = 0.1) {
  CodecOptions o;
  o.codec = codec;
  o.topk_fraction = fraction;
  return o;
}

StatusOr<ModelState> RoundTrip(const ModelState& delta, const CodecOptions& o,
                               ModelState* residual = nullptr) {
  DF_ASSIGN_OR_RETURN(ModelState encoded, EncodeUpdate(delta, o, residual));
  return DecodeUpdate(encoded, delta, o, "update from site 'a' for round 3");
}

void ExpectIntegerTensorExact(const ModelState& decoded) {
  int64_t v;
  std::memcpy(&v, decoded.TensorData(decoded.Find("bn.num_batches_tracked")), sizeof v);
  EXPECT_EQ(v, 123456789012345) << "non-float tensors must travel uncompressed";
}

TEST(UpdateCodecTest, ParsesTheFourNamesAndRefusesOthers) {
  EXPECT_EQ(*ParseUpdateCodec(""), UpdateCodec::kNone);
  EXPECT_EQ(*ParseUpdateCodec("none"), UpdateCodec::kNone);
  EXPECT_EQ(*ParseUpdateCodec("fp16"), UpdateCodec::kFp16);
  EXPECT_EQ(*ParseUpdateCodec("int8"), UpdateCodec::kInt8);
  EXPECT_EQ(*ParseUpdateCodec("topk"), UpdateCodec::kTopK);
  auto bad = ParseUpdateCodec("zstd");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("none, fp16, int8 or topk"), std::string::npos);
}

TEST(UpdateCodecTest, EncodedSizesAreExact) {
  const ModelState d = SampleDelta();
  // 12-byte header; conv 216 values, bias 10, empty 0, counter 8 bytes raw.
  EXPECT_EQ(EncodedBytes(d.manifest(), Options(UpdateCodec::kFp16)), 12u + 2 * 226 + 8);
  EXPECT_EQ(EncodedBytes(d.manifest(), Options(UpdateCodec::kInt8)), 12u + (4 + 216) + (4 + 0) +
                                                                         (4 + 10) + 8);
  // topk 0.1: ceil(21.6) = 22 of conv, 0 of empty, ceil(1.0) = 1 of bias.
  EXPECT_EQ(EncodedBytes(d.manifest(), Options(UpdateCodec::kTopK, 0.1)),
            12u + (4 + 8 * 22) + 4 + (4 + 8 * 1) + 8);
  for (UpdateCodec c : {UpdateCodec::kFp16, UpdateCodec::kInt8, UpdateCodec::kTopK}) {
    auto e = EncodeUpdate(d, Options(c));
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ(e->size_bytes(), EncodedBytes(d.manifest(), Options(c))) << UpdateCodecName(c);
    EXPECT_EQ(e->manifest()[0].name, "codec/" + std::string(UpdateCodecName(c)));
  }
}

TEST(UpdateCodecTest, TopKCountRoundsUpAndSendsAtLeastOne) {
  EXPECT_EQ(TopKCount(0, 0.5), 0u);
  EXPECT_EQ(TopKCount(1000, 0.01), 10u);
  EXPECT_EQ(TopKCount(1001, 0.01), 11u);
  EXPECT_EQ(TopKCount(10, 0.001), 1u);
  EXPECT_EQ(TopKCount(10, 1.0), 10u);
}

TEST(UpdateCodecTest, Fp16RoundTripWithinHalfPrecision) {
  const ModelState d = SampleDelta();
  auto r = RoundTrip(d, Options(UpdateCodec::kFp16));
  ASSERT_TRUE(r.ok()) << r.status();
  for (const char* name : {"conv.weight", "fc.bias"}) {
    const TensorSpec& t = d.manifest()[d.Find(name)];
    for (int64_t i = 0; i < t.numel(); ++i) {
      const float x = F(d, name)[i], y = F(*r, name)[i];
      // Normal halves: relative error 2^-11; subnormals: absolute 2^-25.
      EXPECT_LE(std::fabs(x - y), std::max(std::fabs(x) * 0x1p-11f, 0x1p-25f))
          << name << "[" << i << "] " << x << " -> " << y;
    }
  }
  ExpectIntegerTensorExact(*r);
}

TEST(UpdateCodecTest, Fp16IsExactForRepresentableValues) {
  auto s = ModelState::Create({Spec("w", DType::kFloat32, {6})});
  ASSERT_TRUE(s.ok());
  const float values[6] = {0.0f, -1.5f, 65504.0f, 0x1p-24f, -0x1p-14f, 1000.5f};
  std::memcpy(s->data(), values, sizeof values);
  auto r = RoundTrip(*s, Options(UpdateCodec::kFp16));
  ASSERT_TRUE(r.ok()) << r.status();
  for (int i = 0; i < 6; ++i) EXPECT_EQ(F(*r, "w")[i], values[i]) << i;
}

TEST(UpdateCodecTest, Fp16RefusesValuesBeyondItsRange) {
  auto s = ModelState::Create({Spec("huge", DType::kFloat32, {2})});
  ASSERT_TRUE(s.ok());
  reinterpret_cast<float*>(s->data())[1] = 1e6f;
  auto e = EncodeUpdate(*s, Options(UpdateCodec::kFp16));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("tensor 'huge'"), std::string::npos) << e.status();
}

TEST(UpdateCodecTest, Int8RoundTripWithinHalfAScaleStep) {
  const ModelState d = SampleDelta();
  auto r = RoundTrip(d, Options(UpdateCodec::kInt8));
  ASSERT_TRUE(r.ok()) << r.status();
  for (const char* name : {"conv.weight", "fc.bias"}) {
    const TensorSpec& t = d.manifest()[d.Find(name)];
    float max_abs = 0;
    for (int64_t i = 0; i < t.numel(); ++i) max_abs = std::max(max_abs, std::fabs(F(d, name)[i]));
    const float step = max_abs / 127;
    for (int64_t i = 0; i < t.numel(); ++i) {
      EXPECT_LE(std::fabs(F(d, name)[i] - F(*r, name)[i]), step * 0.5f + step * 1e-4f)
          << name << "[" << i << "]";
    }
  }
  ExpectIntegerTensorExact(*r);
}

TEST(UpdateCodecTest, Int8OfAllZerosDecodesToZeros) {
  auto s = ModelState::Create({Spec("z", DType::kFloat32, {5})});
  ASSERT_TRUE(s.ok());
  auto r = RoundTrip(*s, Options(UpdateCodec::kInt8));
  ASSERT_TRUE(r.ok()) << r.status();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(F(*r, "z")[i], 0.0f);
}

TEST(UpdateCodecTest, TopKSendsTheLargestValuesExactlyAndZeroesTheRest) {
  auto s = ModelState::Create({Spec("w", DType::kFloat32, {10})});
  ASSERT_TRUE(s.ok());
  const float values[10] = {0.1f, -5, 0.2f, 3, 0, -0.3f, 4, 0.05f, -1, 2};
  std::memcpy(s->data(), values, sizeof values);
  auto r = RoundTrip(*s, Options(UpdateCodec::kTopK, 0.3));  // k = 3: -5, 4, 3
  ASSERT_TRUE(r.ok()) << r.status();
  const float expected[10] = {0, -5, 0, 3, 0, 0, 4, 0, 0, 0};
  for (int i = 0; i < 10; ++i) EXPECT_EQ(F(*r, "w")[i], expected[i]) << i;
}

TEST(UpdateCodecTest, TopKErrorFeedbackKeepsWhatWasNotSent) {
  const ModelState d = SampleDelta();
  ModelState residual;  // empty: zero
  const CodecOptions o = Options(UpdateCodec::kTopK, 0.1);
  auto sent = RoundTrip(d, o, &residual);
  ASSERT_TRUE(sent.ok()) << sent.status();
  ASSERT_TRUE(residual.SameLayout(d));
  // Round 1: sent + residual == delta, exactly, element by element.
  for (const char* name : {"conv.weight", "fc.bias"}) {
    const TensorSpec& t = d.manifest()[d.Find(name)];
    for (int64_t i = 0; i < t.numel(); ++i) {
      EXPECT_EQ(F(*sent, name)[i] + F(residual, name)[i], F(d, name)[i]) << name << "[" << i << "]";
      EXPECT_TRUE(F(*sent, name)[i] == 0 || F(residual, name)[i] == 0);
    }
  }
  // Round 2 sends from delta2 + residual: over both rounds, nothing is lost.
  const ModelState d2 = SampleDelta(8);
  ModelState before = residual.Clone();
  auto sent2 = RoundTrip(d2, o, &residual);
  ASSERT_TRUE(sent2.ok()) << sent2.status();
  const float* c = F(d2, "conv.weight");
  for (int64_t i = 0; i < 216; ++i) {
    EXPECT_FLOAT_EQ(F(*sent2, "conv.weight")[i] + F(residual, "conv.weight")[i],
                    c[i] + F(before, "conv.weight")[i]);
  }
}

TEST(UpdateCodecTest, ErrorFeedbackOfAnotherLayoutIsRefused) {
  auto other = ModelState::Create({Spec("x", DType::kFloat32, {3})});
  ASSERT_TRUE(other.ok());
  ModelState residual = std::move(other).value();
  auto e = EncodeUpdate(SampleDelta(), Options(UpdateCodec::kTopK), &residual);
  EXPECT_FALSE(e.ok());
}

TEST(UpdateCodecTest, BatchNormRunningStatisticsTravelRawAndExact) {
  auto s = ModelState::Create({Spec("bn.running_mean", DType::kFloat32, {3}),
                               Spec("bn.running_var", DType::kFloat32, {3}),
                               Spec("bn.weight", DType::kFloat32, {3})});
  ASSERT_TRUE(s.ok());
  const float values[9] = {0.1234567f, -3, 1e-7f, -0.9f, 0.3333333f, 1e-9f, 1, 2, 3};
  for (size_t i = 0; i < 3; ++i) std::memcpy(s->TensorData(i), values + 3 * i, 3 * sizeof(float));
  for (UpdateCodec c : {UpdateCodec::kFp16, UpdateCodec::kInt8, UpdateCodec::kTopK}) {
    // Raw: 12 bytes each, whatever the codec; only bn.weight is compressed.
    const CodecOptions o = Options(c, 0.34);
    EXPECT_EQ(EncodedBytes(s->manifest(), o),
              12u + 12 + 12 + (c == UpdateCodec::kFp16 ? 6 : c == UpdateCodec::kInt8 ? 7 : 4 + 8 * 2))
        << UpdateCodecName(c);
    ModelState residual;
    auto r = RoundTrip(*s, o, &residual);
    ASSERT_TRUE(r.ok()) << r.status();
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(F(*r, "bn.running_mean")[i], values[i]) << UpdateCodecName(c);
      EXPECT_EQ(F(*r, "bn.running_var")[i], values[3 + i]) << UpdateCodecName(c);
    }
    if (c == UpdateCodec::kTopK) {
      for (int i = 0; i < 3; ++i) EXPECT_EQ(F(residual, "bn.running_var")[i], 0.0f);
    }
  }
}

TEST(UpdateCodecTest, NonFiniteValuesAreRefusedByEveryCodec) {
  for (UpdateCodec c : {UpdateCodec::kFp16, UpdateCodec::kInt8, UpdateCodec::kTopK}) {
    ModelState d = SampleDelta();
    const_cast<float*>(F(d, "fc.bias"))[3] = std::nanf("");
    auto e = EncodeUpdate(d, Options(c));
    ASSERT_FALSE(e.ok()) << UpdateCodecName(c);
    EXPECT_NE(e.status().message().find("tensor 'fc.bias'"), std::string::npos) << e.status();
  }
}

// Hostile encodings: each is a valid encoding with one thing broken.
class HostileEncodingTest : public ::testing::Test {
 protected:
  static constexpr char kWhat[] = "update from site 'mallory' for round 4";
  StatusOr<ModelState> Decode(const ModelState& e, const CodecOptions& o) {
    return DecodeUpdate(e, delta_, o, kWhat);
  }
  void ExpectRefused(const ModelState& e, const CodecOptions& o, const std::string& fragment) {
    auto r = Decode(e, o);
    ASSERT_FALSE(r.ok()) << "accepted an encoding with " << fragment;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(kWhat), std::string::npos) << r.status();
    EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status();
  }
  ModelState Encode(const CodecOptions& o) {
    auto e = EncodeUpdate(delta_, o);
    EXPECT_TRUE(e.ok()) << e.status();
    return std::move(e).value();
  }
  // Byte offset of the encoding of the first tensor (conv.weight).
  static constexpr size_t kFirst = 12;
  ModelState delta_ = SampleDelta();
};

TEST_F(HostileEncodingTest, CodecOtherThanNegotiatedIsRefused) {
  ModelState e = Encode(Options(UpdateCodec::kFp16));
  ExpectRefused(e, Options(UpdateCodec::kInt8), "must be one uint8 tensor 'codec/int8'");
  // Same size by coincidence is not enough: the header names the codec.
  ModelState relabelled = e.Clone();
  relabelled.data()[4] = static_cast<uint8_t>(UpdateCodec::kInt8);
  ExpectRefused(relabelled, Options(UpdateCodec::kFp16), "negotiated fp16");
}

TEST_F(HostileEncodingTest, BadMagicAndTensorCountAreRefused) {
  ModelState e = Encode(Options(UpdateCodec::kInt8));
  ModelState m = e.Clone();
  m.data()[0] = 'X';
  ExpectRefused(m, Options(UpdateCodec::kInt8), "bad magic");
  ModelState c = e.Clone();
  c.data()[8] = 9;
  ExpectRefused(c, Options(UpdateCodec::kInt8), "encodes 9 tensors, the model has 4");
}

TEST_F(HostileEncodingTest, WrongSizeIsRefusedBeforeDecoding) {
  auto small = ModelState::Create({Spec("codec/int8", DType::kUInt8, {20})});
  ASSERT_TRUE(small.ok());
  ExpectRefused(*small, Options(UpdateCodec::kInt8), "bytes");
  std::vector<TensorSpec> huge = {Spec("codec/int8", DType::kUInt8, {int64_t{1} << 40})};
  Status s = CheckEncodedManifest(huge, delta_.manifest(), Options(UpdateCodec::kInt8), kWhat);
  EXPECT_FALSE(s.ok());
}

TEST_F(HostileEncodingTest, NonFiniteOrNegativeInt8ScaleIsRefused) {
  for (float scale : {std::nanf(""), INFINITY, -1.0f}) {
    ModelState e = Encode(Options(UpdateCodec::kInt8));
    std::memcpy(e.data() + kFirst, &scale, sizeof scale);
    ExpectRefused(e, Options(UpdateCodec::kInt8), "tensor 'conv.weight': int8 scale");
  }
}

TEST_F(HostileEncodingTest, Int8CodeMinus128IsRefused) {
  ModelState e = Encode(Options(UpdateCodec::kInt8));
  e.data()[kFirst + 4 + 5] = 0x80;
  ExpectRefused(e, Options(UpdateCodec::kInt8), "int8 code -128 at index 5");
}

TEST_F(HostileEncodingTest, Fp16InfinityOrNaNIsRefused) {
  for (uint16_t h : {uint16_t{0x7c00}, uint16_t{0xfe00}}) {
    ModelState e = Encode(Options(UpdateCodec::kFp16));
    std::memcpy(e.data() + kFirst + 2 * 7, &h, sizeof h);
    ExpectRefused(e, Options(UpdateCodec::kFp16), "tensor 'conv.weight': value at index 7");
  }
}

// Found by tests/fuzz/update_codec_fuzzer: running statistics travel raw, and a NaN there
// went through the decoder (the engine caught it later; now the decoder names it).
TEST(UpdateCodecTest, NonFiniteRawRunningStatisticIsRefused) {
  auto layout = ModelState::Create({Spec("bn.running_var", DType::kFloat32, {3})});
  ASSERT_TRUE(layout.ok());
  for (UpdateCodec c : {UpdateCodec::kFp16, UpdateCodec::kInt8, UpdateCodec::kTopK}) {
    auto e = EncodeUpdate(*layout, Options(c));
    ASSERT_TRUE(e.ok()) << e.status();
    const float nan = std::nanf("");
    std::memcpy(e->data() + 12 + 4, &nan, sizeof nan);  // header, then the raw bytes
    auto d = DecodeUpdate(*e, *layout, Options(c), "update from site 'a' for round 1");
    ASSERT_FALSE(d.ok()) << UpdateCodecName(c);
    EXPECT_NE(d.status().message().find("tensor 'bn.running_var': value at index 1 is not finite"),
              std::string::npos)
        << d.status();
  }
}

TEST_F(HostileEncodingTest, TopKIndicesOutOfRangeRepeatedOrUnsortedAreRefused) {
  const CodecOptions o = Options(UpdateCodec::kTopK, 0.1);  // conv.weight: k = 22 of 216
  const size_t indices = kFirst + 4;
  auto with_index = [&](int entry, uint32_t value) {
    ModelState e = Encode(o);
    std::memcpy(e.data() + indices + 4 * entry, &value, sizeof value);
    return e;
  };
  ExpectRefused(with_index(21, 216), o, "topk index 216 (entry 21) is out of range");
  ExpectRefused(with_index(21, 0xffffffffu), o, "topk index 4294967295");
  uint32_t first;
  ModelState e = Encode(o);
  std::memcpy(&first, e.data() + indices, sizeof first);
  ExpectRefused(with_index(1, first), o, "not above the previous one");
}

TEST_F(HostileEncodingTest, TopKCountOtherThanNegotiatedIsRefused) {
  const CodecOptions o = Options(UpdateCodec::kTopK, 0.1);
  ModelState e = Encode(o);
  const uint32_t k = 1000000;
  std::memcpy(e.data() + kFirst, &k, sizeof k);
  ExpectRefused(e, o, "topk sends 1000000 values, the negotiated fraction");
}

TEST_F(HostileEncodingTest, TopKNonFiniteValueIsRefused) {
  const CodecOptions o = Options(UpdateCodec::kTopK, 0.1);
  ModelState e = Encode(o);
  const float inf = INFINITY;
  std::memcpy(e.data() + kFirst + 4 + 4 * 22 + 4 * 3, &inf, sizeof inf);
  ExpectRefused(e, o, "is not finite");
}

TEST_F(HostileEncodingTest, EveryTruncationOrSingleByteFlipIsRefusedOrDecodesFinite) {
  // Fuzz-like sweep over the int8 encoding: flipping any byte either is refused or yields
  // finite values; it never crashes or reads outside the buffer (ASan builds check that).
  const CodecOptions o = Options(UpdateCodec::kInt8);
  const ModelState e = Encode(o);
  for (uint64_t i = 0; i < e.size_bytes(); ++i) {
    ModelState f = e.Clone();
    f.data()[i] ^= 0xa5;
    auto r = Decode(f, o);
    if (!r.ok()) continue;
    for (const char* name : {"conv.weight", "fc.bias"}) {
      const TensorSpec& t = r->manifest()[r->Find(name)];
      for (int64_t j = 0; j < t.numel(); ++j) ASSERT_TRUE(std::isfinite(F(*r, name)[j]));
    }
  }
}

}  // namespace
}  // namespace dermfed
