"""Every page of the dashboard, declared once: title, file, icon, section, roles, public, downloads, home order.

The navigation (dashboard.py), the permission gates (pages/_session.py), the role text of 账号管理 and
the README's page table all come from, or are tested against, ``CATALOG``. The title is also the
navigation title and the name the audit log records; the file (pages/<file>.py) is the URL path.

Order matters: it is the order of the menu (within a section) and of the sections.
"""

from __future__ import annotations

from dataclasses import dataclass

from datasets.access.accounts import ADMIN, EVALUATOR, LEADER, ROLES, STAFF

# The navigations dashboard.py shows: with data, without data, after a failed computation.
FULL, EMPTY, BROKEN = "full", "empty", "broken"
ACCOUNT_SECTION = "账号"
_EVERYONE = frozenset(ROLES)
_ALL_NAVS = frozenset({FULL, EMPTY, BROKEN})


@dataclass(frozen=True)
class PageSpec:
    title: str  # navigation title, page heading, audit-log page name
    file: str  # pages/<file>.py, also the URL path
    icon: str
    section: str  # its section in the menu
    roles: frozenset[str]  # who may open it once signed in (empty: visitors only, the login page)
    navs: frozenset[str]  # the navigations that list it
    public: bool = False  # open to visitors when anonymous viewing is allowed
    filtered: bool = False  # reads the sidebar filters (period, districts, indicators); others show none
    period_only: bool = False  # of the filters, reads the period alone (the others would change nothing)
    download_roles: frozenset[str] = frozenset()  # who may download its ranked tables
    home_rank: int | None = None  # where a session lands: the lowest rank it may open

    @property
    def path(self) -> str:
        return f"pages/{self.file}.py"


# Titles (the navigation shows them; the audit log records them).
PAGE_START = "开始使用"
PAGE_OVERVIEW = "总览"
PAGE_COMPARE = "区县对比"
PAGE_PERIODS = "时段对比"
PAGE_RANKING = "排名下载"
PAGE_BULLETIN = "月度通报"
PAGE_BIGSCREEN = "大屏展示"
PAGE_UPLOAD = "数据上传"
PAGE_QUALITY = "数据质量"
PAGE_INDICATORS = "指标说明"
PAGE_SETTINGS = "设置"
PAGE_LOGIN = "登录"
PAGE_ACCOUNT = "修改密码"
PAGE_USERS = "账号管理"
PAGE_DISTRICTS = "区县配置"
PAGE_AUDIT = "审计日志"

_DOWNLOADERS = frozenset({EVALUATOR, ADMIN})
_VIEWERS = frozenset({EVALUATOR, LEADER, ADMIN})

CATALOG: tuple[PageSpec, ...] = (
    PageSpec(PAGE_START, "start", ":material/rocket_launch:", "开始", _EVERYONE, frozenset({EMPTY}), public=True,
             home_rank=1),
    PageSpec(PAGE_OVERVIEW, "overview", ":material/dashboard:", "看板", _EVERYONE, frozenset({FULL}), public=True,
             filtered=True, home_rank=0),
    PageSpec(PAGE_COMPARE, "compare", ":material/compare_arrows:", "看板", _EVERYONE, frozenset({FULL}), public=True,
             filtered=True),
    PageSpec(PAGE_PERIODS, "periods", ":material/timeline:", "看板", _EVERYONE, frozenset({FULL}), public=True,
             filtered=True),
    # Every district and every indicator, of the sidebar's period.
    PageSpec(PAGE_RANKING, "ranking", ":material/leaderboard:", "看板", _VIEWERS, frozenset({FULL}), filtered=True,
             period_only=True, download_roles=_DOWNLOADERS),
    # Leaders preview the bulletin; downloads are for download_roles. The whole city, of the period picked
    # on the page itself (pages/bulletin.py), not the sidebar's.
    PageSpec(PAGE_BULLETIN, "bulletin", ":material/description:", "看板", _VIEWERS, frozenset({FULL}),
             download_roles=_DOWNLOADERS),
    # The command-centre screen: opened by URL (/bigscreen) on the screen's computer by a leader account.
    PageSpec(PAGE_BIGSCREEN, "bigscreen", ":material/tv:", "看板", frozenset({LEADER, ADMIN}), frozenset({FULL})),
    PageSpec(PAGE_UPLOAD, "upload", ":material/upload_file:", "数据", frozenset({STAFF}), frozenset({FULL, EMPTY, BROKEN}),
             home_rank=2),
    PageSpec(PAGE_QUALITY, "quality", ":material/fact_check:", "数据", frozenset({STAFF, ADMIN, LEADER}),
             frozenset({FULL, BROKEN}), home_rank=3),
    PageSpec(PAGE_INDICATORS, "indicators", ":material/menu_book:", "说明与设置", _EVERYONE, _ALL_NAVS, public=True,
             home_rank=5),
    PageSpec(PAGE_SETTINGS, "settings", ":material/settings:", "说明与设置", frozenset({ADMIN}), _ALL_NAVS),
    PageSpec(PAGE_LOGIN, "login", ":material/login:", ACCOUNT_SECTION, frozenset(), _ALL_NAVS),
    PageSpec(PAGE_ACCOUNT, "account", ":material/key:", ACCOUNT_SECTION, _EVERYONE, _ALL_NAVS, home_rank=6),
    PageSpec(PAGE_USERS, "users", ":material/manage_accounts:", ACCOUNT_SECTION, frozenset({ADMIN}), _ALL_NAVS,
             home_rank=4),
    PageSpec(PAGE_DISTRICTS, "districts", ":material/location_city:", ACCOUNT_SECTION, frozenset({ADMIN}), _ALL_NAVS),
    PageSpec(PAGE_AUDIT, "audit", ":material/policy:", ACCOUNT_SECTION, frozenset({ADMIN}), _ALL_NAVS),
)

BY_TITLE: dict[str, PageSpec] = {p.title: p for p in CATALOG}
BY_FILE: dict[str, PageSpec] = {p.file: p for p in CATALOG}


# Where a session lands, in order of preference.
HOME_ORDER: tuple[str, ...] = tuple(p.title for p in sorted((p for p in CATALOG if p.home_rank is not None),
                                                            key=lambda p: p.home_rank or 0))


def navigation(nav: str) -> dict[str, list[str]]:
    """Section -> page titles of one navigation (``FULL``, ``EMPTY``, ``BROKEN``), in catalog order."""
    sections: dict[str, list[str]] = {}
    for page in CATALOG:
        if nav in page.navs:
            sections.setdefault(page.section, []).append(page.title)
    # The account section last: hidden pages are appended to it (see dashboard._run).
    if ACCOUNT_SECTION in sections:
        sections[ACCOUNT_SECTION] = sections.pop(ACCOUNT_SECTION)
    return sections


def signed_out_navigation() -> dict[str, list[str]]:
    """For a visitor who may see nothing before signing in: every page registered, one plain section."""
    return {"页面": [p.title for p in CATALOG if p.section != ACCOUNT_SECTION],
            ACCOUNT_SECTION: [p.title for p in CATALOG if p.section == ACCOUNT_SECTION]}


def role_pages(role: str) -> list[str]:
    """The pages a role opens, in catalog order (for the role text of 账号管理)."""
    return [p.title for p in CATALOG if role in p.roles]


def roles_caption() -> str:
    """What each role may open, for the 账号管理 page: the pages for everyone, then each role's others."""
    common = [p.title for p in CATALOG if p.roles == _EVERYONE]
    parts = []
    for role in ROLES:
        extra = [p.title + ("（可下载）" if role in p.download_roles else "")
                 for p in CATALOG if role in p.roles and p.roles != _EVERYONE]
        parts.append(f"{role}另可打开{'、'.join(extra)}")
    return f"所有账号都能打开{'、'.join(common)}；" + "；".join(parts) + "。"
