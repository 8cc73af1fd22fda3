#include "common/model/runtime.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <thread>

#include "common/model/torch_call.h"

namespace dermfed::model {

int ConfigureThreads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;
  torch::set_num_threads(threads);
  return torch::get_num_threads();
}

StatusOr<c10::Device> PickDevice(const std::string& preference) {
  if (preference == "auto") {
    return torch::cuda::is_available() ? c10::Device(torch::kCUDA) : c10::Device(torch::kCPU);
  }
  DF_ASSIGN_OR_RETURN(c10::Device device, TorchCall("device '" + preference + "'", [&] {
                        return c10::Device(preference);
                      }));
  if (device.is_cuda() && !torch::cuda::is_available()) {
    return InvalidArgumentError("device '" + preference +
                                "' asked for, but LibTorch sees no CUDA GPU");
  }
  return device;
}

}  // namespace dermfed::model
