"""The district map block of 总览, 区县对比 and 大屏展示: what it is coloured by, the map, the districts
without a boundary beside it, and a click that opens the district's drill-down."""

from __future__ import annotations

from typing import Any

import streamlit as st

from datasets.intake import boundaries
from datasets.intake.boundaries import Shapes
from metrics import bigscreen, maps
from metrics.formatting import INDEX
from pages import _shared as shared

DRILL_KEY = "drill_district"  # the 区县对比 drill-down's district selectbox
COMPARE_FILE = "pages/compare.py"


@st.cache_data(show_spinner=False, max_entries=8)
def get_shapes(url: str, version: int, districts: tuple[str, ...], demo: bool) -> Shapes:
    """Simplified shapes of the districts (cached per data version: codes and uploads add a revision).

    The demo city is fictional: hexagon tiles, never real boundaries under made-up names.
    """
    if demo:
        return boundaries.schematic_shapes(list(districts))
    return boundaries.district_shapes(shared.get_engine(url), list(districts))


@st.cache_data(show_spinner=False, max_entries=32)
def get_map_spec(url: str, fingerprint: str, rules_key: str, version: int, period_key: str, colour_by: str,
                 districts: tuple[str, ...], demo: bool, dark: bool = False, height: int = 420) -> dict:
    """The map's Vega-Lite spec, built once per data version, period and colouring (building it costs
    ≈ 0.15 s of Altair; reruns that change none of these reuse it)."""
    shapes = get_shapes(url, version, districts, demo)
    rank = shared.get_ranking(url, fingerprint, rules_key, version, period_key)
    values = maps.map_values(rank, colour_by, list(districts))
    settings = shared.get_scoring(url, version)
    skeleton = _skeleton(url, version, colour_by, dark, height, _shapes=shapes, _values=values)
    return maps.fill_spec(skeleton, shapes, values, colour_by, settings)


@st.cache_data(show_spinner=False, max_entries=32)
def _skeleton(url: str, version: int, colour_by: str, dark: bool, height: int, *, _shapes: Shapes, _values) -> dict:
    """The map's spec for one colouring (its legend, scale and theme; settings change with the data
    version), built by Altair once and then filled with each period's data (maps.fill_spec): the
    first map of a period costs milliseconds, not the ≈ 0.1 s of building the chart."""
    figure = maps.district_map(_shapes, _values, colour_by, shared.get_scoring(url, version), dark=dark, height=height)
    return maps.to_spec(bigscreen.dark(figure) if dark else figure)


def _picked(event: Any) -> str | None:
    try:
        rows = event.selection[maps.SELECTION]
    except (AttributeError, KeyError, TypeError):
        return None
    if isinstance(rows, list) and rows and isinstance(rows[0], dict):
        value = rows[0].get("district")
        return value if isinstance(value, str) else None
    return None


def map_block(ctx: shared.Context, key: str, *, open_compare: bool) -> None:
    """The map with its choice of what to colour by; ``open_compare``: a click switches to 区县对比's
    drill-down (from 总览), else it sets this page's drill-down district (on 区县对比)."""
    options = [INDEX, *ctx.indicators]
    colour_by = st.selectbox("地图着色", options, key=f"{key}_by", format_func=maps.key_name)
    shapes = get_shapes(ctx.url, ctx.version, tuple(ctx.shown_districts), ctx.demo)
    map_col, side_col = st.columns([3, 1])
    with map_col:
        if shapes.geometries:
            spec = get_map_spec(ctx.url, ctx.fingerprint, ctx.rules_key, ctx.version, ctx.period.key, colour_by,
                                tuple(ctx.shown_districts), ctx.demo)
            event = st.vega_lite_chart(spec, width="stretch", on_select="rerun", selection_mode=maps.SELECTION,
                                       key=f"{key}_chart")
            district = _picked(event)
            # The selection stays in the chart's state on later runs: act on a new click only, so that
            # the drill-down's own selectbox can still be changed afterwards.
            last_key = f"{key}_last_pick"
            new = district != st.session_state.get(last_key)
            st.session_state[last_key] = district
            if new and district in ctx.shown_districts:
                st.session_state[DRILL_KEY] = district
                if open_compare:
                    st.switch_page(COMPARE_FILE)
        else:
            st.info("所选区县都没有边界数据，地图无法绘制。")
    with side_col:
        if note := maps.schematic_note(shapes):
            st.caption(note)
        st.caption("点击区县可打开其逐级下钻；灰色虚线边框的区县未参与排名，悬停可查看原因。")
        if shapes.missing:
            st.markdown("**以下区县没有边界，未画在图上**")
            shared.table(maps.missing_table(shapes), key=f"{key}_missing")
        if shapes.uploaded:
            st.caption("使用管理员上传边界的区县：" + "、".join(sorted(shapes.uploaded)))
