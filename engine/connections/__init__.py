"""OAuth2 service access: connections, their encrypted secrets and tokens."""

from ._consents import CONSENT_SECONDS, PendingConsent, remember_consent, take_consent
from ._crypto import KEY_VARIABLE, SecretBox, load_box
from ._service import (
    PROVIDERS,
    ConnectionView,
    add_connection,
    client_secret,
    get_connection,
    list_connections,
    read_token,
    store_token,
)
from ._tokens import (
    Authorization,
    ConnectionBroken,
    Tokens,
    authorize_by_auto_consent,
    finish_authorization,
    start_authorization,
)

__all__ = [
    "CONSENT_SECONDS",
    "KEY_VARIABLE",
    "PROVIDERS",
    "Authorization",
    "ConnectionBroken",
    "ConnectionView",
    "PendingConsent",
    "SecretBox",
    "Tokens",
    "add_connection",
    "authorize_by_auto_consent",
    "client_secret",
    "finish_authorization",
    "get_connection",
    "list_connections",
    "load_box",
    "read_token",
    "remember_consent",
    "start_authorization",
    "store_token",
    "take_consent",
]
