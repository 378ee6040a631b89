"""The offline provider (chat.py): quotes the retrieved passages, no key and no network."""
