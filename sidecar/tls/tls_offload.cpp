#include "tls/tls_offload.h"

#include <openssl/crypto.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace comet {
namespace {

// What the callbacks collect for one SSL until the handover (its ex_data).
struct KeyStash {
  uint8_t client[Tls13Records::kMaxSecret];
  uint8_t server[Tls13Records::kMaxSecret];
  uint8_t client_len = 0;
  uint8_t server_len = 0;
  uint32_t server_records = 0;  // records written since SERVER_TRAFFIC_SECRET_0 was logged
};

void wipe(KeyStash* stash) {
  if (stash == nullptr) return;
  OPENSSL_cleanse(stash, sizeof *stash);
  delete stash;
}

void free_stash(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  wipe(static_cast<KeyStash*>(ptr));
}

int stash_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_stash);
  return index;
}

KeyStash* stash_of(const SSL* ssl) {
  return static_cast<KeyStash*>(SSL_get_ex_data(ssl, stash_index()));
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "LABEL <client random hex> <secret hex>" (the NSS key log format).
void keep_secret(const SSL* ssl, const char* line) {
  static constexpr char kClient[] = "CLIENT_TRAFFIC_SECRET_0 ";
  static constexpr char kServer[] = "SERVER_TRAFFIC_SECRET_0 ";
  const bool client = strncmp(line, kClient, sizeof kClient - 1) == 0;
  if (!client && strncmp(line, kServer, sizeof kServer - 1) != 0) return;
  const char* space = strrchr(line, ' ');
  if (space == nullptr) return;
  const char* hex = space + 1;
  const size_t hex_len = strlen(hex);
  if (hex_len % 2 != 0 || hex_len / 2 > Tls13Records::kMaxSecret) return;
  KeyStash* stash = stash_of(ssl);
  if (stash == nullptr) {
    stash = new KeyStash();
    if (SSL_set_ex_data(const_cast<SSL*>(ssl), stash_index(), stash) != 1) {
      wipe(stash);
      return;
    }
  }
  uint8_t* out = client ? stash->client : stash->server;
  for (size_t i = 0; i < hex_len / 2; i++) {
    const int high = hex_digit(hex[2 * i]);
    const int low = hex_digit(hex[2 * i + 1]);
    if (high < 0 || low < 0) return;
    out[i] = static_cast<uint8_t>(high * 16 + low);
  }
  (client ? stash->client_len : stash->server_len) = static_cast<uint8_t>(hex_len / 2);
  if (!client) stash->server_records = 0;
}

// Called for every record header OpenSSL writes (after sealing it). OpenSSL logs
// SERVER_TRAFFIC_SECRET_0 when it switches its write side to that key, after its
// Finished went out: the records counted from then on are under the application key.
void count_record(int write_p, int, int content_type, const void*, size_t, SSL* ssl, void*) {
  if (write_p == 0 || content_type != SSL3_RT_HEADER) return;
  KeyStash* stash = stash_of(ssl);
  if (stash != nullptr && stash->server_len > 0) stash->server_records++;
}

// Sealed records per send: four full records (64 KiB of output) per syscall.
constexpr size_t kBatch = 4 * (Tls13Records::kMaxPlaintext + Tls13Records::kOverhead);

uint8_t* batch_buffer() {
  // One per worker thread: output is sealed here and only what the kernel does not take
  // is copied to the connection.
  thread_local std::unique_ptr<uint8_t[]> buffer(new uint8_t[kBatch]);
  return buffer.get();
}

}  // namespace

void prepare_tls_offload(SSL_CTX* ctx) {
  stash_index();
  SSL_CTX_set_keylog_callback(ctx, keep_secret);
  SSL_CTX_set_msg_callback(ctx, count_record);
  SSL_CTX_set_read_ahead(ctx, 0);  // the read sequence starts at 0 only without it
}

namespace {

/**
 * The write sequence number at the handover is counted from when OpenSSL logs the
 * server's application secret (its session tickets follow); that order is OpenSSL 3.0's
 * and is what the tests check. Another OpenSSL keeps its own record layer until tested.
 */
bool handover_tested_with_this_openssl() {
  const unsigned long version = OpenSSL_version_num();
  return version >= 0x30000000UL && version < 0x30100000UL;
}

}  // namespace

std::unique_ptr<TlsOffload> TlsOffload::take_over(SSL* ssl) {
  KeyStash* stash = stash_of(ssl);
  SSL_set_ex_data(ssl, stash_index(), nullptr);
  SSL_set_msg_callback(ssl, nullptr);  // TLS 1.2 connections stay: no more counting
  std::unique_ptr<TlsOffload> offload;
  // Only when OpenSSL holds nothing but keys: no record read ahead or half-read, no
  // decrypted bytes, nothing waiting to be written.
  if (stash != nullptr && SSL_version(ssl) == TLS1_3_VERSION && SSL_is_init_finished(ssl) &&
      SSL_get_read_ahead(ssl) == 0 && SSL_pending(ssl) == 0 && SSL_has_pending(ssl) == 0 &&
      SSL_want(ssl) == SSL_NOTHING && stash->client_len > 0 &&
      stash->client_len == stash->server_len && handover_tested_with_this_openssl() &&
      // A client that negotiated max_fragment_length (RFC 6066) takes only shorter
      // records than ours: OpenSSL keeps it.
      SSL_SESSION_get_max_fragment_length(SSL_get0_session(ssl)) ==
          TLSEXT_max_fragment_length_DISABLED) {
    const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
    std::unique_ptr<Tls13Records> records =
        cipher == nullptr
            ? nullptr
            : Tls13Records::create(SSL_CIPHER_get_protocol_id(cipher), stash->client, stash->server,
                                   stash->client_len, stash->server_records);
    if (records != nullptr) offload.reset(new TlsOffload(std::move(records)));
  }
  wipe(stash);
  return offload;
}

TlsOffload::~TlsOffload() {
  free(partial_);
  free(unsent_);
}

TlsIo TlsOffload::read(int fd, char* buf, size_t cap, size_t& got, bool& more) {
  got = 0;
  more = false;
  if (peer_closed_) return TlsIo::kClosed;
  auto* bytes = reinterpret_cast<uint8_t*>(buf);
  size_t have = partial_len_;
  if (have > 0) memcpy(bytes, partial_, have);
  const ssize_t n = recv(fd, bytes + have, cap - have, 0);
  if (n < 0)
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? TlsIo::kWantRead
                                                                     : TlsIo::kError;
  if (n == 0) return TlsIo::kClosed;  // EOF (without close_notify, as tls_read takes it)
  have += static_cast<size_t>(n);
  free(partial_);
  partial_ = nullptr;
  partial_len_ = 0;
  // Plaintext is never longer than its record: each one moves down to the front.
  size_t pos = 0;
  while (pos < have && !peer_closed_) {
    size_t used;
    uint8_t* plain;
    size_t plain_len;
    switch (records_->open(bytes + pos, have - pos, used, plain, plain_len)) {
      case Tls13Records::Open::kNeedMore:
        partial_ = static_cast<uint8_t*>(malloc(have - pos));
        if (partial_ == nullptr) return TlsIo::kError;
        partial_len_ = static_cast<uint32_t>(have - pos);
        memcpy(partial_, bytes + pos, partial_len_);
        pos = have;
        break;
      case Tls13Records::Open::kData:
        memmove(bytes + got, plain, plain_len);
        got += plain_len;
        pos += used;
        break;
      case Tls13Records::Open::kControl:
        pos += used;
        break;
      case Tls13Records::Open::kClosed:
        peer_closed_ = true;
        break;
      case Tls13Records::Open::kError:
        return TlsIo::kError;
    }
  }
  if (peer_closed_ && got == 0) return TlsIo::kClosed;
  more = peer_closed_;
  return got > 0 ? TlsIo::kOk : TlsIo::kWantRead;
}

TlsIo TlsOffload::write(int fd, evbuffer* output) {
  for (;;) {
    if (unsent() > 0) {
      const ssize_t n = send(fd, unsent_ + unsent_begin_, unsent(), MSG_NOSIGNAL);
      if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? TlsIo::kWantWrite
                                                                         : TlsIo::kError;
      unsent_begin_ += static_cast<uint32_t>(n);
      if (unsent() > 0) return TlsIo::kWantWrite;
      free(unsent_);
      unsent_ = nullptr;
      unsent_begin_ = unsent_end_ = 0;
    }
    uint8_t* batch = batch_buffer();
    size_t filled = 0;
    // The peer asked for new keys: our KeyUpdate goes before anything sealed after it.
    if (records_->key_update_owed()) {
      filled = records_->seal_key_update(batch);
      if (filled == 0) return TlsIo::kError;
    }
    while (evbuffer_get_length(output) > 0 &&
           filled + Tls13Records::kMaxPlaintext + Tls13Records::kOverhead <= kBatch) {
      const size_t chunk = std::min(evbuffer_get_length(output), Tls13Records::kMaxPlaintext);
      const unsigned char* data = evbuffer_pullup(output, static_cast<ev_ssize_t>(chunk));
      if (data == nullptr) return TlsIo::kError;
      const size_t sealed = records_->seal(data, chunk, batch + filled);
      if (sealed == 0) return TlsIo::kError;
      evbuffer_drain(output, chunk);
      filled += sealed;
    }
    if (filled == 0) return TlsIo::kOk;
    ssize_t n = send(fd, batch, filled, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return TlsIo::kError;
      n = 0;
    }
    if (static_cast<size_t>(n) < filled) {
      // The kernel took part of it (maybe part of a record): the rest goes first next time.
      const size_t left = filled - static_cast<size_t>(n);
      unsent_ = static_cast<uint8_t*>(malloc(left));
      if (unsent_ == nullptr) return TlsIo::kError;
      unsent_end_ = static_cast<uint32_t>(left);
      memcpy(unsent_, batch + n, unsent_end_);
      unsent_begin_ = 0;
      return TlsIo::kWantWrite;
    }
  }
}

void TlsOffload::close(int fd) {
  if (unsent() > 0) {
    const ssize_t n = send(fd, unsent_ + unsent_begin_, unsent(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 || static_cast<size_t>(n) < unsent()) return;  // the alert cannot follow
    unsent_begin_ = unsent_end_;
  }
  uint8_t alert[Tls13Records::kOverhead + 2];
  const size_t size = records_->seal_closing_alert(alert);
  if (size > 0) (void)!send(fd, alert, size, MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace comet
