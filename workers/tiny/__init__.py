"""gft-tiny-chat: a small aligned chat model built here, deterministically, on a CPU."""
