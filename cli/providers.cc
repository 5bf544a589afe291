// The providers this build runs: the one place that names them (DESIGN.md
// section 2: the registry is built by cli/, the composition root).

#include "cli/shell.h"
#include "providers/postgres/provider.h"
#include "providers/sqlite/provider.h"

namespace via::cli {

providers::Registry BuildProviderRegistry() {
  providers::Registry registry;
  providers::sqlite::Register(registry);  // first: the default provider
  providers::postgres::Register(registry);
  return registry;
}

}  // namespace via::cli
