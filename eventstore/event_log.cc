#include "eventstore/event_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "eventstore/group_commit.h"
#include "eventstore/postgres/pg_log_store.h"
#include "eventstore/record_codec.h"

namespace via::eventstore {
namespace fs = std::filesystem;

namespace {

// A key file of the home: a small regular file, never followed through a
// symlink. One that is not (a link to /dev/zero, a device, something huge)
// is a damaged home: DataLoss "bad_key".
Result<Bytes> ReadKeyFile(const fs::path& path) {
  auto bytes = ReadFile(path, 64 * 1024);
  if (!bytes.ok() && bytes.status().code() == StatusCode::kInvalidArgument) {
    return DataLoss("bad_key", "key file " + bytes.status().message())
        .WithRemediation("restore " + path.string() + " from backup (see docs/operations.md)");
  }
  return bytes;
}

}  // namespace

Result<std::unique_ptr<crypto::Ed25519PrivateKey>> LoadOrCreateSigningKey(const fs::path& path) {
  auto existing = ReadKeyFile(path);
  if (!existing.ok() && existing.status().code() != StatusCode::kNotFound) {
    return existing.status();
  }
  if (!existing.ok()) {
    auto fresh = crypto::Ed25519PrivateKey::Generate();
    if (!fresh) return Internal("could not generate an Ed25519 key (OpenSSL)");
    std::string pem = fresh->ToPem();
    VIA_RETURN_IF_ERROR(fileio::CreateExclusively(path, AsBytes(pem), 0600));
    VIA_ASSIGN_OR_RETURN(existing, ReadKeyFile(path));
  }
  auto key = crypto::Ed25519PrivateKey::FromPem(AsChars(*existing));
  if (!key) {
    return DataLoss("bad_key", path.string() + ": not an Ed25519 private key in PKCS#8 PEM form");
  }
  return key;
}

Result<Bytes> LoadOrCreateSecret(const fs::path& path) {
  auto existing = ReadKeyFile(path);
  if (!existing.ok() && existing.status().code() != StatusCode::kNotFound) {
    return existing.status();
  }
  if (!existing.ok()) {
    VIA_RETURN_IF_ERROR(fileio::CreateExclusively(path, crypto::RandomBytes(32), 0600));
    VIA_ASSIGN_OR_RETURN(existing, ReadKeyFile(path));
  }
  if (existing->size() != 32) {
    return DataLoss("bad_key", path.string() + " must hold 32 bytes, it holds " +
                                   std::to_string(existing->size()));
  }
  return existing;
}

std::string WorkloadVerifierKey(const crypto::Ed25519PrivateKey& key) {
  return VerifierKey::For("via-workload", key.PublicKey()).ToString();
}

Result<std::unique_ptr<EventLog>> EventLog::Open(const Options& options) {
  const Home& home = options.home;
  std::unique_ptr<EventLog> log(new EventLog());
  std::error_code ec;
  VIA_ASSIGN_OR_RETURN(std::optional<std::string> url, home.LogUrl());
  bool remember_url = false;
  if (!options.log_url.empty()) {
    VIA_RETURN_IF_ERROR(postgres::ValidateLogUrl(options.log_url));
    if (url && *url != options.log_url) {
      return FailedPrecondition("log_url_mismatch",
                                "this home's event log is at " + *url + ", not " + options.log_url)
          .WithRemediation("a home keeps its log where `via init` put it; use another --home");
    }
    if (!url) {
      if (options.read_only) return Internal("--log on a read-only open");
      VIA_RETURN_IF_ERROR(home.EnsureDirectories());
      if (fs::exists(home.log_db(), ec)) {
        return FailedPrecondition("home_has_log", "this home already keeps its event log in " +
                                                      home.log_db().string() +
                                                      "; a home's log does not move")
            .WithRemediation("use a new --home for a log on PostgreSQL");
      }
      url = options.log_url;
      remember_url = true;  // once the log opens: a URL that fails is not kept
    }
  }
  if (options.read_only) {
    if (!url && !fs::exists(home.log_db(), ec)) {
      return NotFound("log_missing", "no event log in " + home.root.string())
          .WithRemediation("via init --home " + home.root.string());
    }
  } else {
    VIA_RETURN_IF_ERROR(home.EnsureDirectories());
  }
  LogStore::Options store_options;
  store_options.path = home.log_db().string();
  if (url) store_options.postgres_url = *url;
  store_options.read_only = options.read_only;
  VIA_ASSIGN_OR_RETURN(log->store_, LogStore::Open(store_options));
  log->store_->set_crash_points(options.crash);
  log->crash_ = options.crash;
  if (!options.read_only) log->committer_ = options.committer;
  VIA_ASSIGN_OR_RETURN(Head head, log->store_->GetHead());
  if (remember_url && head.seq > 0) {
    // A new home joining a log that already exists (another node's): it
    // needs that log's keys, copied from a home that has them; a key made
    // here would sign or derive nothing the log and the other nodes accept.
    for (const fs::path& key : {home.log_key(), home.workload_key(), home.credentials_key()}) {
      if (!fs::exists(key, ec)) {
        return FailedPrecondition("keys_missing",
                                  "the event log at " + *url + " already exists, and " +
                                      key.string() + " is missing: a node joining it needs the "
                                      "log's keys")
            .WithRemediation("copy keys/ (log.key, log.pub, workload.key, credentials.key) from "
                             "an existing node's home into " + home.keys_dir().string() +
                             " (0600), then run `via init --log " + *url + "` again");
      }
    }
  }
  if (remember_url) {
    const std::string line = *url + "\n";
    VIA_RETURN_IF_ERROR(WriteFileAtomically(home.log_url_file(), AsBytes(line), 0644));
  }

  if (head.seq == 0) {
    if (options.read_only) {
      return NotFound("log_empty", "the event log in " + home.root.string() + " is empty")
          .WithRemediation("via init --home " + home.root.string());
    }
    if (options.clock == nullptr || options.ids == nullptr) {
      return Internal("initializing a log needs a clock and an id generator");
    }
    VIA_ASSIGN_OR_RETURN(auto log_key, LoadOrCreateSigningKey(home.log_key()));
    VIA_ASSIGN_OR_RETURN(auto workload_key, LoadOrCreateSigningKey(home.workload_key()));
    VIA_RETURN_IF_ERROR(LoadOrCreateSecret(home.credentials_key()).status());
    std::string log_id = options.ids->NewId("lg_");
    std::string origin = "via.local/" + log_id;
    VerifierKey verifier = VerifierKey::For(origin, log_key->PublicKey());
    AppendRequest request;
    request.actor = options.actor;
    request.command_id = "init";
    request.recorded_at_ms = options.clock->NowMs();
    request.expected_head = Head{};
    request.events.push_back(
        LogInitialized{log_id, origin, verifier.ToString(), WorkloadVerifierKey(*workload_key)});
    auto appended = log->store_->Append(request, Signer{log_key.get(), origin});
    if (appended.ok() && !appended->replayed) {
      log->initialized_now_ = true;
      std::string pub = verifier.ToString() + "\n";
      VIA_RETURN_IF_ERROR(WriteFileAtomically(home.log_pub(), AsBytes(pub), 0644));
    } else if (!appended.ok() && appended.status().code() != StatusCode::kAborted) {
      return appended.status().WithContext("initialize the event log");
    }
    // Lost the race (Aborted or replayed): another process initialized; read its record.
  }

  Status identity = log->LoadIdentity();
  if (!identity.ok()) {
    // Auditors still open a log whose seq 1 is damaged, so that verify can
    // name it; everything else refuses.
    if (options.check_tail) return identity;
    log->identity_error_ = identity;
  }

  if (!options.read_only) {
    VIA_ASSIGN_OR_RETURN(log->key_, LoadOrCreateSigningKey(home.log_key()));
    if (log->key_->PublicKey() != log->verifier_key_.public_key) {
      return DataLoss("key_mismatch", home.log_key().string() +
                                          " is not the key this log was initialized with")
          .WithRemediation("restore keys/log.key from backup (see docs/operations.md)");
    }
  }
  if (options.check_tail) VIA_RETURN_IF_ERROR(log->CheckTail());
  return log;
}

namespace {

// Whether a failed read says something about the log's content (a row or
// note missing or undecodable), rather than that the read did not happen.
bool IsAboutTheLog(const Status& s) {
  return s.code() == StatusCode::kNotFound || s.code() == StatusCode::kDataLoss;
}

}  // namespace

Status EventLog::LoadIdentity() {
  auto first = store_->Read(1);
  if (!first.ok()) {
    // Only a missing or undecodable seq 1 says the log is not initialized; a
    // read that did not reach the log (log_unreachable, busy) says nothing
    // about it, and an integrity alarm for it would be false.
    if (!IsAboutTheLog(first.status())) return first.status();
    return DataLoss("log_not_initialized", "seq 1: " + first.status().message());
  }
  const auto* init = std::get_if<LogInitialized>(&first->event);
  if (init == nullptr) return DataLoss("log_not_initialized", "seq 1 is not LogInitialized");
  auto key = VerifierKey::Parse(init->checkpoint_verifier_key);
  if (!key.ok()) {
    return DataLoss("log_not_initialized", "seq 1 carries a bad verifier key: " +
                                               key.status().message());
  }
  origin_ = init->origin;
  log_id_ = init->log_id;
  verifier_key_ = *key;
  return Status::Ok();
}

Status EventLog::CheckTail() {
  // One snapshot for every fact compared below: another process appending in
  // between would make a healthy tail look broken.
  VIA_ASSIGN_OR_RETURN(sql::ReadTransaction snapshot, store_->BeginRead());
  VIA_ASSIGN_OR_RETURN(Head head, store_->GetHead());
  if (head.seq == 0) return Status::Ok();
  crash_.At("tail.between_reads");
  VIA_ASSIGN_OR_RETURN(StoredRecord last, store_->ReadRow(head.seq));
  auto tail_error = [&](std::uint64_t seq, const std::string& what) {
    return DataLoss("broken_tail", "the event log's tail is damaged at seq " +
                                       std::to_string(seq) + ": " + what +
                                       "; refusing to append after it")
        .WithRemediation("via audit verify");
  };
  auto record = DecodeRecord(last.bytes);
  if (!record.ok()) return tail_error(head.seq, record.status().message());
  if (record->seq != head.seq) return tail_error(head.seq, "row holds another seq");
  if (crypto::Sha256::Digest(last.bytes) != last.hash) {
    return tail_error(head.seq, "record does not match its stored hash");
  }
  if (head.seq > 1) {
    VIA_ASSIGN_OR_RETURN(StoredRecord before, store_->ReadRow(head.seq - 1));
    if (before.hash != record->prev_hash) return tail_error(head.seq, "chain link broken");
  }
  auto note = store_->LatestCheckpoint();
  if (!note.ok()) {
    if (!IsAboutTheLog(note.status())) return note.status();
    return tail_error(head.seq, note.status().message());
  }
  auto checkpoint = OpenCheckpoint(*note, verifier_key_);
  if (!checkpoint.ok()) return tail_error(head.seq, checkpoint.status().message());
  if (checkpoint->size != head.seq) {
    return tail_error(std::min(checkpoint->size, head.seq) + 1,
                      "newest checkpoint covers " + std::to_string(checkpoint->size) +
                          " records, the log holds " + std::to_string(head.seq));
  }
  VIA_ASSIGN_OR_RETURN(Hash256 root, merkle::Root(store_->nodes(), head.seq));
  if (root != checkpoint->root) return tail_error(head.seq, "Merkle root differs from checkpoint");
  return Status::Ok();
}

Result<AppendResult> EventLog::Append(const AppendRequest& request) {
  if (!key_) return FailedPrecondition("read_only", "the log was opened read-only");
  if (committer_ != nullptr) {
    if (request.events.empty()) return InvalidArgument("no_events", "an append needs an event");
    return committer_->Submit(request);
  }
  return store_->Append(request, Signer{key_.get(), origin_});
}

}  // namespace via::eventstore
