// lingshu: learn the distribution of single-cell transcriptomes and simulate cells.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <exception>

#include "cli/command.h"
#include "core/allocator.h"
#include "core/error.h"

int main(int argc, char** argv) {
  lingshu::keep_freed_memory_in_process();
  CLI::App app{
      "lingshu: a masked discrete diffusion model of whole single-cell transcriptomes.\n"
      "Reads and writes AnnData .h5ad files of raw counts."};
  app.set_version_flag("--version", std::string("lingshu ") + LINGSHU_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  lingshu::cli::install_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const lingshu::UserError& e) {
    fmt::print(stderr, "lingshu: error: {}\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "lingshu: error: out of memory; use a smaller batch or a subset of cells\n");
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "lingshu: internal error (please report): {}\n", e.what());
    return 2;
  }
  return 0;
}
