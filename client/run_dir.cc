#include "client/run_dir.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/model/module_state.h"
#include "common/model_state_file.h"

namespace dermfed::client {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Status WriteText(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out) return InternalError(path + ": cannot write");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return InternalError(path + ": cannot rename into place: " + ec.message());
  return OkStatus();
}

}  // namespace

Status SaveRunWeights(const std::string& dir, model::DualRefNetImpl& net) {
  DF_ASSIGN_OR_RETURN(ModelState state, model::ToModelState(net));
  return SaveModelState(state, dir + "/model.dfs");
}

Status SaveRun(const std::string& dir, const RunConfig& c, const MetadataSchema& schema,
               model::DualRefNetImpl& net) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return InternalError(dir + ": cannot create: " + ec.message());
  const auto& m = c.model;
  json j = {{"format_version", 1},
            {"model",
             {{"backbone", m.backbone},
              {"num_classes", m.num_classes},
              {"metadata_dim", m.metadata_dim},
              {"metadata_hidden", m.metadata_hidden},
              {"fusion_hidden", m.fusion_hidden},
              {"dropout", m.dropout},
              {"sr_factor", m.sr_factor},
              {"sr_channels", m.sr_channels}}},
            {"class_names", c.class_names},
            {"image_size", c.image_size},
            {"format", c.format},
            {"use_metadata", c.use_metadata}};
  DF_RETURN_IF_ERROR(WriteText(dir + "/config.json", j.dump(2) + "\n"));
  DF_RETURN_IF_ERROR(WriteSchemaFile(schema, dir + "/schema.json"));
  return SaveRunWeights(dir, net);
}

StatusOr<LoadedRun> LoadRun(const std::string& dir) {
  const std::string config_path = dir + "/config.json";
  std::ifstream in(config_path);
  if (!in) {
    return NotFoundError(config_path + ": not found; is " + dir +
                         " a model folder written by dermfed train?");
  }
  LoadedRun run;
  try {
    json j = json::parse(in);
    if (j.at("format_version").get<int>() != 1) {
      return InvalidArgumentError(config_path + ": unsupported format_version");
    }
    const json& m = j.at("model");
    auto& o = run.config.model;
    o.backbone = m.at("backbone").get<std::string>();
    o.num_classes = m.at("num_classes").get<int64_t>();
    o.metadata_dim = m.at("metadata_dim").get<int64_t>();
    o.metadata_hidden = m.at("metadata_hidden").get<int64_t>();
    o.fusion_hidden = m.at("fusion_hidden").get<int64_t>();
    o.dropout = m.at("dropout").get<double>();
    o.sr_factor = m.at("sr_factor").get<int64_t>();
    o.sr_channels = m.at("sr_channels").get<int64_t>();
    run.config.class_names = j.at("class_names").get<std::vector<std::string>>();
    run.config.image_size = j.at("image_size").get<int>();
    run.config.format = j.at("format").get<std::string>();
    run.config.use_metadata = j.at("use_metadata").get<bool>();
  } catch (const json::exception& e) {
    return InvalidArgumentError(config_path + ": " + e.what());
  }
  if (static_cast<int64_t>(run.config.class_names.size()) != run.config.model.num_classes) {
    return InvalidArgumentError(config_path + ": class_names has " +
                                std::to_string(run.config.class_names.size()) +
                                " entries but num_classes is " +
                                std::to_string(run.config.model.num_classes));
  }
  DF_ASSIGN_OR_RETURN(run.schema, LoadSchemaFile(dir + "/schema.json"));
  DF_ASSIGN_OR_RETURN(run.net, model::MakeDualRefNet(run.config.model));
  DF_ASSIGN_OR_RETURN(ModelState state, LoadModelState(dir + "/model.dfs"));
  Status s = model::LoadModelStateInto(state, *run.net);
  if (!s.ok()) return Annotate(s, dir + "/model.dfs");
  return run;
}

}  // namespace dermfed::client
