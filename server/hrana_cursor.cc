#include "server/hrana_cursor.h"

#include <memory>
#include <string>
#include <utility>

#include "server/body_stream.h"
#include "server/hrana_json.h"
#include "server/hrana_protobuf.h"

namespace via::server {

void RunCursor(HranaEngine& engine, std::string_view database_key,
               const hrana::CursorRequest& request, hrana::Encoding encoding,
               const HranaEngine::ConnectionFactory& open_connection, const Responder& respond,
               const std::function<HttpResponse(const Status&)>& failure) {
  auto body = std::make_shared<BodyStream>(kCursorBufferBytes);
  // Whatever happens, the body ends (a reader never waits for a dead writer).
  struct Finisher {
    BodyStream& body;
    ~Finisher() { body.Finish(); }
  } finisher{*body};
  const bool protobuf = encoding == hrana::Encoding::kProtobuf;
  std::string pending;
  auto flush = [&] {
    const bool ok = body->Write(std::move(pending));
    pending.clear();
    return ok;
  };
  const Status status = engine.ExecuteCursor(
      database_key, request, open_connection,
      [&](const std::string& baton) {
        HttpResponse started;
        started.stream = body;
        if (protobuf) started.content_type = "application/x-protobuf";
        respond(std::move(started));
        pending = protobuf ? hrana::EncodeCursorHeaderProtobuf(baton)
                           : hrana::EncodeCursorHeader(baton);
        return flush();
      },
      [&](const hrana::CursorEntry& entry) {
        if (protobuf) {
          hrana::AppendCursorEntryProtobuf(pending, entry);
        } else {
          hrana::AppendCursorEntry(pending, entry);
        }
        return pending.size() < kCursorChunkBytes || flush();
      });
  // After ExecuteCursor returned, the announced baton is live (or dead for
  // good), so the client may go on as soon as it sees the body end.
  if (!status.ok()) {
    respond(failure(status));  // ignored when the 200 was already sent
    return;
  }
  flush();
}

}  // namespace via::server
