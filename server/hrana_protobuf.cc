#include "server/hrana_protobuf.h"

#include <cstdint>
#include <cstring>
#include <utility>

#include "server/utf8.h"

namespace via::server::hrana {

namespace {

// ---------------------------------------------------------------- wire format

enum WireType : std::uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

Status Bad(const std::string& path, const std::string& what) {
  return InvalidArgument("invalid_pipeline", (path.empty() ? "body" : path) + ": " + what);
}

// One length-delimited message being read.
class Reader {
 public:
  explicit Reader(std::string_view data) : p_(data.data()), end_(data.data() + data.size()) {}

  bool done() const { return p_ == end_; }

  bool Varint(std::uint64_t* out) {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return false;
      const auto b = static_cast<unsigned char>(*p_++);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        // The tenth byte may only carry the top bit.
        if (shift == 63 && b > 1) return false;
        *out = v;
        return true;
      }
    }
    return false;
  }

  bool Fixed64(std::uint64_t* out) {
    if (end_ - p_ < 8) return false;
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p_[i]);
    p_ += 8;
    *out = v;
    return true;
  }

  bool Bytes(std::string_view* out) {
    std::uint64_t n = 0;
    if (!Varint(&n) || n > static_cast<std::uint64_t>(end_ - p_)) return false;
    *out = std::string_view(p_, static_cast<std::size_t>(n));
    p_ += n;
    return true;
  }

  // The next field's number and wire type; false at a malformed key.
  bool Key(std::uint32_t* number, std::uint32_t* type) {
    std::uint64_t key = 0;
    if (!Varint(&key)) return false;
    *number = static_cast<std::uint32_t>(key >> 3);
    *type = static_cast<std::uint32_t>(key & 7);
    return *number != 0 && (key >> 3) <= 0x1fffffff;
  }

  bool Skip(std::uint32_t type) {
    std::uint64_t ignored = 0;
    std::string_view bytes;
    switch (type) {
      case kVarint:
        return Varint(&ignored);
      case kFixed64:
        return Fixed64(&ignored);
      case kLen:
        return Bytes(&bytes);
      case kFixed32:
        if (end_ - p_ < 4) return false;
        p_ += 4;
        return true;
      default:
        return false;  // groups (3, 4) are not part of proto3
    }
  }

 private:
  const char* p_;
  const char* end_;
};

class Parser {
 public:
  explicit Parser(const Limits& limits) : limits_(limits) {}

  Status Pipeline(std::string_view body, PipelineRequest* out) {
    Reader r(body);
    std::size_t count = 0;
    while (!r.done()) {
      std::uint32_t number = 0, type = 0;
      if (!r.Key(&number, &type)) return Malformed("");
      if (number == 1 && type == kLen) {
        VIA_RETURN_IF_ERROR(String(r, "baton", &out->baton.emplace()));
      } else if (number == 2 && type == kLen) {
        const std::string path = "requests[" + std::to_string(count) + "]";
        if (++count > limits_.max_requests) {
          return Bad("requests", "more than the limit of " + std::to_string(limits_.max_requests) +
                                     " requests");
        }
        std::string_view bytes;
        if (!r.Bytes(&bytes)) return Malformed(path);
        StreamRequest request;
        VIA_RETURN_IF_ERROR(Request(bytes, path, &request));
        out->requests.push_back(std::move(request));
      } else if (!r.Skip(type)) {
        return Malformed("");
      }
    }
    return Status::Ok();
  }

  Status Cursor(std::string_view body, CursorRequest* out) {
    Reader r(body);
    while (!r.done()) {
      std::uint32_t number = 0, type = 0;
      if (!r.Key(&number, &type)) return Malformed("");
      if (number == 1 && type == kLen) {
        VIA_RETURN_IF_ERROR(String(r, "baton", &out->baton.emplace()));
      } else if (number == 2 && type == kLen) {
        std::string_view bytes;
        if (!r.Bytes(&bytes)) return Malformed("batch");
        out->batch = Batch{};
        VIA_RETURN_IF_ERROR(ParseBatch(bytes, "batch", &out->batch));
      } else if (!r.Skip(type)) {
        return Malformed("");
      }
    }
    return Status::Ok();
  }

 private:
  static Status Malformed(const std::string& path) {
    return Bad(path, "malformed protobuf message");
  }

  static Status String(Reader& r, const std::string& path, std::string* out) {
    std::string_view bytes;
    if (!r.Bytes(&bytes)) return Malformed(path);
    if (!IsValidUtf8(bytes)) return Bad(path, "string is not valid UTF-8");
    out->assign(bytes);
    return Status::Ok();
  }

  static Status Int32(Reader& r, std::uint32_t type, const std::string& path, std::int32_t* out) {
    std::uint64_t v = 0;
    if (type != kVarint || !r.Varint(&v)) return Malformed(path);
    *out = static_cast<std::int32_t>(static_cast<std::uint32_t>(v));  // proto3 int32 truncates
    return Status::Ok();
  }

  Status SqlSize(const std::string& sql, const std::string& path) const {
    if (sql.size() > limits_.max_sql_bytes) {
      return Bad(path, "SQL text of " + std::to_string(sql.size()) +
                           " bytes, more than the limit of " + std::to_string(limits_.max_sql_bytes));
    }
    return Status::Ok();
  }

  // Fields 1 (sql) and 2 (sql_id) of a message that names a SQL text, plus
  // whatever `other` takes; exactly one of sql and sql_id at the end.
  template <typename Other>
  Status SqlOrSqlId(std::string_view bytes, const std::string& path, std::optional<std::string>* sql,
                    std::optional<std::int32_t>* sql_id, std::uint32_t sql_field,
                    std::uint32_t sql_id_field, Other&& other) {
    Reader r(bytes);
    while (!r.done()) {
      std::uint32_t number = 0, type = 0;
      if (!r.Key(&number, &type)) return Malformed(path);
      if (number == sql_field && type == kLen) {
        VIA_RETURN_IF_ERROR(String(r, path + ".sql", &sql->emplace()));
        VIA_RETURN_IF_ERROR(SqlSize(**sql, path + ".sql"));
      } else if (number == sql_id_field && type == kVarint) {
        VIA_RETURN_IF_ERROR(Int32(r, type, path + ".sql_id", &sql_id->emplace()));
      } else {
        bool handled = false;
        VIA_RETURN_IF_ERROR(other(r, number, type, &handled));
        if (!handled && !r.Skip(type)) return Malformed(path);
      }
    }
    if (sql->has_value() == sql_id->has_value()) {
      return Bad(path, "exactly one of \"sql\" and \"sql_id\" is required");
    }
    return Status::Ok();
  }

  Status Request(std::string_view bytes, const std::string& path, StreamRequest* out) {
    Reader r(bytes);
    bool set = false;
    while (!r.done()) {
      std::uint32_t number = 0, type = 0;
      if (!r.Key(&number, &type)) return Malformed(path);
      if (number < 1 || number > 8 || type != kLen) {
        if (!r.Skip(type)) return Malformed(path);
        continue;
      }
      std::string_view inner;
      if (!r.Bytes(&inner)) return Malformed(path);
      set = true;
      auto none = [](Reader&, std::uint32_t, std::uint32_t, bool*) { return Status::Ok(); };
      switch (number) {
        case 1:
          *out = CloseRequest{};
          break;
        case 2: {
          ExecuteRequest e;
          VIA_RETURN_IF_ERROR(Holder(inner, path + ".execute", "stmt", [&](std::string_view m) {
            return ParseStmt(m, path + ".execute.stmt", &e.stmt);
          }));
          *out = std::move(e);
          break;
        }
        case 3: {
          BatchRequest b;
          VIA_RETURN_IF_ERROR(Holder(inner, path + ".batch", "batch", [&](std::string_view m) {
            return ParseBatch(m, path + ".batch.batch", &b.batch);
          }));
          *out = std::move(b);
          break;
        }
        case 4: {
          SequenceRequest s;
          VIA_RETURN_IF_ERROR(SqlOrSqlId(inner, path + ".sequence", &s.sql, &s.sql_id, 1, 2, none));
          *out = std::move(s);
          break;
        }
        case 5: {
          DescribeRequest d;
          VIA_RETURN_IF_ERROR(SqlOrSqlId(inner, path + ".describe", &d.sql, &d.sql_id, 1, 2, none));
          *out = std::move(d);
          break;
        }
        case 6: {
          StoreSqlRequest s;
          Reader m(inner);
          while (!m.done()) {
            std::uint32_t n = 0, t = 0;
            if (!m.Key(&n, &t)) return Malformed(path + ".store_sql");
            if (n == 1 && t == kVarint) {
              VIA_RETURN_IF_ERROR(Int32(m, t, path + ".store_sql.sql_id", &s.sql_id));
            } else if (n == 2 && t == kLen) {
              VIA_RETURN_IF_ERROR(String(m, path + ".store_sql.sql", &s.sql));
              VIA_RETURN_IF_ERROR(SqlSize(s.sql, path + ".store_sql.sql"));
            } else if (!m.Skip(t)) {
              return Malformed(path + ".store_sql");
            }
          }
          *out = std::move(s);
          break;
        }
        case 7: {
          CloseSqlRequest c;
          Reader m(inner);
          while (!m.done()) {
            std::uint32_t n = 0, t = 0;
            if (!m.Key(&n, &t)) return Malformed(path + ".close_sql");
            if (n == 1 && t == kVarint) {
              VIA_RETURN_IF_ERROR(Int32(m, t, path + ".close_sql.sql_id", &c.sql_id));
            } else if (!m.Skip(t)) {
              return Malformed(path + ".close_sql");
            }
          }
          *out = c;
          break;
        }
        default:
          *out = GetAutocommitRequest{};
          break;
      }
    }
    if (!set) return Bad(path, "no request type is set (or an unknown one)");
    return Status::Ok();
  }

  // A message whose field 1 is the message `what` (ExecuteStreamReq.stmt,
  // BatchStreamReq.batch); absent, it is empty.
  template <typename Fn>
  Status Holder(std::string_view bytes, const std::string& path, const char* what, Fn&& parse) {
    Reader r(bytes);
    std::optional<std::string_view> inner;
    while (!r.done()) {
      std::uint32_t number = 0, type = 0;
      if (!r.Key(&number, &type)) return Malformed(path);
      if (number == 1 && type == kLen) {
        std::string_view m;
        if (!r.Bytes(&m)) return Malformed(path + "." + what);
        inner = m;  // a repeated message field merges in proto; Hrana clients send it once
      } else if (!r.Skip(type)) {
        return Malformed(path);
      }
    }
    return parse(inner.value_or(std::string_view()));
  }

  Status ParseStmt(std::string_view bytes, const std::string& path, Stmt* out) {
    std::size_t args = 0;
    return SqlOrSqlId(
        bytes, path, &out->sql, &out->sql_id, 1, 2,
        [&](Reader& r, std::uint32_t number, std::uint32_t type, bool* handled) -> Status {
          if ((number == 3 || number == 4) && type == kLen) {
            *handled = true;
            if (++args > limits_.max_args) {
              return Bad(path, "more than the limit of " + std::to_string(limits_.max_args) +
                                   " arguments");
            }
            std::string_view m;
            if (!r.Bytes(&m)) return Malformed(path);
            if (number == 3) {
              const std::string at = path + ".args[" + std::to_string(out->args.size()) + "]";
              VIA_RETURN_IF_ERROR(ParseValue(m, at, &out->args.emplace_back()));
            } else {
              const std::string at =
                  path + ".named_args[" + std::to_string(out->named_args.size()) + "]";
              VIA_RETURN_IF_ERROR(ParseNamedArg(m, at, &out->named_args.emplace_back()));
            }
          } else if (number == 5 && type == kVarint) {
            *handled = true;
            std::uint64_t v = 0;
            if (!r.Varint(&v)) return Malformed(path + ".want_rows");
            out->want_rows = v != 0;
          }
          return Status::Ok();
        });
  }

  Status ParseNamedArg(std::string_view bytes, const std::string& path, NamedArg* out) {
    Reader r(bytes);
    bool has_value = false;
    while (!r.done()) {
      std::uint32_t number = 0, type = 0;
      if (!r.Key(&number, &type)) return Malformed(path);
      if (number == 1 && type == kLen) {
        VIA_RETURN_IF_ERROR(String(r, path + ".name", &out->name));
      } else if (number == 2 && type == kLen) {
        std::string_view m;
        if (!r.Bytes(&m)) return Malformed(path + ".value");
        VIA_RETURN_IF_ERROR(ParseValue(m, path + ".value", &out->value));
        has_value = true;
      } else if (!r.Skip(type)) {
        return Malformed(path);
      }
    }
    if (!has_value) return Bad(path, "missing field \"value\"");
    return Status::Ok();
  }

  Status ParseValue(std::string_view bytes, const std::string& path, Value* out) {
    Reader r(bytes);
    bool set = false;
    while (!r.done()) {
      std::uint32_t number = 0, type = 0;
      if (!r.Key(&number, &type)) return Malformed(path);
      std::uint64_t v = 0;
      std::string_view m;
      if (number == 1 && type == kLen) {
        if (!r.Bytes(&m)) return Malformed(path);
        *out = nullptr;
      } else if (number == 2 && type == kVarint) {
        if (!r.Varint(&v)) return Malformed(path);
        *out = static_cast<std::int64_t>((v >> 1) ^ (~(v & 1) + 1));  // zigzag
      } else if (number == 3 && type == kFixed64) {
        if (!r.Fixed64(&v)) return Malformed(path);
        double d = 0;
        std::memcpy(&d, &v, sizeof d);
        *out = d;
      } else if (number == 4 && type == kLen) {
        std::string text;
        VIA_RETURN_IF_ERROR(String(r, path + ".text", &text));
        *out = std::move(text);
      } else if (number == 5 && type == kLen) {
        if (!r.Bytes(&m)) return Malformed(path);
        *out = Bytes(reinterpret_cast<const std::uint8_t*>(m.data()),
                     reinterpret_cast<const std::uint8_t*>(m.data()) + m.size());
      } else {
        if (!r.Skip(type)) return Malformed(path);
        continue;
      }
      set = true;
    }
    if (!set) return Bad(path, "no value type is set (or an unknown one)");
    return Status::Ok();
  }

  Status ParseBatch(std::string_view bytes, const std::string& path, Batch* out) {
    Reader r(bytes);
    while (!r.done()) {
      std::uint32_t number = 0, type = 0;
      if (!r.Key(&number, &type)) return Malformed(path);
      if (number == 1 && type == kLen) {
        const std::size_t index = out->steps.size();
        const std::string at = path + ".steps[" + std::to_string(index) + "]";
        if (index >= limits_.max_batch_steps) {
          return Bad(path + ".steps", "more than the limit of " +
                                          std::to_string(limits_.max_batch_steps) + " steps");
        }
        std::string_view m;
        if (!r.Bytes(&m)) return Malformed(at);
        VIA_RETURN_IF_ERROR(ParseStep(m, at, index, &out->steps.emplace_back()));
      } else if (!r.Skip(type)) {
        return Malformed(path);
      }
    }
    return Status::Ok();
  }

  Status ParseStep(std::string_view bytes, const std::string& path, std::size_t index,
                   BatchStep* out) {
    Reader r(bytes);
    std::optional<std::string_view> stmt;
    while (!r.done()) {
      std::uint32_t number = 0, type = 0;
      if (!r.Key(&number, &type)) return Malformed(path);
      std::string_view m;
      if (number == 1 && type == kLen) {
        if (!r.Bytes(&m)) return Malformed(path + ".condition");
        BatchCond cond;
        VIA_RETURN_IF_ERROR(ParseCond(m, path + ".condition", index, 1, &cond));
        out->condition = std::move(cond);
      } else if (number == 2 && type == kLen) {
        if (!r.Bytes(&m)) return Malformed(path + ".stmt");
        stmt = m;
      } else if (!r.Skip(type)) {
        return Malformed(path);
      }
    }
    if (!stmt) return Bad(path, "missing field \"stmt\"");
    return ParseStmt(*stmt, path + ".stmt", &out->stmt);
  }

  Status ParseCond(std::string_view bytes, const std::string& path, std::size_t step_index,
                   std::size_t depth, BatchCond* out) {
    if (depth > limits_.max_json_depth) {
      return Bad(path, "conditions nest deeper than " + std::to_string(limits_.max_json_depth) +
                           " levels");
    }
    Reader r(bytes);
    bool set = false;
    while (!r.done()) {
      std::uint32_t number = 0, type = 0;
      if (!r.Key(&number, &type)) return Malformed(path);
      std::uint64_t v = 0;
      std::string_view m;
      if ((number == 1 || number == 2) && type == kVarint) {
        if (!r.Varint(&v)) return Malformed(path);
        *out = BatchCond{};
        out->kind = number == 1 ? BatchCond::Kind::kOk : BatchCond::Kind::kError;
        out->step = static_cast<std::uint32_t>(v);
        if (v > 0xffffffffu || out->step >= step_index) {
          return Bad(path, "condition of step " + std::to_string(step_index) + " refers to step " +
                               std::to_string(v) + ", which is not an earlier step");
        }
      } else if (number == 3 && type == kLen) {
        if (!r.Bytes(&m)) return Malformed(path);
        BatchCond inner;
        VIA_RETURN_IF_ERROR(ParseCond(m, path + ".not", step_index, depth + 1, &inner));
        *out = BatchCond{};
        out->kind = BatchCond::Kind::kNot;
        out->conds.push_back(std::move(inner));
      } else if ((number == 4 || number == 5) && type == kLen) {
        if (!r.Bytes(&m)) return Malformed(path);
        *out = BatchCond{};
        out->kind = number == 4 ? BatchCond::Kind::kAnd : BatchCond::Kind::kOr;
        const std::string at = path + (number == 4 ? ".and" : ".or");
        Reader list(m);
        while (!list.done()) {
          std::uint32_t n = 0, t = 0;
          if (!list.Key(&n, &t)) return Malformed(at);
          if (n == 1 && t == kLen) {
            std::string_view c;
            if (!list.Bytes(&c)) return Malformed(at);
            const std::string item = at + ".conds[" + std::to_string(out->conds.size()) + "]";
            VIA_RETURN_IF_ERROR(
                ParseCond(c, item, step_index, depth + 1, &out->conds.emplace_back()));
          } else if (!list.Skip(t)) {
            return Malformed(at);
          }
        }
      } else if (number == 6 && type == kLen) {
        if (!r.Bytes(&m)) return Malformed(path);
        *out = BatchCond{};
        out->kind = BatchCond::Kind::kIsAutocommit;
      } else {
        if (!r.Skip(type)) return Malformed(path);
        continue;
      }
      set = true;
    }
    if (!set) return Bad(path, "no condition type is set (or an unknown one)");
    return Status::Ok();
  }

  const Limits& limits_;
};

// ---------------------------------------------------------------- encoding

void PutVarint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void PutKey(std::string& out, std::uint32_t number, WireType type) {
  PutVarint(out, (static_cast<std::uint64_t>(number) << 3) | type);
}

void PutVarintField(std::string& out, std::uint32_t number, std::uint64_t v) {
  PutKey(out, number, kVarint);
  PutVarint(out, v);
}

void PutSint64Field(std::string& out, std::uint32_t number, std::int64_t v) {
  PutVarintField(out, number,
                 (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
}

void PutBytesField(std::string& out, std::uint32_t number, std::string_view bytes) {
  PutKey(out, number, kLen);
  PutVarint(out, bytes.size());
  out.append(bytes);
}

// Text with each byte that is not part of valid UTF-8 replaced by U+FFFD.
void PutStringField(std::string& out, std::uint32_t number, std::string_view s) {
  if (IsValidUtf8(s)) return PutBytesField(out, number, s);
  std::string clean;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      clean += "\xEF\xBF\xBD";
      ++i;
    } else {
      clean.append(s.substr(i, n));
      i += n;
    }
  }
  PutBytesField(out, number, clean);
}

void PutOptString(std::string& out, std::uint32_t number, const std::optional<std::string>& s) {
  if (s) PutStringField(out, number, *s);
}

// A submessage written by `fill` into a scratch string, then length-prefixed.
template <typename Fill>
void PutMessage(std::string& out, std::uint32_t number, Fill&& fill) {
  std::string inner;
  fill(inner);
  PutBytesField(out, number, inner);
}

void PutEmpty(std::string& out, std::uint32_t number) { PutBytesField(out, number, {}); }

void PutValue(std::string& out, std::uint32_t number, const Value& value) {
  PutMessage(out, number, [&](std::string& m) {
    if (std::holds_alternative<std::nullptr_t>(value)) {
      PutEmpty(m, 1);
    } else if (const auto* i = std::get_if<std::int64_t>(&value)) {
      PutSint64Field(m, 2, *i);
    } else if (const auto* d = std::get_if<double>(&value)) {
      std::uint64_t bits = 0;
      std::memcpy(&bits, d, sizeof bits);
      PutKey(m, 3, kFixed64);
      for (int k = 0; k < 8; ++k) m.push_back(static_cast<char>((bits >> (8 * k)) & 0xff));
    } else if (const auto* s = std::get_if<std::string>(&value)) {
      PutStringField(m, 4, *s);
    } else {
      const Bytes& b = std::get<Bytes>(value);
      PutBytesField(m, 5,
                    std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
    }
  });
}

void PutError(std::string& out, std::uint32_t number, const Error& error) {
  PutMessage(out, number, [&](std::string& m) {
    PutStringField(m, 1, error.message);
    PutStringField(m, 2, error.code);
  });
}

void PutCols(std::string& out, std::uint32_t number, const std::vector<Col>& cols) {
  for (const Col& col : cols) {
    PutMessage(out, number, [&](std::string& m) {
      PutOptString(m, 1, col.name);
      PutOptString(m, 2, col.decl_type);
    });
  }
}

void PutRow(std::string& out, std::uint32_t number, const std::vector<Value>& row) {
  PutMessage(out, number, [&](std::string& m) {
    for (const Value& v : row) PutValue(m, 1, v);
  });
}

void PutStmtResult(std::string& out, std::uint32_t number, const StmtResult& r) {
  PutMessage(out, number, [&](std::string& m) {
    PutCols(m, 1, r.cols);
    for (const auto& row : r.rows) PutRow(m, 2, row);
    PutVarintField(m, 3, r.affected_row_count);
    if (r.last_insert_rowid) PutSint64Field(m, 4, *r.last_insert_rowid);
  });
}

void PutBatchResult(std::string& out, std::uint32_t number, const BatchResult& r) {
  PutMessage(out, number, [&](std::string& m) {
    // map<uint32, StmtResult> step_results = 1; map<uint32, Error> step_errors = 2
    for (std::size_t i = 0; i < r.step_results.size(); ++i) {
      if (!r.step_results[i]) continue;
      PutMessage(m, 1, [&](std::string& entry) {
        PutVarintField(entry, 1, i);
        PutStmtResult(entry, 2, *r.step_results[i]);
      });
    }
    for (std::size_t i = 0; i < r.step_errors.size(); ++i) {
      if (!r.step_errors[i]) continue;
      PutMessage(m, 2, [&](std::string& entry) {
        PutVarintField(entry, 1, i);
        PutError(entry, 2, *r.step_errors[i]);
      });
    }
  });
}

void PutDescribeResult(std::string& out, std::uint32_t number, const DescribeResult& r) {
  PutMessage(out, number, [&](std::string& m) {
    for (const DescribeParam& p : r.params) {
      PutMessage(m, 1, [&](std::string& param) { PutOptString(param, 1, p.name); });
    }
    for (const DescribeCol& c : r.cols) {
      PutMessage(m, 2, [&](std::string& col) {
        PutStringField(col, 1, c.name);
        PutOptString(col, 2, c.decl_type);
      });
    }
    PutVarintField(m, 3, r.is_explain ? 1 : 0);
    PutVarintField(m, 4, r.is_readonly ? 1 : 0);
  });
}

struct ResponseWriter {
  std::string& out;
  void operator()(const CloseResponse&) { PutEmpty(out, 1); }
  void operator()(const ExecuteResponse& r) {
    PutMessage(out, 2, [&](std::string& m) { PutStmtResult(m, 1, r.result); });
  }
  void operator()(const BatchResponse& r) {
    PutMessage(out, 3, [&](std::string& m) { PutBatchResult(m, 1, r.result); });
  }
  void operator()(const SequenceResponse&) { PutEmpty(out, 4); }
  void operator()(const DescribeResponse& r) {
    PutMessage(out, 5, [&](std::string& m) { PutDescribeResult(m, 1, r.result); });
  }
  void operator()(const StoreSqlResponse&) { PutEmpty(out, 6); }
  void operator()(const CloseSqlResponse&) { PutEmpty(out, 7); }
  void operator()(const GetAutocommitResponse& r) {
    PutMessage(out, 8, [&](std::string& m) { PutVarintField(m, 1, r.is_autocommit ? 1 : 0); });
  }
};

void PutDelimited(std::string& out, const std::string& message) {
  PutVarint(out, message.size());
  out += message;
}

Status CheckBody(std::string_view body, const Limits& limits) {
  if (body.size() > limits.max_body_bytes) {
    return InvalidArgument("invalid_pipeline", "request body of " + std::to_string(body.size()) +
                                                   " bytes, more than the limit of " +
                                                   std::to_string(limits.max_body_bytes));
  }
  return Status::Ok();
}

}  // namespace

Result<PipelineRequest> ParsePipelineRequestProtobuf(std::string_view body, const Limits& limits) {
  VIA_RETURN_IF_ERROR(CheckBody(body, limits));
  PipelineRequest request;
  VIA_RETURN_IF_ERROR(Parser(limits).Pipeline(body, &request));
  return request;
}

Result<CursorRequest> ParseCursorRequestProtobuf(std::string_view body, const Limits& limits) {
  VIA_RETURN_IF_ERROR(CheckBody(body, limits));
  CursorRequest request;
  VIA_RETURN_IF_ERROR(Parser(limits).Cursor(body, &request));
  return request;
}

std::string EncodePipelineResponseProtobuf(const PipelineResponse& response) {
  std::string out;
  PutOptString(out, 1, response.baton);
  PutOptString(out, 2, response.base_url);
  for (const StreamResult& result : response.results) {
    PutMessage(out, 3, [&](std::string& m) {
      if (const auto* error = std::get_if<Error>(&result)) {
        PutError(m, 2, *error);
      } else {
        PutMessage(m, 1, [&](std::string& r) {
          std::visit(ResponseWriter{r}, std::get<StreamResponse>(result));
        });
      }
    });
  }
  return out;
}

std::string EncodeCursorHeaderProtobuf(const std::optional<std::string>& baton) {
  std::string header;
  PutOptString(header, 1, baton);
  std::string out;
  PutDelimited(out, header);
  return out;
}

void AppendCursorEntryProtobuf(std::string& out, const CursorEntry& entry) {
  std::string m;
  if (const auto* e = std::get_if<StepBeginEntry>(&entry)) {
    PutMessage(m, 1, [&](std::string& b) {
      PutVarintField(b, 1, e->step);
      PutCols(b, 2, e->cols);
    });
  } else if (const auto* e = std::get_if<StepEndEntry>(&entry)) {
    PutMessage(m, 2, [&](std::string& b) {
      PutVarintField(b, 1, e->affected_row_count);
      if (e->last_insert_rowid) PutSint64Field(b, 2, *e->last_insert_rowid);
    });
  } else if (const auto* e = std::get_if<StepErrorEntry>(&entry)) {
    PutMessage(m, 3, [&](std::string& b) {
      PutVarintField(b, 1, e->step);
      PutError(b, 2, e->error);
    });
  } else if (const auto* e = std::get_if<RowEntry>(&entry)) {
    PutRow(m, 4, e->row);
  } else {
    PutError(m, 5, std::get<ErrorEntry>(entry).error);
  }
  PutDelimited(out, m);
}

std::string EncodeErrorProtobuf(const Error& error) {
  std::string out;
  PutStringField(out, 1, error.message);
  PutStringField(out, 2, error.code);
  return out;
}

}  // namespace via::server::hrana
