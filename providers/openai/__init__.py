"""OpenAI-compatible servers (Ollama, vLLM, llama.cpp, LM Studio, OpenAI): chat (chat.py)."""
