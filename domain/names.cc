#include "domain/names.h"

namespace via {
namespace {

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

Status Check(std::string_view what, std::string_view value, const char* rule, bool ok) {
  if (ok) return Status::Ok();
  std::string shown(value.substr(0, 80));
  return InvalidArgument("invalid_name", std::string(what) + " '" + shown +
                                             "' does not match " + rule);
}

bool LowerName(std::string_view s) {
  if (s.empty() || s.size() > 63 || !IsLower(s[0])) return false;
  for (char c : s) {
    if (!IsLower(c) && !IsDigit(c) && c != '-') return false;
  }
  return true;
}

}  // namespace

Status ValidateAddonName(std::string_view name) {
  return Check("add-on name", name, kAddonNameRule, LowerName(name));
}

Status ValidateNodeName(std::string_view name) {
  return Check("node name", name, kAddonNameRule, LowerName(name));
}

Status ValidatePublicUrl(std::string_view url) {
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    rest = url.substr(8);
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);  // "http://host:7600/"
  bool ok = !rest.empty() && url.size() <= 255;
  for (char c : rest) {
    ok = ok && (IsLower(c) || IsUpper(c) || IsDigit(c) || c == '.' || c == '-' || c == ':' ||
                c == '[' || c == ']');
  }
  if (ok) return Status::Ok();
  return InvalidArgument("invalid_public_url",
                         "public URL '" + std::string(url.substr(0, 80)) +
                             "' must be http(s)://HOST[:PORT] with no path");
}

Status ValidateAppName(std::string_view name) {
  return Check("app name", name, kAddonNameRule, LowerName(name));
}

Status ValidateBindingName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 63 && IsUpper(name[0]);
  for (char c : name) ok = ok && (IsUpper(c) || IsDigit(c) || c == '_');
  return Check("binding name", name, kBindingNameRule, ok);
}

Status ValidateReleaseId(std::string_view id) {
  bool ok = !id.empty() && id.size() <= 64;
  for (char c : id) {
    ok = ok && (IsLower(c) || IsUpper(c) || IsDigit(c) || c == '.' || c == '_' || c == '-');
  }
  return Check("release id", id, kReleaseIdRule, ok);
}

bool LooksLikeId(std::string_view text, std::string_view prefix) {
  if (text.size() != prefix.size() + 26 || text.substr(0, prefix.size()) != prefix) return false;
  for (char c : text.substr(prefix.size())) {
    if (!IsDigit(c) && !IsUpper(c)) return false;
  }
  return true;
}

std::string DestroyedTombstone(const std::string& name, const std::string& addon_id) {
  return name + "#destroyed#" + addon_id;
}

std::string FailedTombstone(const std::string& name, const std::string& addon_id) {
  return name + "#failed#" + addon_id;
}

bool IsTombstoneName(std::string_view name) { return name.find('#') != std::string_view::npos; }

}  // namespace via
