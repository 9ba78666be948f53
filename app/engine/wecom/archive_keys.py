"""SOPBOT_ARCHIVE_KEYS: the corp's RSA private keys for the chat archive, by `publickey_ver`.

`VER=SOURCE` pairs separated by commas; SOURCE is a PEM file's path or the PEM itself (its
lines joined with `\\n`). A key can be rotated in WeCom's admin; old messages keep the version
they were sealed with, so every version still in WeCom's retention must stay listed. Errors
name the version, never a key's text."""

from __future__ import annotations

from pathlib import Path

from Crypto.PublicKey import RSA


def parse_archive_keys(text: str) -> dict[int, str]:
    """PEM text by version; ValueError (naming the version only) when one does not load."""
    keys: dict[int, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        version, sep, source = item.partition("=")
        if not sep or not version.strip().isdigit():
            raise ValueError("must be VERSION=PEM-FILE-OR-TEXT pairs separated by commas")
        keys[int(version)] = _pem(int(version), source.strip())
    return keys


def _pem(version: int, source: str) -> str:
    if source.startswith("-----BEGIN"):
        pem = source.replace("\\n", "\n")
    else:
        try:
            pem = Path(source).read_text()
        except OSError as exc:
            raise ValueError(f"key of version {version}: cannot read its file "
                             f"({exc.strerror})") from None
    try:
        key = RSA.import_key(pem)
    except (ValueError, IndexError, TypeError):
        raise ValueError(f"key of version {version} is not an RSA key in PEM") from None
    if not key.has_private():
        raise ValueError(f"key of version {version} is a public key: the private one is needed")
    return pem
