#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "client/cli/commands.h"
#include "client/datagen.h"

namespace dermfed::client {

void RegisterDatagenCommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<DatagenOptions>();
  CLI::App* cmd = app.add_subcommand(
      "datagen", "Write a generated dataset in a public dataset's exact format (PAD-UFES-20 or "
                 "ISIC-2019), with the real class imbalance and a learnable class signal");
  cmd->add_option("--format", o->format, "pad-ufes-20 or isic-2019")
      ->required()
      ->check(CLI::IsMember({"pad-ufes-20", "isic-2019"}));
  cmd->add_option("--out", o->out_dir, "folder to write (created; must not hold a dataset)")
      ->required();
  cmd->add_option("--images", o->images, "number of images")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  cmd->add_option("--seed", o->seed)->capture_default_str();
  cmd->add_option("--image-size", o->image_size, "image side in pixels")
      ->capture_default_str()
      ->check(CLI::Range(16, 2048));
  cmd->callback([o, &exit_code] {
    Status s = GenerateDataset(*o);
    if (!s.ok()) {
      std::cerr << "dermfed datagen: " << s.message() << "\n";
      exit_code = 1;
      return;
    }
    std::cout << "wrote " << o->images << " " << o->format << " images to " << o->out_dir << "\n";
  });
}

}  // namespace dermfed::client
