"""agentflow: run AutoGPT-style agent graphs on AWS serverless, or locally."""

__version__ = "0.1.0"
