#pragma once
// Cursors: where a client is in each channel. Wire form (docs/protocol.md):
//   cursor   = entry *( "," entry )
//   entry    = channel "@" position
//   position = epoch "." id          e.g. "chat:42@k3j9q2.17,news@.0"
// An empty epoch with id 0 means "from the first message the channel will have".

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace comet {

struct Position {
  std::string epoch;
  uint64_t id = 0;
};

struct CursorEntry {
  std::string channel;
  Position position;
};

/** Channel names: 1..128 bytes of [A-Za-z0-9_.:/=+-] (no ',', '@' or spaces). */
bool is_valid_channel_name(std::string_view name);

/**
 * Event names: 1..64 bytes of [A-Za-z0-9_.:-]. Checked wherever a message enters (HTTP
 * publish, Redis payloads and history): SSE writes the name raw on its `event:` line.
 */
bool is_valid_event_name(std::string_view name);

/** Parses "epoch.id"; false when malformed (epoch chars [A-Za-z0-9], up to 32). */
bool parse_position(std::string_view text, Position& out);

/** Appends "epoch.id" to out. */
void append_position(std::string& out, const Position& p);

/** Parses a whole cursor; false on any malformed entry or invalid channel name. */
bool parse_cursor(std::string_view text, std::vector<CursorEntry>& out);

/** Appends one "channel@epoch.id" entry (with a leading ',' when out is not empty). */
void append_cursor_entry(std::string& out, std::string_view channel, const Position& p);

}  // namespace comet
