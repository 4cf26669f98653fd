"""Development tools: the Graph emulator, the sample generator, the demo, a local sshd.

Never imported by production code (the DAG, the glue, the core); tests and the demo use it.
"""
