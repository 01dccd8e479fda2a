# Writes a C++ source holding a file's bytes (the browser client, served at /comet.js
# without any flag). Run by the build: cmake -DIN=file -DOUT=file.cpp -DNAME=symbol -P this.
file(READ "${IN}" content HEX)
string(LENGTH "${content}" hex_length)
math(EXPR size "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
file(WRITE "${OUT}.tmp"
     "// Generated from ${IN} by sidecar/embed_file.cmake; do not edit.\n"
     "#include <cstddef>\n"
     "extern const unsigned char ${NAME}[];\n"
     "extern const std::size_t ${NAME}_size;\n"
     "const unsigned char ${NAME}[] = {${bytes}0};\n"
     "const std::size_t ${NAME}_size = ${size};\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
