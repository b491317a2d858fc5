"""The CLI and one thin entry point per DVC stage: read params, call libraries, write outputs."""
