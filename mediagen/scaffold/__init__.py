"""The one server scaffold the gateway, generator and storage services share.

Health, reflection, graceful shutdown, bearer-token auth, TLS, structured
logs, Prometheus metrics and rich error statuses live here once, so each
service only supplies its servicers and its dependency checks.
"""

from mediagen.scaffold.errors import FieldViolation, ServiceError
from mediagen.scaffold.server import RunningServer, ServiceSpec, start_server
from mediagen.scaffold.settings import ServerSettings, load_settings

__all__ = [
    "FieldViolation",
    "RunningServer",
    "ServerSettings",
    "ServiceError",
    "ServiceSpec",
    "load_settings",
    "start_server",
]
