"""Yandex Cloud: YandexGPT chat (chat.py), text-search embeddings (encoder.py), and the API key
or IAM token both send (auth.py)."""
