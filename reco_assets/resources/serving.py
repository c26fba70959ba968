"""Where the served payloads and the exports live: the store behind the API, and the export folders.

The Redis URL (it may hold a password) and the API tokens are secrets: give them as `EnvVar`s, which Dagster
reads when a run starts and shows by name only, never by value (`local_resources` does).
"""

from typing import Literal

from dagster import ConfigurableResource
from pydantic import Field

from reco_assets.serving.lmdb_store import LmdbStore
from reco_assets.serving.redis_store import RedisStore
from reco_assets.serving.sessions import LmdbSessions, RedisSessions, SessionStore
from reco_assets.serving.store import ServingStore


class ServingResource(ConfigurableResource):
    store: Literal["lmdb", "redis"] = Field(
        "lmdb", description="`lmdb`: embedded, under `lmdb_root`, no server; `redis`: the server at `redis_url`."
    )
    lmdb_root: str = Field(description="Folder of the LMDB versions and their pointer.")
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis server of the `redis` store (a secret: `EnvVar`)."
    )
    redis_prefix: str = Field("reco", description="Prefix of every key the `redis` store writes.")
    redis_refresh_seconds: float = Field(
        1.0, description="Seconds an API process reuses the `redis` store's pointer before reading it again."
    )
    exports_root: str = Field(description="Folder of the daily exports, one sub-folder per day.")
    api_tokens: str = Field(
        "", description='Bearer tokens the API accepts, comma-separated (secrets: `EnvVar("RECO_API_TOKENS")`).'
    )

    def tokens(self) -> list[str]:
        return [t.strip() for t in self.api_tokens.split(",") if t.strip()]

    def open(self, keep: int) -> ServingStore:
        """The store, keeping `keep` previous versions for rollback."""
        if self.store == "redis":
            return RedisStore(self.redis_url, self.redis_prefix, keep, refresh=self.redis_refresh_seconds)
        return LmdbStore(self.lmdb_root, keep)

    def open_sessions(self, max_events: int, window_minutes: int) -> SessionStore:
        """The shoppers' recent events, beside the store (`serving/sessions.py`)."""
        if self.store == "redis":
            return RedisSessions(self.redis_url, self.redis_prefix, max_events, window_minutes)
        return LmdbSessions(self.lmdb_root, max_events, window_minutes)
