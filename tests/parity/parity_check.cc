// parity_check BACKBONE FIXTURE_DIR
// parity_check BACKBONE --skip REASON
//
// Loads every torchvision checkpoint of BACKBONE written by make_parity_fixtures.py (zip
// format, legacy format, and for densenet121 the 2017 key names) with
// LoadTorchvisionWeights, runs the fixture input through the C++ backbone in eval mode and
// requires torchvision's output to within kTolerance. Also requires StateDictOf() to list
// torchvision's keys in torchvision's order with torchvision's shapes, and a headless
// backbone loaded from the same file to embed as the full one does.
//
// Exit status: 0 parity holds, 1 it does not, 77 skipped (no Python with torchvision; ctest
// reports the test as skipped through SKIP_RETURN_CODE).
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/model/backbone.h"
#include "common/model/checkpoint.h"
#include "common/model/state_dict.h"

namespace dermfed::model {
namespace {

constexpr double kTolerance = 1e-4;
constexpr int kSkipped = 77;

std::string ShapeString(c10::IntArrayRef sizes) {
  std::ostringstream os;
  os << sizes;
  return os.str();
}

// Requires the C++ state dict to be torchvision's, key for key, in order, shape for shape.
Status CheckStateDictLayout(const BackboneImpl& backbone, const NamedTensors& torchvision) {
  const NamedTensors ours = StateDictOf(backbone);
  for (size_t i = 0; i < std::max(ours.size(), torchvision.size()); ++i) {
    if (i >= ours.size()) {
      return InvalidArgumentError("C++ state dict ends at " + std::to_string(i) +
                                  " tensors; torchvision continues with '" + torchvision[i].first +
                                  "'");
    }
    if (i >= torchvision.size()) {
      return InvalidArgumentError("torchvision's state dict ends at " + std::to_string(i) +
                                  " tensors; C++ continues with '" + ours[i].first + "'");
    }
    if (ours[i].first != torchvision[i].first) {
      return InvalidArgumentError("tensor " + std::to_string(i) + " is '" + ours[i].first +
                                  "' in C++ but '" + torchvision[i].first + "' in torchvision");
    }
    if (ours[i].second.sizes() != torchvision[i].second.sizes()) {
      return InvalidArgumentError("tensor '" + ours[i].first + "' has shape " +
                                  ShapeString(ours[i].second.sizes()) + " in C++ but " +
                                  ShapeString(torchvision[i].second.sizes()) + " in torchvision");
    }
  }
  return OkStatus();
}

StatusOr<torch::Tensor> Find(const NamedTensors& tensors, const std::string& key,
                             const std::string& path) {
  for (const auto& [name, tensor] : tensors) {
    if (name == key) return tensor;
  }
  return NotFoundError(path + " has no tensor '" + key + "'");
}

// A freshly initialised backbone with `checkpoint` loaded, in eval mode.
StatusOr<std::shared_ptr<BackboneImpl>> LoadBackbone(const std::string& name, bool include_head,
                                                     const std::string& checkpoint) {
  DF_ASSIGN_OR_RETURN(std::shared_ptr<BackboneImpl> backbone, MakeBackbone(name, include_head));
  DF_RETURN_IF_ERROR(LoadTorchvisionWeights(*backbone, checkpoint));
  backbone->eval();
  return backbone;
}

// Prints one result line; true when `actual` is `expected` to within kTolerance.
bool Compare(const std::string& what, const torch::Tensor& actual, const torch::Tensor& expected) {
  if (actual.sizes() != expected.sizes()) {
    std::cout << "FAIL " << what << ": shape " << ShapeString(actual.sizes()) << ", expected "
              << ShapeString(expected.sizes()) << "\n";
    return false;
  }
  const double diff = (actual - expected).abs().max().item<double>();
  const bool ok = diff <= kTolerance;
  std::cout << (ok ? "ok   " : "FAIL ") << what << ": max abs diff " << diff << " (tolerance "
            << kTolerance << ", max abs value " << expected.abs().max().item<double>() << ")\n";
  return ok;
}

std::string FileName(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

int Run(const std::string& name, const std::string& dir) {
  const std::filesystem::path skipped = std::filesystem::path(dir) / "SKIPPED";
  if (std::filesystem::exists(skipped)) {
    std::ifstream in(skipped);
    std::cout << "SKIPPED parity " << name << ": " << in.rdbuf();
    return kSkipped;
  }
  const std::string base = dir + "/" + name;
  auto io = ReadTorchCheckpoint(base + ".io.pth");
  if (!io.ok()) {
    std::cout << "FAIL " << io.status() << "\n";
    return 1;
  }
  auto input = Find(*io, "input", base + ".io.pth");
  auto expected = Find(*io, "output", base + ".io.pth");
  if (!input.ok() || !expected.ok()) {
    std::cout << "FAIL " << (input.ok() ? expected.status() : input.status()) << "\n";
    return 1;
  }

  bool ok = true;
  {
    auto backbone = MakeBackbone(name, /*include_head=*/true);
    auto reference = ReadTorchCheckpoint(base + ".zip.pth");
    Status layout = !backbone.ok()    ? backbone.status()
                    : !reference.ok() ? reference.status()
                                      : CheckStateDictLayout(**backbone, *reference);
    std::cout << (layout.ok() ? "ok   " : "FAIL ") << "state dict layout matches torchvision"
              << (layout.ok() ? "" : ": " + std::string(layout.message())) << "\n";
    ok = layout.ok();
  }
  torch::NoGradGuard no_grad;
  std::vector<std::string> checkpoints = {base + ".zip.pth", base + ".legacy.pth"};
  if (name == "densenet121") checkpoints.push_back(base + ".legacy_keys.pth");
  for (const auto& checkpoint : checkpoints) {
    auto full = LoadBackbone(name, /*include_head=*/true, checkpoint);
    if (!full.ok()) {
      std::cout << "FAIL " << full.status() << "\n";
      ok = false;
      continue;
    }
    ok = Compare(FileName(checkpoint) + " vs torchvision output", (*full)->forward(*input),
                 *expected) &&
         ok;
    if (checkpoint != checkpoints.front()) continue;
    // DualRefNet's path: a headless backbone takes the same file, ignoring the head, and
    // embeds exactly as the full one.
    auto headless = LoadBackbone(name, /*include_head=*/false, checkpoint);
    if (!headless.ok()) {
      std::cout << "FAIL headless: " << headless.status() << "\n";
      ok = false;
      continue;
    }
    ok = Compare(FileName(checkpoint) + " headless Embed vs full Embed",
                 (*headless)->Embed((*headless)->Features(*input)),
                 (*full)->Embed((*full)->Features(*input))) &&
         ok;
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace dermfed::model

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[2]) == "--skip") {
    std::cout << "SKIPPED parity " << argv[1] << ": " << argv[3] << "\n";
    return dermfed::model::kSkipped;
  }
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " BACKBONE FIXTURE_DIR\n"
              << "       " << argv[0] << " BACKBONE --skip REASON\n";
    return 2;
  }
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  if (const char* env = std::getenv("DERMFED_THREADS")) threads = std::atoi(env);
  if (threads > 0) torch::set_num_threads(threads);
  return dermfed::model::Run(argv[1], argv[2]);
}
