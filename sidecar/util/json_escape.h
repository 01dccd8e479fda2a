#pragma once
#include <string>
#include <string_view>

namespace comet {

/**
 * Appends `text` to `out` as a JSON string literal (with the quotes).
 * Besides what JSON requires it escapes '<', '>', '&', U+2028 and U+2029, so the
 * same bytes are safe inside an HTML <script> block and in JSONP (old engines treat
 * U+2028/2029 as line terminators inside string literals). `text` must be valid UTF-8.
 */
void append_json_string(std::string& out, std::string_view text);

/**
 * Appends `json`, a valid JSON text (such as a member's info object from a token or the
 * app), with '<', '>', '&', U+2028 and U+2029 written as \u escapes, so it is as safe in
 * a <script> block and in JSONP as append_json_string's output. In valid JSON those
 * characters occur only inside strings, where the escape means the same character.
 */
void append_json_script_safe(std::string& out, std::string_view json);

}  // namespace comet
