"""Application settings: a pydantic model read from the environment and .streamlit/secrets.toml."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

ROOT = Path(__file__).resolve().parents[2]
SECRETS_FILE = ROOT / ".streamlit" / "secrets.toml"
# Defaults declared here, at the bottom of datasets/, so that the settings import nothing of the project
# (datasets/common/ is below the store and the accounts; both read these).
DEFAULT_SQLITE_PATH = ROOT / "data" / "dashboard.db"
SESSION_IDLE_MINUTES = 30
SESSION_MAX_HOURS = 12


def sqlite_url(path: Path | str) -> str:
    return f"sqlite:///{path}"


class AppSettings(BaseSettings):
    """Deployment settings. Environment variables win over secrets.toml; both are optional."""

    model_config = SettingsConfigDict(extra="ignore", toml_file=SECRETS_FILE)

    database_url: str = Field(default="", description="SQLAlchemy URL；为空时使用内置 SQLite 文件")
    sqlite_path: Path = Field(default=DEFAULT_SQLITE_PATH, description="内置 SQLite 文件的位置（未设置数据库时使用）")
    upload_max_mb: int = Field(default=50, ge=1, description="单个上传文件的大小上限（MB）")
    read_memory_mb: int = Field(
        default=3072, ge=512,
        description="读取一个上传文件的子进程地址空间上限（MB，虚拟内存）；超出时文件被拒绝，服务不受影响",
    )
    read_timeout_s: int = Field(default=120, ge=5, description="读取一个上传文件的时间上限（秒）；超出时文件被拒绝")
    load_demo_if_empty: bool = Field(default=True, description="内置库为空时自动载入示例数据")
    demo_seed: int = 7
    demo_scale: float = Field(default=0.05, gt=0, description="首次启动自动生成的示例数据规模（0.05 约 5 万件办件）")
    session_idle_minutes: int = Field(default=SESSION_IDLE_MINUTES, ge=1, le=24 * 60, description="登录会话无操作多少分钟后结束")
    session_max_hours: float = Field(default=SESSION_MAX_HOURS, gt=0, le=24 * 30,
                                     description="登录会话自登录起最长有效多少小时（到时必须重新登录，无论是否有操作）")
    cache_url: str = Field(
        default="",
        description="计算缓存位置：本地目录或 s3://桶/前缀（多台服务器共用）；为空时放在数据库文件旁或 data/snapshots/ 下",
    )
    password_hash_profile: Literal["standard", "test"] = Field(
        default="standard",
        description="密码哈希强度：standard（默认，Argon2id 64 MiB、3 轮）；test 几乎不耗时，仅供自动化测试，正式部署切勿使用",
    )
    anonymous_view: bool | None = Field(
        default=None, description="未登录时可查看看板页面；不设置时示例模式允许、正式数据库不允许"
    )

    @property
    def url(self) -> str:
        return self.database_url or sqlite_url(self.sqlite_path)

    @property
    def embedded(self) -> bool:
        """True when nothing was configured: the embedded SQLite file (demo mode)."""
        return not self.database_url

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def load_settings(**overrides: object) -> AppSettings:
    return AppSettings(**overrides)  # type: ignore[arg-type]
