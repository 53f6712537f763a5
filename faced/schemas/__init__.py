"""Message and result types, defined once as msgspec Structs (JSON, msgpack, OpenAPI)."""
