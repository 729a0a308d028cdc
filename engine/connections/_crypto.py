"""Encryption of secrets at rest: a Fernet key from CATFLOW_SECRET_KEY or a key file.

Lose the key and the stored client secrets and tokens cannot be read: back up the
key file (or keep CATFLOW_SECRET_KEY in your secret store) with the database.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from engine.errors import CatflowError

KEY_VARIABLE = "CATFLOW_SECRET_KEY"


class SecretBox:
    def __init__(self, key: bytes, origin: str) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError:
            raise CatflowError(
                f"the secret key from {origin} is not a valid key (32 url-safe base64 bytes); "
                "make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ) from None
        self.origin = origin

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def open(self, sealed: str, what: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise CatflowError(
                f"{what} cannot be decrypted with the secret key from {self.origin}; "
                f"the key changed or was lost: restore it ({KEY_VARIABLE} or the key file), "
                "or add the connection again"
            ) from None


def load_box(key_file: Path) -> SecretBox:
    """The key from CATFLOW_SECRET_KEY, else from ``key_file``, made (owner-only) if absent."""
    configured = os.environ.get(KEY_VARIABLE)
    if configured:
        return SecretBox(configured.encode(), KEY_VARIABLE)
    if key_file.exists():
        mode = stat.S_IMODE(key_file.stat().st_mode)
        if mode & 0o077:
            raise CatflowError(
                f"the secret key file {key_file} is readable by others (mode {mode:o}); "
                f"make it owner-only: chmod 600 {key_file}"
            )
        return SecretBox(key_file.read_bytes().strip(), str(key_file))
    key_file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(Fernet.generate_key() + b"\n")
    return SecretBox(key_file.read_bytes().strip(), str(key_file))
