// dermfed: the researcher's and operator's command line.
#include <CLI/CLI.hpp>
#include <iostream>

#include "client/cli/commands.h"
#include "common/allocator.h"

int main(int argc, char** argv) {
  dermfed::TuneAllocator();  // model-sized transfers in 2 MiB chunks: see common/allocator.h
  CLI::App app{"dermfed: federated training of the DualRefNet skin-lesion classifier"};
  app.require_subcommand(1);
  int exit_code = 0;
  dermfed::client::RegisterDemoCommand(app, exit_code);
  dermfed::client::RegisterDatagenCommand(app, exit_code);
  dermfed::client::RegisterTrainCommand(app, exit_code);
  dermfed::client::RegisterEvalCommand(app, exit_code);
  dermfed::client::RegisterPredictCommand(app, exit_code);
  dermfed::client::RegisterPartitionCommand(app, exit_code);
  dermfed::client::RegisterSimulateCommand(app, exit_code);
  dermfed::client::RegisterMonitorCommands(app, exit_code);
  dermfed::client::RegisterExportCommand(app, exit_code);
  dermfed::client::RegisterExplainCommand(app, exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
