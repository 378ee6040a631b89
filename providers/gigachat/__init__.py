"""Sber GigaChat: chat (chat.py), Embeddings (encoder.py), and the OAuth token and TLS
settings both use (auth.py)."""
