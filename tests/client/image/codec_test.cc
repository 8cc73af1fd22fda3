// PNG and JPEG decoding of untrusted bytes, and the scaled JPEG decode.
#include "client/image/codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace dermfed::client {
namespace {

Image Gradient(int w, int h) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &img.rgb[(static_cast<size_t>(y) * w + x) * 3];
      p[0] = static_cast<uint8_t>(x * 255 / std::max(1, w - 1));
      p[1] = static_cast<uint8_t>(y * 255 / std::max(1, h - 1));
      p[2] = 128;
    }
  }
  return img;
}

TEST(CodecTest, PngRoundTripIsExact) {
  Image img = Gradient(37, 21);
  auto bytes = EncodePng(img);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto back = DecodeImage(bytes->data(), bytes->size(), "g.png");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->width, 37);
  EXPECT_EQ(back->height, 21);
  EXPECT_EQ(back->rgb, img.rgb);
}

TEST(CodecTest, JpegRoundTripIsClose) {
  Image img = Gradient(64, 48);
  auto bytes = EncodeJpeg(img, 95);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto back = DecodeImage(bytes->data(), bytes->size(), "g.jpg");
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->rgb.size(), img.rgb.size());
  double err = 0;
  for (size_t i = 0; i < img.rgb.size(); ++i) err += std::abs(int(img.rgb[i]) - int(back->rgb[i]));
  EXPECT_LT(err / img.rgb.size(), 3.0);
}

TEST(CodecTest, JpegScaledDecodeKeepsTheShorterSideAtLeastMinSide) {
  Image img = Gradient(800, 600);
  auto bytes = EncodeJpeg(img);
  ASSERT_TRUE(bytes.ok());
  auto eighth = DecodeImage(bytes->data(), bytes->size(), "big.jpg", /*min_side=*/70);
  ASSERT_TRUE(eighth.ok()) << eighth.status();
  EXPECT_EQ(eighth->width, 100);  // 1/8 scale: 75 >= 70
  EXPECT_EQ(eighth->height, 75);
  auto half = DecodeImage(bytes->data(), bytes->size(), "big.jpg", /*min_side=*/224);
  ASSERT_TRUE(half.ok());
  EXPECT_GE(std::min(half->width, half->height), 224);
  EXPECT_LT(half->width, 800);
}

TEST(CodecTest, TruncatedImagesAreRefusedNamingTheFile) {
  Image img = Gradient(64, 64);
  for (bool png : {true, false}) {
    auto bytes = png ? EncodePng(img) : EncodeJpeg(img);
    ASSERT_TRUE(bytes.ok());
    auto r = DecodeImage(bytes->data(), bytes->size() / 2, "cut.img");
    ASSERT_FALSE(r.ok()) << (png ? "png" : "jpeg");
    EXPECT_NE(r.status().message().find("cut.img"), std::string::npos) << r.status();
  }
}

TEST(CodecTest, GarbageIsRefused) {
  const uint8_t junk[] = {'G', 'I', 'F', '8', '9', 'a', 0, 0};
  auto r = DecodeImage(junk, sizeof(junk), "x.gif");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("neither PNG nor JPEG"), std::string::npos);
  auto empty = DecodeImage(junk, 0, "empty.png");
  EXPECT_FALSE(empty.ok());
}

// CRC-32 (PNG's chunk checksum), to forge a header.
uint32_t Crc32(const uint8_t* p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
  }
  return ~c;
}

// A 70-byte PNG that declares 16384 x 16384 pixels would need 768 MiB to decode.
TEST(CodecTest, PngWithTooManyPixelsIsRefusedBeforeDecoding) {
  auto bytes = EncodePng(Gradient(1, 1));
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  std::vector<uint8_t> png = *bytes;
  // Signature (8), IHDR length (4), "IHDR" (4), width (4, big-endian), height (4), ...
  for (int i : {16, 20}) {
    png[i] = 0x00, png[i + 1] = 0x00, png[i + 2] = 0x40, png[i + 3] = 0x00;  // 16384
  }
  const uint32_t crc = Crc32(png.data() + 12, 4 + 13);
  for (int i = 0; i < 4; ++i) png[29 + i] = static_cast<uint8_t>(crc >> (24 - 8 * i));
  auto r = DecodeImage(png.data(), png.size(), "bomb.png");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("bomb.png: image of 16384x16384 pixels is above the limit"),
            std::string::npos)
      << r.status();
}

TEST(CodecTest, MissingFileIsNotFound) {
  auto r = DecodeImageFile("/nonexistent/dir/PAT_1_1_1.png");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace dermfed::client
