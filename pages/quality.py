"""数据质量: completeness grid district × month × kind (reported / late / carried forward / missing),
validation history of the stored imports, and each district's last upload."""

import streamlit as st

from datasets.storage import quality
from metrics import charts
from pages import _auth_ui as ui
from pages import _catalog as catalog
from pages import _shared as shared

engine, app, user = ui.gate(catalog.PAGE_QUALITY)
st.title("数据质量")

grid = quality.completeness(engine)
if grid.height == 0:
    st.info("还没有导入任何数据。请在“数据上传”页上传各区县的导出文件。")
    st.stop()

st.subheader("报送完整性")
st.caption("每格为一个区县一个月份的一类数据：已报送、逾期报送（在截止日之后导入）、缺失；"
           "事项清单不必每月报送，沿用此前的清单时显示为“沿用”。悬停可查看版本数和行数。")
shared.table(quality.completeness_summary(grid), key="completeness_summary")
shared.chart(charts.completeness_chart(grid), scroll_key="completeness")
missing = quality.missing_list(grid)
with st.expander(f"缺报清单（{missing.height} 项）", expanded=bool(missing.height)):
    shared.table(missing, key="missing_list")

st.subheader("事项清单时效")
last_month = grid["month"].max()
max_age = shared.scoring_now().rules.catalog_max_age_months
st.caption(f"{last_month} 适用的事项清单（该月及之前导入的最新版本）。清单早于该月超过 {max_age} 个月的区县不参与排名，"
           "事项类指标仍按该清单计算。")
shared.table(quality.catalog_ages(engine, last_month, max_age), key="catalog_ages")

st.subheader("各区县最近一次上传")
shared.table(quality.last_uploads(engine), key="last_uploads")

st.subheader("校验与导入历史")
st.caption("每次导入的文件、操作人、行数、替换行数、警告数和触发的校验规则（未通过校验的文件不会入库，"
           "其问题清单在“数据上传”页查看和下载）。")
shared.table(quality.validation_history(engine), key="validation_history", max_rows=10)
