"""The local tools: the local stack, which runs template.yaml's functions on one machine with no cloud account and
no Docker, and the `agentflow` command (README, "The local stack" and "The CLI"). Never part of the Lambda layer:
the engine (`agentflow`, layers/engine) does not import this package."""
