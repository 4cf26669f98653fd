"""Sub-commands of the ``icechat`` console script, one module each (see ``icechat.cli``)."""

COMMANDS: tuple[str, ...] = (
    "sample",
    "inspect",
    "render",
    "validate-mapping",
    "keys",
    "graph-emulator",
    "check",
    "verify",
    "evidence",
    "demo",
)
