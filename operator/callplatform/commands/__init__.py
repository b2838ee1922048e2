"""Sub-commands of the `callplatform` CLI, one module each: `add_arguments(parser)` and `run(args) -> int`."""
