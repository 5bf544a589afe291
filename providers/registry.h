#pragma once

// The providers this build runs, by the name in AddonCreated::provider. Built
// once by cli/ (the composition root; no global), handed to commands/ through
// commands::Context and to server/ through ApiOptions.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "providers/provider.h"

namespace via::providers {

class Registry {
 public:
  using Factory = std::function<std::unique_ptr<Provider>(const Environment&)>;

  // Adds a provider; the first one added is the default offered when no
  // add-on says which (an `addon create` remediation for a missing name).
  void Add(const std::string& name, Factory factory);

  bool Has(const std::string& name) const { return factories_.count(name) > 0; }
  // Names in the order they were added.
  const std::vector<std::string>& Names() const { return names_; }
  std::string Default() const { return names_.empty() ? std::string() : names_.front(); }

  // An instance of `name` working in `env`. Errors: InvalidArgument
  // "unknown_provider" naming the ones this build runs.
  Result<std::unique_ptr<Provider>> Make(const std::string& name, const Environment& env) const;

  // The unknown_provider refusal for `name`.
  Status Unknown(const std::string& name) const;

  // The readiness words of `name`'s storage and whether this build runs it,
  // for ReadinessInput.
  void Describe(const std::string& name, ReadinessInput& in, const Environment& env) const;

 private:
  std::map<std::string, Factory> factories_;
  std::vector<std::string> names_;
};

}  // namespace via::providers
