// `dermfed demo`: a short local DualRefNet training run on generated data — what the
// quickstart runs, and a smoke test of the whole model stack on a new machine.
#ifndef DERMFED_CLIENT_CLI_DEMO_COMMAND_H_
#define DERMFED_CLIENT_CLI_DEMO_COMMAND_H_

#include <CLI/App.hpp>

namespace dermfed::client {

// Registers the subcommand on `app`; it runs when parsed.
void RegisterDemoCommand(CLI::App& app, int& exit_code);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_CLI_DEMO_COMMAND_H_
