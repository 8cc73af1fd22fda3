// gpu_train_bench: DualRefNet training throughput on one device, for gpu_bench.sh. Built in
// every configuration, the model-only (CUDA LibTorch) one included, so it needs nothing but
// the model and the Trainer (no CLI library: plain flags).
//
// Prints one JSON line per backbone:
//   {"name": "train_step_<backbone>_<px>px", "value": images/s, "unit": "images/s", "detail"}
// with the same names as site_bench_pytorch.py --skip-pipeline, which gpu_bench.sh runs for
// the baseline. A benchmark, not a test.
//
// usage: gpu_train_bench [--device cuda] [--backbones densenet121,vgg13] [--image-size 224]
//                        [--batch-size 32] [--steps 20] [--warmup-steps 5] [--threads 0]
//                        [--no-mixed-precision]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/model/runtime.h"
#include "tests/bench/train_step.h"

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: gpu_train_bench [--device cuda] [--backbones a,b] [--image-size N] "
               "[--batch-size N] [--steps N] [--warmup-steps N] [--threads N] "
               "[--no-mixed-precision]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string device_name = "cuda", backbones = "densenet121,vgg13";
  dermfed::bench::TrainStepCase c;
  c.image_size = 224;
  c.steps = 20;
  c.warmup_steps = 5;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--no-mixed-precision") {
      c.mixed_precision = false;
      continue;
    }
    if (i + 1 >= argc) return Usage();
    const char* v = argv[++i];
    if (a == "--device") {
      device_name = v;
    } else if (a == "--backbones") {
      backbones = v;
    } else if (a == "--image-size") {
      c.image_size = std::atoi(v);
    } else if (a == "--batch-size") {
      c.batch_size = std::atoi(v);
    } else if (a == "--steps") {
      c.steps = std::atoi(v);
    } else if (a == "--warmup-steps") {
      c.warmup_steps = std::atoi(v);
    } else if (a == "--threads") {
      threads = std::atoi(v);
    } else {
      return Usage();
    }
  }
  if (c.image_size < 16 || c.batch_size < 1 || c.steps < 1 || c.warmup_steps < 0) return Usage();
  dermfed::model::ConfigureThreads(threads);
  auto device = dermfed::model::PickDevice(device_name);
  if (!device.ok()) {
    std::fprintf(stderr, "gpu_train_bench: %s\n", std::string(device.status().message()).c_str());
    return 1;
  }
  size_t start = 0;
  while (start <= backbones.size()) {
    size_t comma = backbones.find(',', start);
    if (comma == std::string::npos) comma = backbones.size();
    c.backbone = backbones.substr(start, comma - start);
    start = comma + 1;
    if (c.backbone.empty()) continue;
    int64_t parameters = 0;
    auto ips = dermfed::bench::TrainStepImagesPerSecond(c, *device, &parameters);
    if (!ips.ok()) {
      std::fprintf(stderr, "gpu_train_bench: %s: %s\n", c.backbone.c_str(),
                   std::string(ips.status().message()).c_str());
      return 1;
    }
    std::printf(
        "{\"name\": \"train_step_%s_%dpx\", \"value\": %.3f, \"unit\": \"images/s\", "
        "\"detail\": \"batch %d, %s, %s, %d steps, %lld parameters\"}\n",
        c.backbone.c_str(), c.image_size, *ips, c.batch_size, device->str().c_str(),
        c.mixed_precision && device->is_cuda() ? "bfloat16 autocast" : "float32", c.steps,
        static_cast<long long>(parameters));
    std::fflush(stdout);
  }
  return 0;
}
