"""开始使用: shown while the database holds no data — how to begin, and the demo city on request
(administrators only: it writes every district's data)."""

import streamlit as st

from datasets.access import accounts
from datasets.operations import admin as actions
from pages import _auth_ui as ui
from pages import _catalog as catalog
from pages import _shared as shared

engine, app, user = ui.gate(catalog.PAGE_START)
st.title("政务服务效能评估看板")
st.info("数据库中还没有数据。可以按以下步骤开始：", icon=":material/waving_hand:")
st.markdown(
    "1. 在 **数据上传** 页下载导入模板（办件明细、事项清单、好差评、12345 热线工单），"
    "或直接使用政务服务平台导出的 Excel / CSV 文件。\n"
    "2. 在 **数据上传** 页上传文件：系统先校验并给出问题清单，确认后导入。事项清单需注明适用月份。\n"
    "3. 导入后，总览、区县对比、时段对比和排名下载等页面会自动出现。\n"
    "4. 在 **设置** 页可调整各指标的权重、目标值和底线值；**指标说明** 页列出全部口径。"
)
st.markdown("也可以先载入示例数据（虚构的“澄州市”，10 个区县、24 个月）体验看板功能。")
if user is None or not user.is_admin:
    st.caption("载入示例数据需要“管理员”角色。")
elif st.button(f"载入示例数据（规模 {app.demo_scale}，需要 10–20 秒）", key="load_demo"):
    try:
        with st.spinner("正在生成示例数据…"):
            summary = actions.load_demo_data(engine, user, seed=app.demo_seed, scale=app.demo_scale)
    except (ValueError, accounts.PermissionDenied) as exc:
        st.error(shared.plain(f"载入示例数据失败：{exc}"))
    else:
        st.success(summary)
        st.rerun()
