#pragma once
// The TLS 1.3 record layer (RFC 8446 section 5) for application data once the handshake
// is over: seals and opens records with the traffic secrets OpenSSL negotiated, and
// handles what may still arrive after the handshake (KeyUpdate, alerts). No socket and
// no buffers here (tls/tls_offload.h does the I/O): it works on bytes it is given.
// Only the three suites the context offers (tls/tls_context.cpp): AES-128-GCM-SHA256,
// AES-256-GCM-SHA384, CHACHA20-POLY1305-SHA256.

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace comet {

class Tls13Records {
 public:
  static constexpr size_t kHeader = 5;
  static constexpr size_t kMaxPlaintext = 16 * 1024;              // 2^14
  static constexpr size_t kMaxCiphertext = kMaxPlaintext + 256;   // 2^14 + 256
  static constexpr size_t kMaxRecord = kHeader + kMaxCiphertext;  // on the wire
  static constexpr size_t kOverhead = kHeader + 1 + 16;           // header, type, tag
  static constexpr size_t kMaxSecret = 48;                        // SHA-384

  // Alert descriptions (RFC 8446 6).
  static constexpr uint8_t kCloseNotify = 0;
  static constexpr uint8_t kUnexpectedMessage = 10;
  static constexpr uint8_t kBadRecordMac = 20;
  static constexpr uint8_t kRecordOverflow = 22;
  static constexpr uint8_t kIllegalParameter = 47;
  static constexpr uint8_t kDecodeError = 50;
  static constexpr uint8_t kInternalError = 80;

  /**
   * Record state for `suite` (the IANA id: 0x1301, 0x1302 or 0x1303) from the current
   * traffic secrets (each the suite's hash length) and the number of records already
   * written under `write_secret` (the first read record is number 0). Null for another
   * suite or when OpenSSL fails. The secrets are copied (kept for KeyUpdate).
   */
  static std::unique_ptr<Tls13Records> create(uint16_t suite, const uint8_t* read_secret,
                                              const uint8_t* write_secret, size_t secret_len,
                                              uint64_t write_seq);
  ~Tls13Records();  // wipes the secrets and keys
  Tls13Records(const Tls13Records&) = delete;
  Tls13Records& operator=(const Tls13Records&) = delete;

  enum class Open : uint8_t {
    kNeedMore,  // `in` holds no whole record yet
    kData,      // an application data record: [plain, plain + plain_len), maybe empty
    kControl,   // a KeyUpdate, handled (key_update_owed may now be set)
    kClosed,    // the peer's close_notify
    kError,     // anything else: close (alert() says which alert to send)
  };
  /**
   * Opens the record at the front of `in` (`len` bytes), decrypting in place. `used` is
   * the record's size on the wire for kData and kControl. After kClosed or kError every
   * later call is kError.
   */
  Open open(uint8_t* in, size_t len, size_t& used, uint8_t*& plain, size_t& plain_len);

  /**
   * Seals `len` <= kMaxPlaintext bytes of application data as one record at `out` (room
   * for len + kOverhead). Returns the record's size, 0 when it cannot (sequence numbers
   * exhausted or an OpenSSL failure: close).
   */
  size_t seal(const uint8_t* data, size_t len, uint8_t* out) { return seal_as(23, data, len, out); }
  /** The same with another inner content type (alerts, handshake; tests: anything). */
  size_t seal_as(uint8_t type, const uint8_t* data, size_t len, uint8_t* out);

  /** The peer asked for a KeyUpdate that was not sent yet: send_key_update before data. */
  bool key_update_owed() const { return key_update_owed_; }
  /**
   * Seals our KeyUpdate(update_not_requested) at `out` (room for kOverhead + 5) under the
   * current write key, then moves to the next one. Returns the record's size, 0 on failure.
   */
  size_t seal_key_update(uint8_t* out);

  /** Seals the alert to end with (alert(): close_notify or an error) at `out` (room for
      kOverhead + 2). Returns the size, 0 when none may be sent (the peer's alert came). */
  size_t seal_closing_alert(uint8_t* out);
  uint8_t alert() const { return alert_; }

  /** Sequence numbers, for tests. */
  uint64_t read_seq() const { return read_seq_; }
  uint64_t write_seq() const { return write_seq_; }

 private:
  Tls13Records() = default;
  /** Derives key and iv from `secret` into `ctx` (encrypting or decrypting). */
  bool install(EVP_CIPHER_CTX* ctx, const uint8_t* secret, uint8_t* iv, bool encrypt);
  /** secret = HKDF-Expand-Label(secret, "traffic upd", "", Hash.length). */
  bool next_secret(uint8_t* secret);
  Open fail(uint8_t alert);

  EVP_CIPHER_CTX* read_ctx_ = nullptr;
  EVP_CIPHER_CTX* write_ctx_ = nullptr;
  uint64_t read_seq_ = 0;
  uint64_t write_seq_ = 0;
  uint8_t read_secret_[kMaxSecret] = {};
  uint8_t write_secret_[kMaxSecret] = {};
  uint8_t read_iv_[12] = {};
  uint8_t write_iv_[12] = {};
  uint16_t suite_ = 0;
  uint8_t secret_len_ = 0;
  uint8_t alert_ = kCloseNotify;
  // Records in a row that carried no application data (KeyUpdates, empty records): each
  // costs far more than a byte of data, so a peer may send only so many (as BoringSSL
  // and rustls allow 32) before data must come.
  uint8_t idle_records_ = 0;
  bool key_update_owed_ = false;
  bool done_ = false;  // the peer's alert came or a record failed: nothing more opens
  bool peer_alerted_ = false;
};

}  // namespace comet
