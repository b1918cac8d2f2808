"""View models of 大屏展示 (the command-centre screen): the alerts by district, the as-of line, the
compact ranking and the dark chart theme. Polars frames and Altair charts only, never Streamlit."""

from __future__ import annotations

import calendar
import datetime as dt

import altair as alt
import polars as pl

from datasets.domain.periods import Period
from metrics import alerts
from metrics.formatting import is_good

BACKGROUND = "#0e1117"
INK = "#e8eaed"
MUTED = "#9aa0a6"


def alert_rows(comps: pl.DataFrame, period: Period) -> list[tuple[str, str, str | None]]:
    """The city's alerts that come with the indicators (no row-level data needed): (title, count text,
    环比 change text) in the overview's order; the lists that need row-level data are left out."""
    now = alerts.alert_counts_from_components(comps, period)
    before = alerts.alert_counts_from_components(comps, period.previous())
    out = []
    for alert in alerts.ALERTS.values():
        if alert.id not in now:
            continue
        count, prev = now[alert.id], before.get(alert.id)
        change = None if prev is None else count - prev
        change_text = None if change is None else ("持平" if change == 0 else f"{change:+d} {alert.unit}")
        out.append((alert.title, f"{count} {alert.unit}", change_text))
    return out


def alerts_by_district(rank: pl.DataFrame, n: int = 6) -> pl.DataFrame:
    """Districts with the most red cards and late rectifications this period (from ranking(): the
    alerts' counts are the indicators' numerators and denominators), most first."""
    red = pl.col("red_card_rate__num").fill_null(0).cast(pl.Int64)
    late = (pl.col("bad_rectified_on_time_rate__den") - pl.col("bad_rectified_on_time_rate__num")).fill_null(0) \
        .cast(pl.Int64)
    out = rank.select(pl.col("district").alias("区县"), red.alias("红牌办件"), late.alias("差评未按时整改"))
    out = out.filter((pl.col("红牌办件") + pl.col("差评未按时整改")) > 0)
    return out.sort([pl.col("红牌办件") + pl.col("差评未按时整改"), "区县"], descending=[True, False]).head(n)


def as_of_text(period: Period, last_import: dt.datetime | None, as_of: dt.date | None = None) -> str:
    """数据截至: ``as_of`` (the 数据截止日 of the period's last month, datasets/storage/coverage.py) where known,
    else the period's last day; when the last import happened."""
    if as_of is None:
        year, month = map(int, period.last.split("-"))
        as_of = dt.date(year, month, calendar.monthrange(year, month)[1])
    text = f"数据截至 {as_of.year} 年 {as_of.month} 月 {as_of.day} 日"
    if last_import is not None:
        text += f"　最近导入 {last_import:%Y-%m-%d %H:%M}"
    return text


def delta_colour(key: str, delta: float | None) -> str:
    """st.metric's delta colour: green when the change is an improvement (↓ indicators improve when they
    fall), grey when flat or unknown."""
    good = is_good(key, delta)
    if good is None:
        return "off"
    return "normal" if (delta is not None and delta > 0) == good else "inverse"


def needs_refresh(stored_version: int, shown_version: int, shown_at: float, now: float,
                  keep_alive_seconds: float) -> bool:
    """Whether the screen reruns: the data changed since it was drawn, or it was drawn long enough ago
    that a full run is due (which keeps the signed-in session from expiring)."""
    return stored_version != shown_version or now - shown_at > keep_alive_seconds


def dark(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """A chart restyled for the dark screen: transparent background, light labels, larger type."""
    return (
        chart.configure(background="transparent")
        .configure_axis(labelColor=INK, titleColor=INK, gridColor="#2a2f3a", domainColor="#555", labelFontSize=14)
        .configure_legend(labelColor=INK, titleColor=INK, labelFontSize=13, titleFontSize=13)
        .configure_text(color=INK)
        .configure_title(color=INK)
        .configure_view(stroke=None)
    )
