"""The process's Firebase verifier, built lazily from settings (tests swap it with `use_verifier`)."""
from __future__ import annotations

import threading

from layers.auth.firebase import FirebaseVerifier
from shared.settings import get_settings

_lock = threading.Lock()
_verifier: FirebaseVerifier | None = None


def get_verifier() -> FirebaseVerifier:
    global _verifier
    if _verifier is None:
        with _lock:
            if _verifier is None:
                settings = get_settings()
                _verifier = FirebaseVerifier(
                    project_id=settings.firebase_project_id,
                    certs_url=settings.firebase_certs_url,
                    emulator_host=settings.firebase_auth_emulator_host if settings.crm_env == "local" else None,
                )
    return _verifier


def use_verifier(verifier: FirebaseVerifier | None) -> None:
    global _verifier
    with _lock:
        _verifier = verifier
