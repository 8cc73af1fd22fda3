#include "client/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/image/codec.h"
#include "client/image/transforms.h"
#include "tests/client/data/test_files.h"

namespace dermfed::client {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

constexpr int kSide = 16;
constexpr int kMetadataWidth = 2;

// A 16 x 16 PNG whose pattern depends on `row`, so that augmentation changes it visibly and
// two rows never look alike.
std::vector<uint8_t> RowPng(int row) {
  Image image;
  image.width = image.height = kSide;
  image.rgb.resize(kSide * kSide * 3);
  for (int y = 0; y < kSide; ++y) {
    for (int x = 0; x < kSide; ++x) {
      uint8_t* p = &image.rgb[(y * kSide + x) * 3];
      p[0] = static_cast<uint8_t>((x * 13 + row * 7) % 256);
      p[1] = static_cast<uint8_t>((y * 11 + row * 3) % 256);
      p[2] = static_cast<uint8_t>((x * y + row * 29) % 256);
    }
  }
  auto png = EncodePng(image);
  EXPECT_TRUE(png.ok()) << png.status();
  return png.ok() ? *png : std::vector<uint8_t>();
}

// `rows` PNGs in a temporary folder, labels row % 3 and metadata {row, -10 * row}.
struct Fixture {
  explicit Fixture(int rows) {
    for (int r = 0; r < rows; ++r) {
      const std::string path = dir.Join("img_" + std::to_string(r) + ".png");
      Status s = WriteFileBytes(path, RowPng(r));
      EXPECT_TRUE(s.ok()) << s;
      source.image_paths.push_back(path);
      source.labels.push_back(r % 3);
      source.metadata.push_back(static_cast<float>(r));
      source.metadata.push_back(-10.0f * static_cast<float>(r));
    }
    source.metadata_width = kMetadataWidth;
  }
  std::vector<int> AllRows() const {
    std::vector<int> rows(source.image_paths.size());
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int>(i);
    return rows;
  }

  TempDir dir;
  LoaderSource source;
};

LoaderConfig SmallConfig(int workers) {
  LoaderConfig config;
  config.image_size = kSide;
  config.batch_size = 4;
  config.workers = workers;
  config.prefetch_batches = 2;
  config.seed = 42;
  return config;
}

// Runs `fn` on its own thread. If it has not returned within `seconds` the loader has hung:
// say what hung and abort, so the failure is immediate and explicit rather than a ctest
// timeout with no message.
template <typename Fn>
void FinishesWithin(double seconds, const std::string& what, Fn&& fn) {
  std::promise<void> done;
  std::future<void> finished = done.get_future();
  std::thread runner([&] {
    fn();
    done.set_value();
  });
  if (finished.wait_for(std::chrono::duration<double>(seconds)) != std::future_status::ready) {
    std::fprintf(stderr, "FATAL: %s did not finish within %.0f s: the loader hangs\n", what.c_str(),
                 seconds);
    std::fflush(stderr);
    std::abort();
  }
  runner.join();
}

// Every batch of `epoch`, or the first error.
StatusOr<std::vector<Batch>> ReadEpoch(BatchLoader& loader, int epoch) {
  StatusOr<std::vector<Batch>> result = std::vector<Batch>();
  FinishesWithin(60, "reading epoch " + std::to_string(epoch), [&] {
    loader.StartEpoch(epoch);
    for (int64_t i = 0; i <= loader.num_batches(); ++i) {
      auto next = loader.Next();
      if (!next.ok()) {
        result = next.status();
        return;
      }
      if (!next->has_value()) return;
      result->push_back(std::move(**next));
    }
    ADD_FAILURE() << "Next() returned more than num_batches() = " << loader.num_batches()
                  << " batches";
  });
  return result;
}

std::vector<int> RowsOf(const std::vector<Batch>& batches) {
  std::vector<int> rows;
  for (const Batch& b : batches) rows.insert(rows.end(), b.rows.begin(), b.rows.end());
  return rows;
}

TEST(BatchLoaderTest, BatchesAreIdenticalWhateverTheNumberOfWorkers) {
  Fixture f(23);
  BatchLoader one(f.source, f.AllRows(), SmallConfig(1));
  BatchLoader three(f.source, f.AllRows(), SmallConfig(3));
  auto a = ReadEpoch(one, 2);
  auto b = ReadEpoch(three, 2);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(a->size(), b->size());
  for (size_t i = 0; i < a->size(); ++i) {
    const Batch& x = (*a)[i];
    const Batch& y = (*b)[i];
    EXPECT_EQ(x.rows, y.rows) << "batch " << i << ": row order differs between 1 and 3 workers";
    EXPECT_TRUE(torch::equal(x.labels, y.labels)) << "batch " << i << ": labels differ";
    EXPECT_TRUE(torch::equal(x.metadata, y.metadata)) << "batch " << i << ": metadata differs";
    EXPECT_TRUE(torch::equal(x.images, y.images))
        << "batch " << i << ": augmented images differ between 1 and 3 workers (max diff "
        << (x.images - y.images).abs().max().item<float>() << ")";
  }
}

TEST(BatchLoaderTest, DifferentEpochsGiveDifferentOrders) {
  Fixture f(23);
  BatchLoader loader(f.source, f.AllRows(), SmallConfig(2));
  auto first = ReadEpoch(loader, 1);
  auto second = ReadEpoch(loader, 2);
  auto first_again = ReadEpoch(loader, 1);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE(first_again.ok()) << first_again.status();
  EXPECT_NE(RowsOf(*first), RowsOf(*second)) << "epochs 1 and 2 served rows in the same order";
  EXPECT_EQ(RowsOf(*first), RowsOf(*first_again)) << "epoch 1 is not reproducible";
}

TEST(BatchLoaderTest, ServesEveryRowOfItsPartExactlyOncePerEpoch) {
  Fixture f(30);
  const std::vector<int> part = {0, 3, 4, 7, 9, 12, 15, 16, 20, 22, 25, 29};
  BatchLoader loader(f.source, part, SmallConfig(3));
  for (int epoch = 1; epoch <= 3; ++epoch) {
    auto batches = ReadEpoch(loader, epoch);
    ASSERT_TRUE(batches.ok()) << batches.status();
    std::map<int, int> times;
    for (int row : RowsOf(*batches)) ++times[row];
    std::map<int, int> once;
    for (int row : part) once[row] = 1;
    EXPECT_EQ(times, once) << "epoch " << epoch
                           << ": some row of the part was served twice, never, or is not in it";
  }
}

TEST(BatchLoaderTest, LastBatchHoldsTheRemainder) {
  Fixture f(10);
  BatchLoader loader(f.source, f.AllRows(), SmallConfig(2));
  EXPECT_EQ(loader.num_batches(), 3);
  auto batches = ReadEpoch(loader, 1);
  ASSERT_TRUE(batches.ok()) << batches.status();
  ASSERT_EQ(batches->size(), 3u);
  const Batch& last = batches->back();
  EXPECT_EQ(last.rows.size(), 2u);
  EXPECT_EQ(last.images.size(0), 2);
  EXPECT_EQ(last.labels.size(0), 2);
  EXPECT_EQ(last.metadata.size(0), 2);
  // After the last batch the epoch stays over.
  auto after = loader.Next();
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(after->has_value());
}

TEST(BatchLoaderTest, EachBatchEntryCarriesItsRowsImageLabelAndMetadata) {
  Fixture f(11);
  LoaderConfig config = SmallConfig(3);
  config.augment.enabled = false;
  BatchLoader loader(f.source, f.AllRows(), config);
  auto batches = ReadEpoch(loader, 1);
  ASSERT_TRUE(batches.ok()) << batches.status();
  for (const Batch& b : *batches) {
    ASSERT_EQ(b.images.sizes(),
              (std::vector<int64_t>{static_cast<int64_t>(b.rows.size()), 3, kSide, kSide}));
    ASSERT_EQ(b.metadata.sizes(),
              (std::vector<int64_t>{static_cast<int64_t>(b.rows.size()), kMetadataWidth}));
    for (size_t i = 0; i < b.rows.size(); ++i) {
      const int row = b.rows[i];
      const auto e = static_cast<int64_t>(i);
      EXPECT_EQ(b.labels[e].item<int64_t>(), row % 3) << "row " << row;
      EXPECT_EQ(b.metadata[e][0].item<float>(), static_cast<float>(row)) << "row " << row;
      EXPECT_EQ(b.metadata[e][1].item<float>(), -10.0f * row) << "row " << row;
      auto decoded = DecodeImageFile(f.source.image_paths[row]);
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      torch::Tensor expected = torch::empty({3, kSide, kSide});
      Rng rng = RowRng(config.seed, 1, static_cast<uint64_t>(row));
      TransformToTensor(*decoded, kSide, config.augment, rng, expected.data_ptr<float>());
      EXPECT_TRUE(torch::equal(b.images[e], expected))
          << "batch entry " << i << " does not hold the image of row " << row;
    }
  }
}

TEST(BatchLoaderTest, NoMetadataColumnsLeaveTheMetadataTensorUndefined) {
  Fixture f(5);
  f.source.metadata.clear();
  f.source.metadata_width = 0;
  BatchLoader loader(f.source, f.AllRows(), SmallConfig(1));
  auto batches = ReadEpoch(loader, 1);
  ASSERT_TRUE(batches.ok()) << batches.status();
  for (const Batch& b : *batches) EXPECT_FALSE(b.metadata.defined());
}

// Reads an epoch to its end, returning the errors it met on the way.
std::vector<Status> ErrorsOfEpoch(BatchLoader& loader) {
  std::vector<Status> errors;
  FinishesWithin(60, "an epoch with a bad image", [&] {
    loader.StartEpoch(1);
    for (int64_t i = 0; i <= loader.num_batches(); ++i) {
      auto next = loader.Next();
      if (!next.ok()) {
        errors.push_back(next.status());
        continue;
      }
      if (!next->has_value()) return;
    }
    ADD_FAILURE() << "the epoch did not end after " << loader.num_batches() << " batches";
  });
  return errors;
}

TEST(BatchLoaderTest, TruncatedImageIsAnErrorNamingTheFile) {
  Fixture f(12);
  const std::string bad = f.source.image_paths[5];
  std::vector<uint8_t> png = RowPng(5);
  png.resize(png.size() / 2);
  ASSERT_TRUE(WriteFileBytes(bad, png).ok());
  BatchLoader loader(f.source, f.AllRows(), SmallConfig(3));
  std::vector<Status> errors = ErrorsOfEpoch(loader);
  ASSERT_EQ(errors.size(), 1u) << "expected exactly one failing batch, the one holding row 5";
  EXPECT_THAT(std::string(errors[0].message()), HasSubstr(bad));
}

TEST(BatchLoaderTest, MissingImageIsAnErrorNamingTheFile) {
  Fixture f(12);
  const std::string missing = f.source.image_paths[7];
  std::filesystem::remove(missing);
  BatchLoader loader(f.source, f.AllRows(), SmallConfig(3));
  std::vector<Status> errors = ErrorsOfEpoch(loader);
  ASSERT_EQ(errors.size(), 1u) << "expected exactly one failing batch, the one holding row 7";
  EXPECT_THAT(std::string(errors[0].message()), HasSubstr(missing));
}

TEST(BatchLoaderTest, DestroyingALoaderMidEpochDoesNotHang) {
  Fixture f(40);
  LoaderConfig config = SmallConfig(3);
  config.batch_size = 2;
  config.prefetch_batches = 1;  // workers are blocked on a full queue when it is destroyed
  FinishesWithin(30, "destroying a loader mid-epoch", [&] {
    BatchLoader loader(f.source, f.AllRows(), config);
    loader.StartEpoch(1);
    auto first = loader.Next();
    EXPECT_TRUE(first.ok() && first->has_value());
  });
}

TEST(BatchLoaderTest, DestroyingALoaderRightAfterStartEpochDoesNotHang) {
  Fixture f(40);
  FinishesWithin(30, "destroying a loader right after StartEpoch", [&] {
    BatchLoader loader(f.source, f.AllRows(), SmallConfig(3));
    loader.StartEpoch(1);
  });
}

}  // namespace
}  // namespace dermfed::client
