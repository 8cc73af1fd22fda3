// The dermfed CLI's subcommands. Each Register* adds one to `app`; its callback runs the
// command and leaves the process exit code in `exit_code`.
#ifndef DERMFED_CLIENT_CLI_COMMANDS_H_
#define DERMFED_CLIENT_CLI_COMMANDS_H_

#include <CLI/App.hpp>

#include <string>
#include <string_view>

#include "client/site_data.h"
#include "client/trainer.h"
#include "common/model/dualrefnet.h"
#include "common/model/losses.h"

namespace dermfed::client {

void RegisterDemoCommand(CLI::App& app, int& exit_code);
void RegisterDatagenCommand(CLI::App& app, int& exit_code);
void RegisterTrainCommand(CLI::App& app, int& exit_code);
void RegisterEvalCommand(CLI::App& app, int& exit_code);
void RegisterPredictCommand(CLI::App& app, int& exit_code);
void RegisterPartitionCommand(CLI::App& app, int& exit_code);
void RegisterSimulateCommand(CLI::App& app, int& exit_code);
// status, rounds, metrics, sites, watch, pause, resume, stop, download (a running
// coordinator).
void RegisterMonitorCommands(CLI::App& app, int& exit_code);
// export: a RUN folder or a coordinator's global model as a file PyTorch reads.
void RegisterExportCommand(CLI::App& app, int& exit_code);
// explain: per-class importance of each metadata feature (local data or the coordinator).
void RegisterExplainCommand(CLI::App& app, int& exit_code);

// Flags shared by several commands, so each means the same everywhere.
void AddModelFlags(CLI::App* cmd, model::DualRefNetOptions& m, model::LossConfig& loss,
                   bool& no_weighted_ce);
void AddTrainerFlags(CLI::App* cmd, TrainerConfig& t);
void AddRuntimeFlags(CLI::App* cmd, int& threads, std::string& device);
void AddDataFlags(CLI::App* cmd, SiteDataOptions& d);

// Writes `bytes` to `path` through a temporary file renamed into place, so that nobody reads
// half a file; errors name the path.
Status WriteOutputFile(const std::string& path, std::string_view bytes);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_CLI_COMMANDS_H_
