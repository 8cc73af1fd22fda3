// dermfed export: a trained model — a RUN folder, or a coordinator's global model — as a
// file for the Python ecosystem. deploy/python/dermfed_model.py rebuilds DualRefNet on
// torchvision's backbones around it.
//
// --format pytorch writes what torch.save writes (LibTorch's pickle_save), so
// `torch.load(FILE)` returns a plain dict:
//   state_dict       {name: tensor}, every parameter and buffer (BatchNorm statistics
//                    too) under DualRefNet's names, whose backbone part is torchvision's
//   config           RUN/config.json: model options, class names, image size, data format
//   metadata_schema  the metadata schema (RUN/schema.json, defaults written out)
//   dermfed          {format_version: 1, model_version: N (None for a local RUN),
//                     sha256: hex digest of the tensor buffer, as `dermfed rounds` shows}
#include <stdlib.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "client/cli/commands.h"
#include "client/cli/coordinator_flags.h"
#include "client/run_dir.h"
#include "common/digest.h"
#include "common/model/module_state.h"
#include "common/model/torch_call.h"
#include "common/model_transfer.h"

namespace dermfed::client {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

constexpr int64_t kExportFormatVersion = 1;

// JSON as the IValue that Python unpickles to the same dict, list, str, int, float, bool
// or None.
torch::IValue ToIValue(const Json& j) {
  switch (j.type()) {
    case Json::value_t::object: {
      c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
      for (const auto& item : j.items()) dict.insert(item.key(), ToIValue(item.value()));
      return dict;
    }
    case Json::value_t::array: {
      c10::impl::GenericList list(c10::AnyType::get());
      for (const Json& v : j) list.push_back(ToIValue(v));
      return list;
    }
    case Json::value_t::string:
      return j.get<std::string>();
    case Json::value_t::boolean:
      return j.get<bool>();
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return j.get<int64_t>();
    case Json::value_t::number_float:
      return j.get<double>();
    default:
      return torch::IValue();
  }
}

StatusOr<Json> ParseJson(const std::string& text, const std::string& what) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgumentError(what + ": not valid JSON");
  return j;
}

StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(path + ": cannot open");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return DataLossError(path + ": read failed");
  return text;
}

struct ExportSummary {
  size_t num_tensors = 0;
  std::string sha256_hex;
  size_t bytes = 0;
};

// Writes RUN folder `run_dir` as a torch.load-able dict (see the file comment) to `out`.
StatusOr<ExportSummary> ExportPytorch(const std::string& run_dir,
                                      std::optional<int64_t> model_version,
                                      const std::string& out) {
  if (!fs::is_directory(run_dir)) {
    return NotFoundError(run_dir +
                         ": no such RUN folder (one written by dermfed train, simulate or "
                         "download, holding model.dfs, config.json and schema.json)");
  }
  // LoadRun checks that config, schema and weights fit together.
  DF_ASSIGN_OR_RETURN(LoadedRun run, LoadRun(run_dir));
  const std::string config_path = run_dir + "/config.json";
  DF_ASSIGN_OR_RETURN(std::string config_text, ReadText(config_path));
  DF_ASSIGN_OR_RETURN(Json config, ParseJson(config_text, config_path));
  DF_ASSIGN_OR_RETURN(Json schema, ParseJson(SchemaToJson(run.schema), run_dir + "/schema.json"));
  DF_ASSIGN_OR_RETURN(ModelState state, model::ToModelState(*run.net));
  const auto digest = BufferDigest(state);
  ExportSummary summary;
  summary.num_tensors = state.num_tensors();
  summary.sha256_hex = HexDigest(digest.data(), digest.size());
  // Views into `state`, which outlives the pickling.
  DF_ASSIGN_OR_RETURN(model::NamedTensors tensors, model::ViewTensors(state));

  DF_ASSIGN_OR_RETURN(std::vector<char> bytes, model::TorchCall(out + ": pickling", [&] {
                        c10::Dict<std::string, torch::Tensor> state_dict;
                        for (const auto& [name, tensor] : tensors) state_dict.insert(name, tensor);
                        c10::impl::GenericDict info(c10::StringType::get(), c10::AnyType::get());
                        info.insert("format_version", kExportFormatVersion);
                        info.insert("model_version", model_version ? torch::IValue(*model_version)
                                                                   : torch::IValue());
                        info.insert("sha256", summary.sha256_hex);
                        c10::impl::GenericDict top(c10::StringType::get(), c10::AnyType::get());
                        top.insert("state_dict", state_dict);
                        top.insert("config", ToIValue(config));
                        top.insert("metadata_schema", ToIValue(schema));
                        top.insert("dermfed", info);
                        return torch::pickle_save(top);
                      }));
  DF_RETURN_IF_ERROR(WriteOutputFile(out, std::string_view(bytes.data(), bytes.size())));
  summary.bytes = bytes.size();
  return summary;
}

// A new folder under the system's temporary directory, removed with its contents when this
// goes out of scope.
class ScratchDir {
 public:
  static StatusOr<std::unique_ptr<ScratchDir>> Create(const std::string& prefix) {
    std::string pattern = (fs::temp_directory_path() / (prefix + ".XXXXXX")).string();
    if (mkdtemp(pattern.data()) == nullptr) {
      return InternalError(pattern + ": cannot create a temporary folder");
    }
    return std::unique_ptr<ScratchDir>(new ScratchDir(pattern));
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

struct ExportArgs {
  std::string model_dir;
  CoordinatorFlags coordinator;
  DownloadFlags download;
  std::string format;
  std::string out;
};

Status RunExport(const ExportArgs& a) {
  if (a.format != "pytorch") {
    return InvalidArgumentError("--format '" + a.format +
                                "' is not supported; the one format is pytorch (a file "
                                "torch.load reads)");
  }
  std::optional<int64_t> version;  // known for a coordinator's model only
  std::string run_dir = a.model_dir;
  std::unique_ptr<ScratchDir> downloaded;
  if (run_dir.empty()) {
    if (a.coordinator.coordinator.empty()) {
      return InvalidArgumentError(
          "give --model RUN (a folder written by dermfed train, simulate or download) or "
          "--coordinator HOST:PORT (or $DERMFED_COORDINATOR)");
    }
    DF_ASSIGN_OR_RETURN(MonitorClient client, ConnectToCoordinator(a.coordinator));
    DF_ASSIGN_OR_RETURN(downloaded, ScratchDir::Create("dermfed-export"));
    DF_ASSIGN_OR_RETURN(DownloadedModel model, DownloadRun(client, a.download, downloaded->path()));
    version = model.model_version;
    run_dir = downloaded->path();
  }
  DF_ASSIGN_OR_RETURN(ExportSummary summary, ExportPytorch(run_dir, version, a.out));
  const std::string what =
      version ? "global model version " + std::to_string(*version) : a.model_dir;
  std::printf("exported %s (%zu tensors, sha256 %s) to %s, %zu bytes\n", what.c_str(),
              summary.num_tensors, summary.sha256_hex.c_str(), a.out.c_str(), summary.bytes);
  return OkStatus();
}

}  // namespace

Status WriteOutputFile(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return InternalError(path + ": cannot create " + tmp);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::error_code ignored;
      fs::remove(tmp, ignored);
      return InternalError(path + ": write failed");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return InternalError(path + ": cannot rename into place: " + ec.message());
  return OkStatus();
}

void RegisterExportCommand(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<ExportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "export", "Write a trained or global model as a file PyTorch's torch.load reads");
  auto* model = cmd->add_option("--model", a->model_dir,
                                "RUN folder written by dermfed train, simulate or download");
  auto* coordinator = AddCoordinatorFlags(cmd, a->coordinator, /*required=*/false);
  coordinator->description(
      "export the global model of this coordinator HOST:PORT instead of --model (default: "
      "$DERMFED_COORDINATOR)");
  auto* version = AddDownloadFlags(cmd, a->download);
  model->excludes(coordinator);
  model->excludes(version);
  cmd->add_option("--format", a->format, "pytorch: a dict for torch.load (see README.md)")
      ->required();
  cmd->add_option("--out", a->out, "file to write")->required();
  cmd->callback([a, &exit_code] {
    Status s = RunExport(*a);
    if (!s.ok()) {
      std::cerr << "dermfed export: " << s.message() << "\n";
      exit_code = 1;
    }
  });
}

}  // namespace dermfed::client
