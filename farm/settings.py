"""The one settings object, read from FARM_* environment variables and CLI flags."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything configurable about a farm process; built once at an entry point and passed down."""

    model_config = SettingsConfigDict(env_prefix="FARM_", extra="ignore")

    database_url: str = Field(default="sqlite:///farm.db", description="SQLAlchemy URL of the results store")
    broker_url: SecretStr | None = Field(default=None, description="Celery broker; None means embedded")
    artefacts_dir: Path = Field(default=Path("farm-artefacts"), description="Locust CSV/HTML and logs per cell")
    stacks_dir: Path | None = Field(default=None, description="extra folder searched for stacks by name")
    hosts_file: Path = Field(default=Path("farm-hosts.yaml"), description="the lab's SUT hosts (SSH targets)")
    ssh_connect_timeout_s: float = Field(default=10.0, gt=0, description="SSH connect, banner and auth timeout")
    image_cache_dir: Path = Field(default=Path.home() / ".cache" / "loadfarm",
                                  description="where the offline base image's root filesystem is kept once built")
    ready_timeout_s: float = Field(default=60.0, description="deadline for a stack to become ready")
    saturation_cpu_pct: float = Field(default=90.0, description="generator CPU at which a cell is flagged")
    host_name: str | None = Field(default=None, description="name recorded as the host of cells run here")
    lease_s: float = Field(default=30.0, gt=1, description="a running group's lease, renewed every third of it")
    reap_interval_s: float = Field(default=5.0, gt=0, description="how often workers hand back expired groups")
    max_attempts: int = Field(default=3, ge=1, le=100, description="times a group is tried before its cells fail")
    visibility_timeout_s: int = Field(default=3600, description="Redis redelivery of unacknowledged tasks")
    flower_auth: SecretStr | None = Field(default=None, description="user:password for Flower's basic auth")
    serve_auth: SecretStr | None = Field(default=None, description="user:password for `farm serve`'s basic auth")
    debug: bool = False

    def redacted_database_url(self) -> str:
        """The database URL with any password masked, for messages and logs."""
        from sqlalchemy.engine import make_url

        try:
            return make_url(self.database_url).render_as_string(hide_password=True)
        except Exception:  # an unparsable URL is reported by the store itself
            return "<unparsable database URL>"
