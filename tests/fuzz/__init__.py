"""Fuzzers: the API document (property-based) and the decoders (images, WAV, msgpack, JSON,
multipart, videos). Bounded in `make test`; `make fuzz` runs the same tests for minutes."""
