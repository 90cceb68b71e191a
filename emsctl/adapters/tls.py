"""The one TLS context that all of EMS's HTTP clients share.

httpx builds a context of its own for every client and loads the CA bundle into each (about
0.9 MB resident apiece); EMS keeps one client per device for its whole life. The shared
context is httpx's own default (certifi, or SSL_CERT_FILE / SSL_CERT_DIR when set), built once.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def client_context() -> ssl.SSLContext:
    """httpx's default verifying context, built on first use and shared from then on.

    An SSLContext may serve many connections and threads at once; none of our clients
    changes it after creation.
    """
    return httpx.create_ssl_context()
