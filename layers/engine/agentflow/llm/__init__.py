"""LLM calls for the AI blocks (README, "LLM blocks"): the model catalogue and prices, one provider adapter per
SDK (openai, anthropic), usage and budget accounting, and `llm_call`, the one function blocks call."""
