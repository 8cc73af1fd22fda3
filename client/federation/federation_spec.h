// What a FederationSpec (the federation's model and data contract, handed to every site at
// Join and to researchers in the monitor's status) means locally: the model options it
// builds, and a RUN folder for a global model of the federation.
//
// Thread-compatible.
#ifndef DERMFED_CLIENT_FEDERATION_FEDERATION_SPEC_H_
#define DERMFED_CLIENT_FEDERATION_FEDERATION_SPEC_H_

#include <string>

#include "common/model/dualrefnet.h"
#include "common/model_state.h"
#include "common/status.h"
#include "dermfed/v1/federation.pb.h"

namespace dermfed::client {

model::DualRefNetOptions ModelOptionsFromSpec(const v1::FederationSpec& spec);

// Writes RUN (model.dfs, config.json, schema.json) holding the global model `state`, so
// `dermfed eval --model RUN` and `dermfed predict` use it. The state must fit the spec's
// model exactly.
Status SaveRunFromState(const std::string& dir, const v1::FederationSpec& spec,
                        const ModelState& state);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_FEDERATION_FEDERATION_SPEC_H_
