#pragma once

// The event log of a home: the LogStore plus the key that signs its
// checkpoints and the origin it signs for. Opening a home that has no log
// initializes it: creates the keys (0600) and appends LogInitialized as seq 1.
// Two processes initializing at once agree on one set of keys and one
// LogInitialized (keys are created exclusively, the append checks the head).
//
// Open() also checks the log's tail (the newest record decodes, hashes to its
// stored hash and links to the one before it; the newest checkpoint is signed
// by the log key over that size) and refuses a broken tail with DataLoss, so no
// command builds on a damaged log.

#include <memory>
#include <string>

#include "crypto/crypto.h"
#include "domain/ids.h"
#include "eventstore/checkpoint.h"
#include "eventstore/home.h"
#include "eventstore/log_store.h"

namespace via::eventstore {

class GroupCommitter;

class EventLog {
 public:
  struct Options {
    Home home;
    Clock* clock = nullptr;      // for LogInitialized's time
    IdGenerator* ids = nullptr;  // for the log id
    std::string actor;
    bool read_only = false;  // never initialize or append
    bool check_tail = true;  // auditors open a damaged log to inspect it
    // `via init --log URL`: keep this home's log on PostgreSQL at URL. A new
    // home remembers it (Home::log_url_file); a home whose log is elsewhere
    // refuses it (FailedPrecondition "log_url_mismatch" / "home_has_log").
    // Empty: the log the home already has (the SQLite file by default).
    std::string log_url;
    // Test-only crash points of every append, the initializing one included
    // (LogStore::set_crash_points).
    CrashPoints crash;
    // Append through this committer instead of this log's own connection:
    // via serve's work (owner work, scheduled snapshots) then shares
    // transactions with the server's other appends. Its store is another
    // connection to the same log, signing with the same key; it must
    // outlive the EventLog. Null: append on store().
    GroupCommitter* committer = nullptr;
  };

  // Errors: DataLoss for a broken tail or unreadable key; NotFound when
  // read_only and there is no log.
  static Result<std::unique_ptr<EventLog>> Open(const Options& options);

  LogStore& store() { return *store_; }
  const std::string& origin() const { return origin_; }
  const VerifierKey& verifier_key() const { return verifier_key_; }
  // Why seq 1 could not be read, for a log opened with check_tail = false; OK otherwise.
  const Status& identity_error() const { return identity_error_; }
  const std::string& log_id() const { return log_id_; }
  // True when this Open() created the log.
  bool initialized_now() const { return initialized_now_; }

  // Appends and signs the new checkpoint. See LogStore::Append (and
  // GroupCommitter::Submit when Options::committer is set).
  Result<AppendResult> Append(const AppendRequest& request);
  // The key and origin Append signs with (a null key when opened read-only),
  // for a GroupCommitter over store().
  Signer signer() const { return Signer{key_.get(), origin_}; }

 private:
  EventLog() = default;
  Status LoadIdentity();
  Status CheckTail();

  std::unique_ptr<LogStore> store_;
  std::unique_ptr<crypto::Ed25519PrivateKey> key_;
  std::string origin_;
  std::string log_id_;
  VerifierKey verifier_key_;
  bool initialized_now_ = false;
  Status identity_error_;
  CrashPoints crash_;
  GroupCommitter* committer_ = nullptr;
};

// Loads an Ed25519 key from a PEM file, creating it exclusively (0600) when
// missing. Returns the key on disk, which is another process's when it won.
Result<std::unique_ptr<crypto::Ed25519PrivateKey>> LoadOrCreateSigningKey(
    const std::filesystem::path& path);

// Loads the 32-byte credentials key, creating it exclusively (0600) when missing.
Result<Bytes> LoadOrCreateSecret(const std::filesystem::path& path);

// Verifier key text of the workload-token key (same form as the checkpoint key).
std::string WorkloadVerifierKey(const crypto::Ed25519PrivateKey& key);

}  // namespace via::eventstore
