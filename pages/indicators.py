"""指标说明: every indicator's name, formula, counting rules, direction, group, weight, target and
floor — generated from the registry and the settings in force."""

import streamlit as st

from metrics import reference
from metrics.registry import GROUPS
from pages import _auth_ui as ui
from pages import _catalog as catalog
from pages import _shared as shared

ui.gate(catalog.PAGE_INDICATORS)
settings = shared.scoring_now()
indicator_table = reference.indicator_reference(settings)

st.title("指标说明")
st.markdown(
    f"共 {indicator_table.height} 项指标，分为 {len(GROUPS)} 组。每项指标都是“分子之和 ÷ 分母之和”：区县的全年值等于各月分子、"
    "分母分别相加后再相除，全市值等于各区县相加后再相除，从不对百分比求平均；分母为 0 时显示为“—”。"
)
st.markdown(
    "**政务服务效能指数**：每项指标按目标值和底线值折算为得分 "
    "`得分 = (实际值 − 底线值) ÷ (目标值 − 底线值) × 100`，低于 0 记 0、高于 100 记 100（“越低越好”的指标底线值高于目标值）；"
    "分组得分和效能指数是已有得分按权重的加权平均 `Σ 权重×得分 ÷ Σ 权重`（没有数据的指标不参与）。"
    "区县按指数排名，并列同名次（1、1、3）。"
)

st.subheader("分组与权重")
shared.table(reference.group_weights(settings), key="group_weights")

st.subheader("统计口径")
st.caption("口径文件未规定或需要取舍之处，本看板一律按下列规则计算（取值随“设置”页的当前设置）。")
shared.table(reference.readings_table(settings), key="readings")

st.subheader("可调整的规则")
shared.table(reference.rules_table(settings), key="rules")

st.subheader("指标一览")
# 编号 is the command line's identifier (its CSV also names each indicator in Chinese): not shown here.
shared.table(indicator_table, key="indicator_reference", max_rows=None, hidden=("编号",))
