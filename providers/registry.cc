#include "providers/registry.h"

namespace via::providers {

void Registry::Add(const std::string& name, Factory factory) {
  if (!factories_.count(name)) names_.push_back(name);
  factories_[name] = std::move(factory);
}

Status Registry::Unknown(const std::string& name) const {
  std::string known;
  for (const std::string& n : names_) known += (known.empty() ? "" : ", ") + n;
  return InvalidArgument("unknown_provider",
                         "unknown provider '" + name + "'; this build provides: " + known)
      .WithOwner("platform");  // a build with that provider
}

Result<std::unique_ptr<Provider>> Registry::Make(const std::string& name,
                                                 const Environment& env) const {
  auto it = factories_.find(name);
  if (it == factories_.end()) return Unknown(name);
  return it->second(env);
}

void Registry::Describe(const std::string& name, ReadinessInput& in,
                        const Environment& env) const {
  in.default_provider = Default();
  auto it = factories_.find(name);
  in.provider_known = it != factories_.end();
  if (!in.provider_known) return;
  StorageWords words = it->second(env)->Words();
  in.storage_noun = words.noun;
  in.data_note = words.data_note;
}

}  // namespace via::providers
