#include "client/federation/federation_spec.h"

#include "client/data/metadata_schema.h"
#include "client/run_dir.h"
#include "common/model/module_state.h"

namespace dermfed::client {

model::DualRefNetOptions ModelOptionsFromSpec(const v1::FederationSpec& spec) {
  model::DualRefNetOptions o;
  o.backbone = spec.backbone();
  o.num_classes = spec.num_classes();
  o.metadata_dim = spec.metadata_dim();
  o.sr_factor = spec.sr_factor();
  return o;
}

Status SaveRunFromState(const std::string& dir, const v1::FederationSpec& spec,
                        const ModelState& state) {
  DF_ASSIGN_OR_RETURN(MetadataSchema schema,
                      ParseSchemaJson(spec.schema_json(), "the federation's schema"));
  RunConfig run;
  run.model = ModelOptionsFromSpec(spec);
  DF_ASSIGN_OR_RETURN(model::DualRefNet net, model::MakeDualRefNet(run.model));
  DF_RETURN_IF_ERROR(model::LoadModelStateInto(state, *net));
  run.class_names.assign(spec.class_names().begin(), spec.class_names().end());
  run.image_size = spec.image_size();
  run.format = spec.format();
  run.use_metadata = spec.use_metadata();
  return SaveRun(dir, run, schema, *net);
}

}  // namespace dermfed::client
