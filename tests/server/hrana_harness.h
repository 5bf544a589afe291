#pragma once

// A Hrana engine over SQLite files in a temporary directory, driven with JSON
// bodies the way @libsql/client sends them, for the tests of server/hrana*
// and server/sql_policy*.

#include <sqlite3.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "crypto/crypto.h"
#include "server/hrana.h"
#include "testing.h"

namespace via::server::hrana_test {

using json = nlohmann::json;

// ---------------------------------------------------------------- JSON builders

inline json Int(std::int64_t v) { return {{"type", "integer"}, {"value", std::to_string(v)}}; }
inline json Float(double v) { return {{"type", "float"}, {"value", v}}; }
inline json Text(const std::string& v) { return {{"type", "text"}, {"value", v}}; }
inline json Null() { return {{"type", "null"}}; }
inline json Blob(const Bytes& b) { return {{"type", "blob"}, {"base64", crypto::Base64Encode(b)}}; }

inline json Stmt(const std::string& sql, json args = json::array()) {
  return {
      {"sql", sql}, {"args", std::move(args)}, {"named_args", json::array()}, {"want_rows", true}};
}
inline json Execute(const std::string& sql, json args = json::array()) {
  return {{"type", "execute"}, {"stmt", Stmt(sql, std::move(args))}};
}
inline json Close() { return {{"type", "close"}}; }

inline json Body(const std::optional<std::string>& baton, json requests) {
  json body = {{"requests", std::move(requests)}};
  body["baton"] = baton ? json(*baton) : json(nullptr);
  return body;
}

inline const json& ResultOf(const json& response, std::size_t i) {
  const json& r = response.at("results").at(i);
  INFO(r.dump());
  REQUIRE(r.at("type") == "ok");
  return r.at("response");
}
inline const json& ErrorOf(const json& response, std::size_t i) {
  const json& r = response.at("results").at(i);
  INFO(r.dump());
  REQUIRE(r.at("type") == "error");
  return r.at("error");
}
inline const json& Rows(const json& response, std::size_t i) {
  return ResultOf(response, i).at("result").at("rows");
}

// ---------------------------------------------------------------- harness

// One engine over files in a temporary directory, with a clock moved by hand.
// Database key "a" is the file a.db, and so on.
class Harness {
 public:
  explicit Harness(hrana::Limits limits = {})
      : engine_(limits, [this] { return now_ += clock_step_.load(); }) {}

  HranaEngine::ConnectionFactory Open(const std::string& key) {
    std::filesystem::path path = dir_.path() / (key + ".db");
    return [path, this]() -> Result<via::sql::Connection> {
      ++opened_;
      sqlite3* raw = nullptr;
      int rc =
          sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
      via::sql::Connection db(raw);
      if (rc != SQLITE_OK) return Internal("cannot open " + path.string());
      sqlite3_busy_timeout(raw, 2000);
      if (on_open_) on_open_(raw);
      return Result<via::sql::Connection>(std::move(db));
    };
  }

  Result<std::string> Raw(const std::string& key, const std::string& body) {
    return engine_.HandlePipeline(key, body, Open(key));
  }

  // Runs a pipeline that must succeed as a whole and returns the response.
  json Run(const std::string& key, const json& body) {
    Result<std::string> out = Raw(key, body.dump());
    INFO(out.status().ToString());
    REQUIRE(out.ok());
    return json::parse(*out);
  }

  // A pipeline that must fail as a whole.
  Status Fail(const std::string& key, const json& body) {
    Result<std::string> out = Raw(key, body.dump());
    REQUIRE_FALSE(out.ok());
    return out.status();
  }

  // Runs one statement on a fresh stream that is closed in the same pipeline,
  // as @libsql/client does for client.execute().
  json Once(const std::string& key, json request) {
    json response = Run(key, Body(std::nullopt, json::array({std::move(request), Close()})));
    CHECK(response.at("baton").is_null());
    return response;
  }

  std::int64_t CountRows(const std::string& key, const std::string& table) {
    json r = Once(key, Execute("SELECT count(*) FROM " + table));
    return std::stoll(Rows(r, 0).at(0).at(0).at("value").get<std::string>());
  }

  HranaEngine& engine() { return engine_; }
  void Advance(std::int64_t ms) { now_ += ms; }
  void set_clock_step(std::int64_t ms) { clock_step_ = ms; }
  void set_on_open(std::function<void(sqlite3*)> f) { on_open_ = std::move(f); }
  int opened() const { return opened_; }
  const std::filesystem::path& dir() const { return dir_.path(); }

 private:
  // Atomic: the engine reads its clock from several threads.
  std::atomic<std::int64_t> now_{1732406400000};
  std::atomic<std::int64_t> clock_step_{0};
  int opened_ = 0;
  std::function<void(sqlite3*)> on_open_;
  testing::TempDir dir_;
  HranaEngine engine_;  // last: closes its connections before the directory goes
};

}  // namespace via::server::hrana_test
