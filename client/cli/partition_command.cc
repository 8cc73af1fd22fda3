#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "client/cli/commands.h"
#include "client/partition.h"

namespace dermfed::client {

void RegisterPartitionCommand(CLI::App& app, int& exit_code) {
  struct Args {
    PartitionOptions options;
    std::string scheme = "iid";
    bool copy_images = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "partition",
      "Split a dataset by patient/lesion into OUT/site-1..site-N, each in the input's own "
      "format, for simulating a federation; writes OUT/partition.json");
  AddDataFlags(cmd, a->options.data);
  cmd->add_option("--sites", a->options.sites, "number of sites")
      ->required()
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--scheme", a->scheme,
                  "iid (equal sizes), dirichlet (label skew, see --alpha) or column (sites by "
                  "a metadata column's value, see --column)")
      ->capture_default_str()
      ->check(CLI::IsMember({"iid", "dirichlet", "column"}));
  CLI::Option* alpha =
      cmd->add_option("--alpha", a->options.alpha,
                      "dirichlet: concentration; small = few classes per site, large = iid")
          ->capture_default_str()
          ->check(CLI::PositiveNumber);
  CLI::Option* column = cmd->add_option(
      "--column", a->options.column,
      "column: the metadata column (e.g. region, anatom_site_general); groups with no value "
      "form one more value, (missing)");
  cmd->add_option("--seed", a->options.seed, "seed of the assignment")->capture_default_str();
  cmd->add_option("--out", a->options.out_dir,
                  "folder for site-1..site-N and partition.json (must hold none of them)")
      ->required();
  cmd->add_flag("--copy-images", a->copy_images,
                "copy images even where a hard link to the input's file would do");
  cmd->callback([a, alpha, column, &exit_code] {
    auto scheme = ParsePartitionScheme(a->scheme);
    if (!scheme.ok()) {
      std::cerr << "dermfed partition: " << scheme.status().message() << "\n";
      exit_code = 2;
      return;
    }
    a->options.scheme = *scheme;
    if (alpha->count() > 0 && *scheme != PartitionScheme::kDirichlet) {
      std::cerr << "dermfed partition: --alpha applies to --scheme dirichlet only\n";
      exit_code = 2;
      return;
    }
    if ((column->count() > 0) != (*scheme == PartitionScheme::kColumn)) {
      std::cerr << "dermfed partition: --column goes with --scheme column, and only with it\n";
      exit_code = 2;
      return;
    }
    a->options.link_images = !a->copy_images;
    auto summary = PartitionDataset(a->options);
    if (!summary.ok()) {
      std::cerr << "dermfed partition: " << summary.status().message() << "\n";
      exit_code = 1;
      return;
    }
    std::cout << FormatPartitionTable(*summary);
    if (summary->skipped_rows > 0) {
      std::cout << summary->skipped_rows << " input rows were skipped and are in no site\n";
    }
    std::cout << "wrote " << summary->sites.size() << " sites (" << summary->images_linked
              << " images linked, " << summary->images_copied << " copied) and partition.json to "
              << a->options.out_dir << "\n";
  });
}

}  // namespace dermfed::client
