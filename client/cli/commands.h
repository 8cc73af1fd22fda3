// The dermfed CLI's subcommands. Each Register* adds one to `app`; its callback runs the
// command and leaves the process exit code in `exit_code`.
#ifndef DERMFED_CLIENT_CLI_COMMANDS_H_
#define DERMFED_CLIENT_CLI_COMMANDS_H_

#include <CLI/App.hpp>

namespace dermfed::client {

void RegisterDemoCommand(CLI::App& app, int& exit_code);
void RegisterDatagenCommand(CLI::App& app, int& exit_code);

}  // namespace dermfed::client

#endif  // DERMFED_CLIENT_CLI_COMMANDS_H_
